"""Small synthetic pictures of coloured shapes, each with several true captions.

A **scene** is an RGB image of size S × S (32 × 32 by default) on a dark, lightly noisy
background, holding one or two objects. Each object has a shape (circle, square, triangle),
a colour (red, green, blue, yellow, white) and a size (small, large), and it sits near the
centre of one cell of a 3 × 3 grid. Two objects share a row (one is to the left of the
other) or a column (one is above the other), never a cell, so the relation between them is
never in doubt, and they never overlap.

Captions come from a small grammar:

    caption  →  NP  |  there is NP  |  NP REL NP  |  NP is REL NP  |  there is NP REL NP
    NP       →  a SIZE COLOUR SHAPE
    REL      →  above  |  below  |  left of  |  right of

Every scene comes with *all* the captions of the grammar that are true of it: 2 for one
object; 6 for two (three frames × two orders, for example ``a small red circle above a
large blue square`` and ``a large blue square below a small red circle``). Since the
references list every true caption, a caption is true of the scene exactly when it
equals one of them. :func:`parse_caption` reads a caption back into its meaning, which lets
a test or an error analysis check a caption against the scene description that comes with
each image (:class:`SceneObject`).

Images are float tensors (3, S, S) in [0, 1], drawn with a ``random.Random(seed)``: the
same seed gives the same scenes on every machine.

:func:`moving_object_clips` makes short videos for the same grammar: T frames of one object
moving left, right, up or down, captioned ``a small red circle moves left`` etc. The
direction cannot be read from any single frame.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

SHAPES = ("circle", "square", "triangle")
COLOURS = {
    "red": (0.90, 0.15, 0.15),
    "green": (0.15, 0.75, 0.20),
    "blue": (0.20, 0.35, 0.95),
    "yellow": (0.95, 0.85, 0.15),
    "white": (0.95, 0.95, 0.95),
}
"""Colour name → its RGB value in [0, 1]."""
SIZES = ("small", "large")
RELATIONS = ("above", "below", "left", "right")
DIRECTIONS = ("left", "right", "up", "down")
GRID = 3
"""Objects sit in the cells of a GRID × GRID grid."""

BACKGROUND = 0.12
"""Grey level of the background."""
RADIUS = {"small": 0.09, "large": 0.13}
"""Object radius as a fraction of the image size S."""
JITTER = 1 / 32
"""Largest shift of an object from its cell centre, as a fraction of S."""

RELATION_WORDS = {
    "above": "above",
    "below": "below",
    "left": "left of",
    "right": "right of",
}
INVERSE = {"above": "below", "below": "above", "left": "right", "right": "left"}
FRAMES_ONE = ("{a}", "there is {a}")
FRAMES_TWO = ("{a} {rel} {b}", "{a} is {rel} {b}", "there is {a} {rel} {b}")
FRAMES_CLIP = ("{a} moves {d}", "{a} is moving {d}", "there is {a} moving {d}")


@dataclass(frozen=True)
class SceneObject:
    """One object of a scene.

    Attributes:
        shape, colour, size: its attributes (words of the grammar).
        row, col: its grid cell, 0 … GRID − 1 from the top left.
        x, y: its centre in pixels (x to the right, y downwards).
        radius: in pixels; a circle's radius, half the side of a square, and the distance
            from a triangle's centre to its top.
    """

    shape: str
    colour: str
    size: str
    row: int
    col: int
    x: float
    y: float
    radius: float

    @property
    def phrase(self) -> str:
        """The noun phrase naming it: ``a small red circle``."""
        return f"a {self.size} {self.colour} {self.shape}"


@dataclass(frozen=True)
class CaptionedImage:
    """A scene: the image (3, S, S), every true caption, and what it shows.

    ``relation`` relates ``objects[0]`` to ``objects[1]`` (``"above"``: the first object is
    above the second); it is ``None`` for a scene of one object.
    """

    image: torch.Tensor
    references: list[str]
    objects: tuple[SceneObject, ...]
    relation: str | None = None


@dataclass(frozen=True)
class CaptionedClip:
    """A clip: frames (T, 3, S, S) of one object moving in ``direction``, with its captions.

    ``objects`` holds the object in every frame, in order.
    """

    frames: torch.Tensor
    references: list[str]
    objects: tuple[SceneObject, ...]
    direction: str


@dataclass(frozen=True)
class CaptionMeaning:
    """What a caption says: one or two (size, colour, shape) triples and their relation."""

    objects: tuple[tuple[str, str, str], ...]
    relation: str | None = None

    def canonical(self) -> CaptionMeaning:
        """The same meaning with ``below``/``right`` turned around into ``above``/``left``."""
        if self.relation in ("below", "right"):
            return CaptionMeaning(self.objects[::-1], INVERSE[self.relation])
        return self


def vocabulary_words() -> list[str]:
    """Every word the grammar of scene and clip captions uses, sorted."""
    words = {"a", "there", "is", "moves", "moving", *SHAPES, *COLOURS, *SIZES, *DIRECTIONS}
    for phrase in RELATION_WORDS.values():
        words.update(phrase.split())
    return sorted(words)


def scene_captions(objects: Sequence[SceneObject], relation: str | None) -> list[str]:
    """All the captions of the grammar that describe the objects and their relation."""
    if len(objects) == 1:
        return [frame.format(a=objects[0].phrase) for frame in FRAMES_ONE]
    if len(objects) != 2 or relation not in RELATION_WORDS:
        raise ValueError("a caption describes one object, or two objects and a relation")
    first, second = objects
    orders = [(first, relation, second), (second, INVERSE[relation], first)]
    return [
        frame.format(a=a.phrase, rel=RELATION_WORDS[rel], b=b.phrase)
        for frame in FRAMES_TWO
        for a, rel, b in orders
    ]


def _parse_phrase(words: list[str]) -> tuple[str, str, str]:
    if len(words) != 4 or words[0] != "a":
        raise ValueError(f"not a noun phrase 'a SIZE COLOUR SHAPE': {' '.join(words)!r}")
    _, size, colour, shape = words
    if size not in SIZES or colour not in COLOURS or shape not in SHAPES:
        raise ValueError(f"unknown size, colour or shape in {' '.join(words)!r}")
    return size, colour, shape


def parse_caption(caption: str) -> CaptionMeaning:
    """Read a scene caption of the grammar into its meaning; ValueError if it is not one."""
    words = caption.lower().split()
    if words[:2] == ["there", "is"]:
        words = words[2:]
    if len(words) == 4:
        return CaptionMeaning((_parse_phrase(words),))
    first, rest = words[:4], words[4:]
    if rest[:1] == ["is"]:
        rest = rest[1:]
    for relation, phrase in RELATION_WORDS.items():
        n = len(phrase.split())
        if " ".join(rest[:n]) == phrase:
            return CaptionMeaning((_parse_phrase(first), _parse_phrase(rest[n:])), relation)
    raise ValueError(f"not a caption of the scene grammar: {caption!r}")


def scene_meaning(objects: Sequence[SceneObject], relation: str | None) -> CaptionMeaning:
    """The meaning of a scene in the form :func:`parse_caption` returns."""
    triples = tuple((o.size, o.colour, o.shape) for o in objects)
    return CaptionMeaning(triples, relation)


def object_mask(obj: SceneObject, image_size: int) -> torch.Tensor:
    """The pixels covered by an object: a BoolTensor (S, S), indexed [y, x].

    A pixel belongs to the object when its centre (x + ½, y + ½) lies inside the shape:
    a disc of radius r, a square of half-side 0.8 r, or a triangle pointing up with its top
    at distance r above the centre and its base 0.8 r below it, as wide as it is high.
    """
    coords = torch.arange(image_size, dtype=torch.float32) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    dx, dy, r = x - obj.x, y - obj.y, obj.radius
    if obj.shape == "circle":
        return dx**2 + dy**2 <= r**2
    if obj.shape == "square":
        return (dx.abs() <= 0.8 * r) & (dy.abs() <= 0.8 * r)
    if obj.shape == "triangle":
        depth = dy + r
        return (depth >= 0) & (dy <= 0.8 * r) & (dx.abs() <= depth / 2)
    raise ValueError(f"unknown shape {obj.shape!r}; expected one of {SHAPES}")


def render(objects: Sequence[SceneObject], image_size: int, rng: random.Random, noise: float) -> torch.Tensor:
    """Draw objects on the background: a float tensor (3, S, S) in [0, 1].

    Every pixel gets Gaussian noise of standard deviation ``noise`` (drawn from a torch
    generator seeded by ``rng``), then the values are clipped to [0, 1].
    """
    image = torch.full((3, image_size, image_size), BACKGROUND)
    for obj in objects:
        colour = torch.tensor(COLOURS[obj.colour]).view(3, 1)
        image[:, object_mask(obj, image_size)] = colour
    if noise > 0:
        generator = torch.Generator().manual_seed(rng.getrandbits(63))
        image += noise * torch.randn(image.shape, generator=generator)
    return image.clamp(0.0, 1.0)


def _random_object(rng: random.Random, image_size: int, row: int, col: int) -> SceneObject:
    """An object with random attributes near the centre of grid cell (row, col)."""
    cell = image_size / GRID
    jitter = JITTER * image_size
    shape, colour, size = rng.choice(SHAPES), rng.choice(list(COLOURS)), rng.choice(SIZES)
    x = (col + 0.5) * cell + rng.uniform(-jitter, jitter)
    y = (row + 0.5) * cell + rng.uniform(-jitter, jitter)
    return SceneObject(shape, colour, size, row, col, x, y, RADIUS[size] * image_size)


def random_scene(rng: random.Random, image_size: int = 32, two_objects: float = 0.75,
                 noise: float = 0.04) -> CaptionedImage:
    """One scene drawn with ``rng``: two objects with probability ``two_objects``, else one."""
    if rng.random() >= two_objects:
        obj = _random_object(rng, image_size, rng.randrange(GRID), rng.randrange(GRID))
        objects, relation = (obj,), None
    else:
        relation = rng.choice(RELATIONS)
        line = rng.randrange(GRID)
        near, far = sorted(rng.sample(range(GRID), 2))
        if relation in ("above", "below"):
            cells = [(near, line), (far, line)]  # same column; the first is higher
        else:
            cells = [(line, near), (line, far)]  # same row; the first is further left
        if relation in ("below", "right"):
            cells.reverse()
        objects = tuple(_random_object(rng, image_size, row, col) for row, col in cells)
    image = render(objects, image_size, rng, noise)
    return CaptionedImage(image, scene_captions(objects, relation), objects, relation)


def scene_dataset(n: int, seed: int = 0, image_size: int = 32, two_objects: float = 0.75,
                  noise: float = 0.04) -> list[CaptionedImage]:
    """``n`` random scenes, the same for the same arguments.

    Args:
        n: number of scenes.
        seed: seeds the ``random.Random`` that draws them.
        image_size: S; images are (3, S, S). At least 24, so that small objects keep their shape.
        two_objects: the probability that a scene holds two objects rather than one.
        noise: standard deviation of the Gaussian pixel noise (0 = plain background).
    """
    if image_size < 24:
        raise ValueError(f"image_size must be at least 24 pixels, got {image_size}")
    if not 0.0 <= two_objects <= 1.0:
        raise ValueError(f"two_objects is a probability, got {two_objects}")
    rng = random.Random(seed)
    return [random_scene(rng, image_size, two_objects, noise) for _ in range(n)]


def clip_captions(obj: SceneObject, direction: str) -> list[str]:
    """All the captions of a clip of ``obj`` moving in ``direction``."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    return [frame.format(a=obj.phrase, d=direction) for frame in FRAMES_CLIP]


