"""The captioning data: scenes, moving-object clips and digit strips.

The captions are checked against the pixels of the images, not only against the scene
descriptions they were made from: the colour named is the colour of the object's pixels,
``above`` means a smaller y-centre of those pixels, a large object covers more pixels than a
small one, and the shape shows in how much of its bounding box the object fills.
"""

from __future__ import annotations

import math

import pytest
import torch

from course_lib.data import digit_strips as ds
from course_lib.data import scenes as sc

SIZE = 32


@pytest.fixture(scope="module")
def scenes() -> list[sc.CaptionedImage]:
    return sc.scene_dataset(300, seed=5, image_size=SIZE)


def object_pixels(item: sc.CaptionedImage, obj: sc.SceneObject) -> torch.Tensor:
    """Where the image shows the object's colour, within its grid cell: a BoolTensor (S, S)."""
    colour = torch.tensor(sc.COLOURS[obj.colour]).view(3, 1, 1)
    close = (item.image - colour).abs().max(dim=0).values < 0.2
    cell = SIZE / sc.GRID
    ys, xs = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    in_cell = (ys // cell == obj.row) & (xs // cell == obj.col)
    return close & in_cell


def centre(mask: torch.Tensor) -> tuple[float, float]:
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return xs.float().mean().item() + 0.5, ys.float().mean().item() + 0.5


def test_images_are_rgb_tensors_in_the_unit_range(scenes):
    for item in scenes:
        assert item.image.shape == (3, SIZE, SIZE)
        assert item.image.dtype == torch.float32
        assert item.image.min() >= 0 and item.image.max() <= 1


def test_the_same_seed_gives_the_same_scenes_and_another_seed_others():
    first, again = sc.scene_dataset(20, seed=3), sc.scene_dataset(20, seed=3)
    other = sc.scene_dataset(20, seed=4)
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.image, b.image) and a.references == b.references and a.objects == b.objects
    assert [a.references for a in first] != [b.references for b in other]


def test_both_kinds_of_scene_and_every_attribute_occur(scenes):
    counts = {len(item.objects) for item in scenes}
    assert counts == {1, 2}
    objects = [obj for item in scenes for obj in item.objects]
    assert {o.colour for o in objects} == set(sc.COLOURS)
    assert {o.shape for o in objects} == set(sc.SHAPES)
    assert {o.size for o in objects} == set(sc.SIZES)
    assert {item.relation for item in scenes if item.relation} == set(sc.RELATIONS)


def test_references_are_distinct_parse_and_mean_the_scene(scenes):
    words = set(sc.vocabulary_words())
    for item in scenes:
        assert len(item.references) == (2 if len(item.objects) == 1 else 6)
        assert len(set(item.references)) == len(item.references)
        truth = sc.scene_meaning(item.objects, item.relation).canonical()
        for ref in item.references:
            assert set(ref.split()) <= words
            assert sc.parse_caption(ref).canonical() == truth
            assert sc.caption_errors(ref, item) == []


def test_every_true_caption_of_the_grammar_is_a_reference():
    obj = sc.SceneObject("circle", "red", "small", 0, 0, 5.0, 5.0, 2.0)
    other = sc.SceneObject("square", "blue", "large", 1, 0, 5.0, 16.0, 4.0)
    assert sc.scene_captions([obj], None) == ["a small red circle", "there is a small red circle"]
    expected = {
        "a small red circle above a large blue square",
        "a large blue square below a small red circle",
        "a small red circle is above a large blue square",
        "a large blue square is below a small red circle",
        "there is a small red circle above a large blue square",
        "there is a large blue square below a small red circle",
    }
    assert set(sc.scene_captions([obj, other], "above")) == expected


def test_the_colour_named_is_the_colour_of_the_objects_pixels(scenes):
    palette = torch.tensor(list(sc.COLOURS.values()))
    names = list(sc.COLOURS)
    for item in scenes:
        for obj in item.objects:
            mask = sc.object_mask(obj, SIZE)
            assert mask.sum() >= 8
            mean_colour = item.image[:, mask].mean(dim=1)
            nearest = names[int((palette - mean_colour).norm(dim=1).argmin())]
            assert nearest == obj.colour