def moving_object_clips(n: int, seed: int = 0, frames: int = 8, image_size: int = 32,
                        noise: float = 0.04) -> list[CaptionedClip]:
    """``n`` clips of T = ``frames`` frames, each showing one object moving in a straight line.

    The object moves by the same number of pixels between consecutive frames, a total of a
    quarter of the image size over the clip, in one of the four ``DIRECTIONS``. Its start is
    drawn from the same central square whatever the direction (a square small enough that a
    move in any direction stays inside the image), so the first frame says nothing about the
    direction. Each frame has its own noise.
    """
    if frames < 2:
        raise ValueError(f"a clip needs at least 2 frames, got {frames}")
    rng = random.Random(seed)
    steps = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    clips = []
    for _ in range(n):
        direction = rng.choice(DIRECTIONS)
        start = _random_object(rng, image_size, 0, 0)
        travel = image_size / 4
        low, high = start.radius + 1 + travel, image_size - start.radius - 1 - travel
        x0, y0 = rng.uniform(low, high), rng.uniform(low, high)
        dx, dy = steps[direction]
        path = []
        for t in range(frames):
            shift = travel * t / (frames - 1)
            x, y = x0 + dx * shift, y0 + dy * shift
            row, col = (min(int(v * GRID / image_size), GRID - 1) for v in (y, x))
            path.append(SceneObject(start.shape, start.colour, start.size, row, col, x, y, start.radius))
        video = torch.stack([render((obj,), image_size, rng, noise) for obj in path])
        clips.append(CaptionedClip(video, clip_captions(start, direction), tuple(path), direction))
    return clips


LAYOUTS = ("channels", "strip")


def stack_frames(frames: torch.Tensor, layout: str = "channels") -> torch.Tensor:
    """The frames (T, C, S, S) of a clip as one image.

    ``"channels"``: stacked along the channels, (T·C, S, S), frame t in channels t·C … t·C + C − 1
    (a convolution then sees every frame at once, which is called *early fusion*);
    ``"strip"``: side by side from left to right, (C, S, T·S), like a film strip.
    """
    if frames.dim() != 4:
        raise ValueError(f"expected frames of shape (T, C, H, W), got {tuple(frames.shape)}")
    if layout == "channels":
        return frames.flatten(0, 1)
    if layout == "strip":
        return torch.cat(list(frames), dim=-1)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def clip_images(
    clips: Sequence[CaptionedClip], frames: Sequence[int] | None = None, layout: str = "channels"
) -> list[CaptionedImage]:
    """Each clip as one image made of its chosen frames (all when ``frames`` is ``None``) by
    :func:`stack_frames`, with the clip's captions and objects; ``relation`` holds the direction."""
    return [
        CaptionedImage(
            stack_frames(clip.frames if frames is None else clip.frames[list(frames)], layout),
            clip.references,
            clip.objects,
            clip.direction,
        )
        for clip in clips
    ]