def test_pixels_outside_the_objects_are_background(scenes):
    for item in scenes[:50]:
        outside = ~torch.stack([sc.object_mask(o, SIZE) for o in item.objects]).any(0)
        assert (item.image[:, outside] - sc.BACKGROUND).abs().mean() < 0.05


def test_objects_do_not_overlap_and_stay_inside_the_image(scenes):
    for item in scenes:
        masks = [sc.object_mask(o, SIZE) for o in item.objects]
        if len(masks) == 2:
            assert not (masks[0] & masks[1]).any()
        for obj in item.objects:
            assert obj.radius <= obj.x <= SIZE - obj.radius
            assert obj.radius <= obj.y <= SIZE - obj.radius


def test_relations_agree_with_the_pixels(scenes):
    """``above``: smaller y-centre, same column; ``left of``: smaller x-centre, same row."""
    checked = 0
    for item in scenes:
        if item.relation is None:
            continue
        (x1, y1), (x2, y2) = (centre(object_pixels(item, o)) for o in item.objects)
        along, across = {"above": (y2 - y1, x2 - x1), "below": (y1 - y2, x1 - x2),
                         "left": (x2 - x1, y2 - y1), "right": (x1 - x2, y1 - y2)}[item.relation]
        assert along > SIZE / sc.GRID - 3  # at least one cell apart, in the right order
        assert abs(across) < 3  # in the same row or column
        checked += 1
    assert checked > 100


def test_sizes_and_shapes_agree_with_the_pixels(scenes):
    fill = {"circle": [], "square": [], "triangle": []}
    area = {(shape, size): [] for shape in sc.SHAPES for size in sc.SIZES}
    for item in scenes:
        for obj in item.objects:
            mask = sc.object_mask(obj, SIZE)
            area[obj.shape, obj.size].append(int(mask.sum()))
            if obj.size == "large":
                ys, xs = torch.nonzero(mask, as_tuple=True)
                box = (ys.max() - ys.min() + 1) * (xs.max() - xs.min() + 1)
                fill[obj.shape].append(float(mask.sum() / box))
    for shape in sc.SHAPES:
        assert min(area[shape, "large"]) > max(area[shape, "small"])
    mean_fill = {shape: sum(v) / len(v) for shape, v in fill.items()}
    assert mean_fill["square"] == pytest.approx(1.0)
    assert mean_fill["circle"] == pytest.approx(math.pi / 4, abs=0.08)
    assert mean_fill["triangle"] == pytest.approx(0.5, abs=0.1)


def test_parse_caption_rejects_what_is_not_in_the_grammar():
    for caption in ["a red circle", "a small red circle on a large blue square", "there is",
                    "a small red circle is above", "a huge red circle", "small red circle above"]:
        with pytest.raises(ValueError):
            sc.parse_caption(caption)


def test_caption_errors_names_what_is_wrong(scenes):
    item = next(i for i in scenes if i.relation == "above")
    upper, lower = item.objects
    other_colour = next(c for c in sc.COLOURS if c != upper.colour)
    assert sc.caption_errors(f"a {upper.size} {other_colour} {upper.shape} above {lower.phrase}", item) == [
        "colour"
    ]
    assert sc.caption_errors(f"{upper.phrase} left of {lower.phrase}", item) == ["relation"]
    assert sc.caption_errors(upper.phrase, item) == ["count"]
    assert sc.caption_errors("a a a", item) == ["grammar"]
    swapped = sc.caption_errors(f"{lower.phrase} above {upper.phrase}", item)
    assert swapped == ([] if upper.phrase == lower.phrase else ["relation"])
    other_shape = next(x for x in sc.SHAPES if x != lower.shape)
    # the lower object named first, with the wrong shape, and the relation the wrong way round
    caption = f"a {lower.size} {lower.colour} {other_shape} above {upper.phrase}"
    assert sc.caption_errors(caption, item) == ["relation", "shape"]


def test_clips_move_their_object_in_the_named_direction():
    clips = sc.moving_object_clips(40, seed=2, frames=6, image_size=SIZE)
    assert {c.direction for c in clips} == set(sc.DIRECTIONS)
    for clip in clips:
        assert clip.frames.shape == (6, 3, SIZE, SIZE)
        obj = clip.objects[0]
        assert all(set(ref.split()) <= set(sc.vocabulary_words()) for ref in clip.references)
        assert clip.references[0] == f"{obj.phrase} moves {clip.direction}"
        assert len(set(clip.references)) == 3
        colour = torch.tensor(sc.COLOURS[obj.colour]).view(3, 1, 1)
        centres = [centre((frame - colour).abs().max(0).values < 0.2) for frame in clip.frames]
        dx, dy = centres[-1][0] - centres[0][0], centres[-1][1] - centres[0][1]
        expected = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}[clip.direction]
        assert dx * expected[0] + dy * expected[1] == pytest.approx(SIZE / 4, abs=1.5)
        assert abs(dx * expected[1] + dy * expected[0]) < 1.5
        for o in clip.objects:
            assert o.radius <= o.x <= SIZE - o.radius and o.radius <= o.y <= SIZE - o.radius


def test_clips_start_in_the_same_square_whatever_their_direction():
    """So that the first frame says nothing about the direction."""
    clips = sc.moving_object_clips(200, seed=4, frames=5, image_size=SIZE)
    for clip in clips:
        start = clip.objects[0]
        low = start.radius + 1 + SIZE / 4
        assert low <= start.x <= SIZE - low and low <= start.y <= SIZE - low
    for axis in ("x", "y"):
        means = [torch.tensor([getattr(c.objects[0], axis) for c in clips if c.direction == d]).mean()
                 for d in sc.DIRECTIONS]
        assert max(means) - min(means) < 1.5


def test_frames_stack_as_channels_or_side_by_side():
    clip = sc.moving_object_clips(1, seed=0, frames=4)[0]
    strip = sc.stack_frames(clip.frames, "strip")
    assert strip.shape == (3, SIZE, 4 * SIZE)
    channels = sc.stack_frames(clip.frames, "channels")
    assert channels.shape == (12, SIZE, SIZE)
    for t in range(4):
        assert torch.equal(strip[:, :, t * SIZE : (t + 1) * SIZE], clip.frames[t])
        assert torch.equal(channels[3 * t : 3 * t + 3], clip.frames[t])
    first_only = sc.clip_images([clip], frames=[0])[0]
    assert torch.equal(first_only.image, clip.frames[0])
    assert first_only.references == clip.references and first_only.relation == clip.direction
    with pytest.raises(ValueError):
        sc.stack_frames(clip.frames, "grid")


def test_digit_split_is_disjoint_complete_and_fixed():
    train, test = ds.digit_split()
    assert not set(train) & set(test)
    assert sorted(train + test) == list(range(1797))
    assert len(test) == round(0.25 * 1797)
    assert ds.digit_split() == (train, test)


def test_digit_strips_show_their_digits_and_read_them_in_order():
    from sklearn.datasets import load_digits

    digits = load_digits()
    train, test = (set(part) for part in ds.digit_split())
    strips = ds.digit_strips(50, "test", seed=1, max_digits=4, scale=2)
    assert {len(s.digits) for s in strips} == {1, 2, 3, 4}
    for strip in strips:
        assert strip.image.shape == (1, 16, 64)
        assert set(strip.indices) <= test and not set(strip.indices) & train
        assert strip.references == [" ".join(ds.DIGIT_WORDS[d] for d in strip.digits)]
        for slot in range(4):
            block = strip.image[0, :, 16 * slot : 16 * (slot + 1)]
            if slot < len(strip.indices):
                index = strip.indices[slot]
                assert strip.digits[slot] == digits.target[index]
                expected = torch.tensor(digits.images[index] / 16, dtype=torch.float32)
                assert torch.equal(block[::2, ::2], expected) and torch.equal(block[1::2, 1::2], expected)
            else:
                assert not block.any()
    assert all(set(s.indices) <= train for s in ds.digit_strips(50, "train", seed=1))


def test_digit_strips_are_deterministic():
    a, b = ds.digit_strips(10, seed=7), ds.digit_strips(10, seed=7)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.image, y.image) and x.references == y.references
    assert [x.digits for x in a] != [x.digits for x in ds.digit_strips(10, seed=8)]