def caption_errors(caption: str, item: CaptionedImage) -> list[str]:
    """What a caption gets wrong about a scene: an empty list when it is true of it.

    The kinds of error: ``"grammar"`` (not a caption of the grammar; nothing else is
    checked), ``"count"`` (one object named for two, or two for one), and for captions with
    the right number of objects, ``"relation"``, ``"size"``, ``"colour"`` and ``"shape"``.
    The two objects of a caption are matched with the scene's in the way that leaves fewer
    wrong attributes; the relation is wrong when the caption puts them side by side instead of
    one above the other (or the other way round), or in each other's places (``a X above a Y``
    when X is below Y).
    """
    try:
        said = parse_caption(caption).canonical()
    except ValueError:
        return ["grammar"]
    truth = scene_meaning(item.objects, item.relation).canonical()
    if len(said.objects) != len(truth.objects):
        return ["count"]

    def wrong_attributes(objects: tuple[tuple[str, str, str], ...]) -> list[str]:
        return [
            kind
            for kind, index in (("size", 0), ("colour", 1), ("shape", 2))
            if any(s[index] != t[index] for s, t in zip(objects, truth.objects, strict=True))
        ]

    def mismatches(objects: tuple[tuple[str, str, str], ...]) -> int:
        pairs = zip(objects, truth.objects, strict=True)
        return sum(a != b for s, t in pairs for a, b in zip(s, t, strict=True))

    swapped = said.objects[::-1]
    if len(said.objects) == 2 and mismatches(swapped) < mismatches(said.objects):
        return ["relation", *wrong_attributes(swapped)]
    relation = ["relation"] if said.relation != truth.relation else []
    return relation + wrong_attributes(said.objects)
