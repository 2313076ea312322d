"""Tests of the captioning models against independent oracles: torch.nn.RNNCell with copied weights,
autograd, hand-written loops over the equations, and hand-made feature maps."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.decoding import beam_search, greedy_decode
from course_lib.metrics import masked_cross_entropy
from course_lib.models.captioning import (
    CNNEncoder,
    ShowAndTell,
    ShowAttendTell,
    append_coordinates,
    caption_loss,
    flatten_features,
    greedy_caption,
    image_rnn_step,
    position_coordinates,
)
from course_lib.models.rnn import rnn_step

pytestmark = pytest.mark.usefixtures("one_thread")

TOLERANCE = 1e-12  # float64 throughout; the measured differences are below 1e-15



def _generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.float64, generator=_generator(seed))


def _step_inputs(B: int = 3, E: int = 4, F_: int = 5, H: int = 6, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """x (B, E), h_prev (B, H), im (B, F), W_xh (H, E), W_hh (H, H), W_ih (H, F), b (H,)."""
    shapes = [(B, E), (B, H), (B, F_), (H, E), (H, H), (H, F_), (H,)]
    return tuple(_randn(*shape, seed=seed + i) for i, shape in enumerate(shapes))


def _small_encoder() -> CNNEncoder:
    return CNNEncoder(channels=(4, 6))


def _images(B: int, seed: int, size: int = 16) -> torch.Tensor:
    return torch.rand(B, 3, size, size, dtype=torch.float64, generator=_generator(seed))


# --- the image-conditioned RNN step --------------------------------------------------------------


def test_image_rnn_step_is_an_rnn_cell_whose_input_has_the_image_appended():
    x, h_prev, im, W_xh, W_hh, W_ih, b = _step_inputs()
    cell = nn.RNNCell(4 + 5, 6).double()
    with torch.no_grad():
        cell.weight_ih.copy_(torch.cat([W_xh, W_ih], dim=1))
        cell.weight_hh.copy_(W_hh)
        cell.bias_ih.copy_(b)
        cell.bias_hh.zero_()
    expected = cell(torch.cat([x, im], dim=1), h_prev)
    got = image_rnn_step(x, h_prev, im, W_xh, W_hh, W_ih, b)
    assert got.shape == (3, 6)
    assert (got - expected).abs().max() < TOLERANCE


def test_image_rnn_step_without_the_image_is_the_plain_rnn_step():
    x, h_prev, _, W_xh, W_hh, _, b = _step_inputs(seed=10)
    expected = rnn_step(x, h_prev, W_xh, W_hh, b, None)
    assert (image_rnn_step(x, h_prev, None, W_xh, W_hh, None, b) - expected).abs().max() < TOLERANCE
    with pytest.raises(ValueError):
        image_rnn_step(x, h_prev, None, W_xh, W_hh, W_hh, b)


def test_image_rnn_step_gradients_match_finite_differences():
    inputs = tuple(t.requires_grad_() for t in _step_inputs(B=2, E=3, F_=2, H=4, seed=20))
    assert torch.autograd.gradcheck(image_rnn_step, inputs)


# --- the CNN and its positions --------------------------------------------------------------------


def test_cnn_encoder_halves_the_image_once_per_block():
    encoder = CNNEncoder()
    assert encoder.feature_size == 64
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 64, 4, 4)
    assert encoder(torch.rand(1, 3, 48, 48)).shape == (1, 64, 6, 6)
    assert CNNEncoder(in_channels=1, channels=(8,))(torch.rand(5, 1, 28, 28)).shape == (5, 8, 14, 14)
    assert (encoder(torch.rand(2, 3, 32, 32)) >= 0).all(), "features come out of a ReLU"


def test_flatten_features_takes_the_positions_row_by_row():
    B, C, h, w = 2, 3, 2, 4
    # The entry of image b, channel c, row r and column k is 1000 b + 100 c + 10 r + k.
    fmap = torch.tensor(
        [
            [[[1000 * b + 100 * c + 10 * r + k for k in range(w)] for r in range(h)] for c in range(C)]
            for b in range(B)
        ]
    )
    positions = flatten_features(fmap)
    assert positions.shape == (h * w, B, C)
    assert positions[:, 0, 0].tolist() == [0, 1, 2, 3, 10, 11, 12, 13], "p = r·w + k"
    for p in range(h * w):
        r, k = divmod(p, w)
        for b in range(B):
            assert positions[p, b].tolist() == [1000 * b + 100 * c + 10 * r + k for c in range(C)]


@pytest.mark.parametrize("context_layers", [0, 2])
def test_cnn_encoder_computes_conv_relu_pool_blocks_then_conv_relu_context_layers(context_layers):
    torch.manual_seed(5)
    encoder = CNNEncoder(channels=(4, 6, 5), context_layers=context_layers).double()
    images = _randn(3, 3, 24, 24, seed=34)
    convs = [layer for layer in encoder.blocks if isinstance(layer, nn.Conv2d)]
    x = images
    for conv in convs[:3]:  # the textbook order, in the default memory layout
        x = F.max_pool2d(F.relu(F.conv2d(x, conv.weight.contiguous(), conv.bias, padding=1)), 2)
    for conv in convs[3:]:
        x = F.relu(F.conv2d(x, conv.weight.contiguous(), conv.bias, padding=1))
    assert len(convs) == 3 + context_layers
    assert (encoder(images) - x).abs().max() < TOLERANCE


def test_he_weights_do_not_depend_on_the_memory_layout():
    encoder = CNNEncoder(channels=(4, 6), context_layers=1)
    convs = [layer for layer in encoder.blocks if isinstance(layer, nn.Conv2d)]
    assert all(conv.weight.is_contiguous(memory_format=torch.channels_last) for conv in convs)
    torch.manual_seed(8)
    encoder.reset_parameters()
    torch.manual_seed(8)
    for conv in convs:  # the draws of N(0, 2 / fan_in) into tensors of the default layout, in turn
        fan_in = conv.in_channels * 9
        assert torch.equal(conv.weight, torch.empty(conv.weight.shape).normal_(0.0, (2 / fan_in) ** 0.5))


def test_context_layers_keep_the_size_of_the_feature_map_and_are_he_initialised():
    torch.manual_seed(0)
    encoder = CNNEncoder(channels=(8, 16), context_layers=2)
    assert encoder.feature_size == 16
    assert encoder(torch.rand(2, 3, 32, 32)).shape == (2, 16, 8, 8)
    context = [layer for layer in encoder.blocks[6:] if isinstance(layer, nn.Conv2d)]
    assert len(context) == 2 and not any(isinstance(layer, nn.MaxPool2d) for layer in encoder.blocks[6:])
    for conv in context:
        assert conv.in_channels == conv.out_channels == 16 and not conv.bias.any()
        assert conv.weight.std().item() == pytest.approx((2 / (16 * 9)) ** 0.5, rel=0.1)
    with pytest.raises(ValueError):
        CNNEncoder(context_layers=-1)


@pytest.mark.parametrize(
    ("channels", "context_layers", "expected"),
    [((8,), 0, 4), ((8, 8), 0, 10), ((8, 8, 8), 0, 22), ((8, 8, 8), 1, 38), ((8, 8), 2, 26)],
)
def test_receptive_field_follows_the_recursion(channels, context_layers, expected):
    # r: 1 → +2 (conv) → +1 (pool, j = 1 → 2) → +4 → +2 (j = 4) → +8 → +4 (j = 8); a context layer adds 2 j.
    assert CNNEncoder(channels=channels, context_layers=context_layers).receptive_field == expected


def _influence_box(encoder: CNNEncoder, size: int, row: int, col: int) -> tuple[int, int, int, int]:
    """The smallest box (top, bottom, left, right) of the pixels whose change changes position
    (row, col) of the feature map, found by changing every pixel of a random image in turn."""
    image = _images(1, seed=30, size=size)
    pixels = torch.arange(size * size)
    changed = []
    for change in (1e3, -1e3):
        batch = image.repeat(size * size, 1, 1, 1)
        batch[pixels, :, pixels // size, pixels % size] += change
        with torch.no_grad():
            moved = (encoder(batch)[:, :, row, col] - encoder(image)[:, :, row, col]).abs().amax(dim=1)
        changed.append(moved > 0)
    where = torch.nonzero((changed[0] | changed[1]).view(size, size))
    return int(where[:, 0].min()), int(where[:, 0].max()), int(where[:, 1].min()), int(where[:, 1].max())


@pytest.mark.parametrize("context_layers", [0, 1])
def test_receptive_field_is_the_square_of_pixels_that_change_a_position(context_layers):
    torch.manual_seed(7)
    encoder = CNNEncoder(channels=(4, 6), context_layers=context_layers).double()
    top, bottom, left, right = _influence_box(encoder, 32, 3, 4)
    r = encoder.receptive_field
    assert bottom - top + 1 == r and right - left + 1 == r, (top, bottom, left, right)
    # Position p of a map with stride 4 covers pixels 4p … 4p + 3; the field is centred on them.
    assert (top + bottom) / 2 == 4 * 3 + 1.5 and (left + right) / 2 == 4 * 4 + 1.5


def test_position_coordinates_are_the_centres_of_the_positions():
    coordinates = position_coordinates(2, 3, dtype=torch.float64)
    assert coordinates.shape == (2, 2, 3)
    expected_x = torch.tensor([[-2 / 3, 0.0, 2 / 3]] * 2, dtype=torch.float64)
    expected_y = torch.tensor([[-0.5] * 3, [0.5] * 3], dtype=torch.float64)
    assert (coordinates[0] - expected_x).abs().max() < TOLERANCE, "x_c = (2c + 1) / w − 1"
    assert (coordinates[1] - expected_y).abs().max() < TOLERANCE, "y_r = (2r + 1) / h − 1"


def test_append_coordinates_adds_x_and_y_after_the_features():
    fmap = _randn(2, 3, 2, 4, seed=31)
    extended = append_coordinates(fmap)
    assert extended.shape == (2, 5, 2, 4)
    assert torch.equal(extended[:, :3], fmap)
    for b in range(2):
        for r in range(2):
            for c in range(4):
                assert extended[b, 3, r, c].item() == (2 * c + 1) / 4 - 1
                assert extended[b, 4, r, c].item() == (2 * r + 1) / 2 - 1
    with pytest.raises(ValueError):
        append_coordinates(fmap[0])


# --- show and tell ----------------------------------------------------------------------------------


def _manual_show_and_tell(model: ShowAndTell, images: torch.Tensor, captions_in: torch.Tensor):
    """The equations of show and tell written out: a loop over time with explicit products."""
    im = model.encoder(images).mean(dim=(2, 3))
    rnn = model.rnn
    if model.image_in == "recurrence":
        h = torch.zeros(images.shape[0], model.hidden_size, dtype=images.dtype)
    else:
        h = torch.tanh(im @ model.init.weight.T + model.init.bias)
    logits = []
    for y_prev in captions_in:
        pre_activation = model.embedding.weight[y_prev] @ rnn.W_xh.T + h @ rnn.W_hh.T + rnn.b
        if model.image_in != "initial":
            pre_activation = pre_activation + im @ rnn.W_ih.T
        h = torch.tanh(pre_activation)
        logits.append(h @ model.output.weight.T + model.output.bias)
    return torch.stack(logits)


@pytest.mark.parametrize("image_in", ["initial", "recurrence", "both"])
def test_show_and_tell_forward_equals_the_manual_loop(image_in):
    torch.manual_seed(0)
    model = ShowAndTell(11, 5, 7, encoder=_small_encoder(), image_in=image_in).double()
    images = _images(3, seed=1)
    captions_in = torch.randint(11, (6, 3), generator=_generator(2))
    logits = model(images, captions_in)
    assert logits.shape == (6, 3, 11)
    assert (logits - _manual_show_and_tell(model, images, captions_in)).abs().max() < TOLERANCE


def test_image_in_says_where_the_image_enters():
    torch.manual_seed(1)
    models = {
        image_in: ShowAndTell(9, 4, 5, encoder=_small_encoder(), image_in=image_in).double()
        for image_in in ("initial", "recurrence", "both")
    }
    assert models["initial"].rnn.W_ih is None and models["recurrence"].init is None
    im_a, im_b = _randn(2, 6, seed=3), _randn(2, 6, seed=4)
    y = torch.tensor([3, 7])
    for image_in, model in models.items():
        h0, _ = model.initial_state(im_a)
        if image_in == "recurrence":
            assert torch.equal(h0, torch.zeros(2, 5, dtype=torch.float64)), "h_0 = 0 without an initial image"
        logits_a, _ = model.decoder_step(y, (h0, im_a))
        logits_b, _ = model.decoder_step(y, (h0, im_b))
        depends_on_im = (logits_a - logits_b).abs().max() > 1e-6
        # "initial": once h_0 is fixed, the image is never looked at again.
        assert depends_on_im == (image_in != "initial"), image_in
    h0_a, _ = models["both"].initial_state(im_a)
    h0_b, _ = models["both"].initial_state(im_b)
    assert (h0_a - h0_b).abs().max() > 1e-6
    with pytest.raises(ValueError):
        ShowAndTell(9, image_in="never")


# --- show, attend and tell ------------------------------------------------------------------------


def _manual_show_attend_tell(model: ShowAttendTell, images: torch.Tensor, captions_in: torch.Tensor):
    """The equations of show, attend and tell written out, with the additive score."""
    fmap = model.encoder(images)
    B, C, h, w = fmap.shape

    def annotation(p: int) -> torch.Tensor:
        r, c = divmod(p, w)
        if not model.coordinates:
            return fmap[:, :, r, c]
        place = torch.tensor([(2 * c + 1) / w - 1, (2 * r + 1) / h - 1], dtype=fmap.dtype)
        return torch.cat([fmap[:, :, r, c], place.expand(B, 2)], dim=1)

    annotations = torch.stack([annotation(p) for p in range(h * w)])  # (N, B, D)
    att, rnn = model.attention, model.rnn
    a = annotations.mean(dim=0)
    s = torch.tanh(a @ model.init.weight.T + model.init.bias)
    logits, alphas = [], []
    for y_prev in captions_in:
        x = model.embedding.weight[y_prev]
        s = torch.tanh(x @ rnn.W_xh.T + s @ rnn.W_hh.T + a @ rnn.W_ih.T + rnn.b)
        scores = torch.stack([torch.tanh(h_i @ att.W1.T + s @ att.W2.T) @ att.v for h_i in annotations])
        alpha = torch.exp(scores) / torch.exp(scores).sum(dim=0)
        a = sum(alpha[i].unsqueeze(1) * annotations[i] for i in range(h * w))
        o = torch.tanh(torch.cat([a, s], dim=1) @ model.combine.weight.T + model.combine.bias)
        logits.append(o @ model.output.weight.T + model.output.bias)
        alphas.append(alpha.T)
    return torch.stack(logits), torch.stack(alphas)


@pytest.mark.parametrize("coordinates", [False, True])
def test_show_attend_tell_forward_equals_the_manual_loop(coordinates):
    torch.manual_seed(2)
    model = ShowAttendTell(10, embedding_size=4, hidden_size=5, encoder=_small_encoder(), attention_size=3,
                           coordinates=coordinates)
    model = model.double()
    assert model.annotation_size == 6 + 2 * coordinates
    images = _images(2, seed=5)
    captions_in = torch.randint(10, (4, 2), generator=_generator(6))
    logits, alphas = model(images, captions_in)
    expected_logits, expected_alphas = _manual_show_attend_tell(model, images, captions_in)
    assert logits.shape == (4, 2, 10) and alphas.shape == (4, 2, 16)
    assert (logits - expected_logits).abs().max() < TOLERANCE
    assert (alphas - expected_alphas).abs().max() < TOLERANCE


def test_with_coordinates_the_context_ends_with_the_place_it_looked_at():
    torch.manual_seed(3)
    model = ShowAttendTell(8, 4, 6, encoder=_small_encoder(), coordinates=True).double()
    images = _images(3, seed=32)
    log: list[torch.Tensor] = []
    step, state = model.step_function(images, attention_log=log)
    features = flatten_features(model.encoder(images)).transpose(0, 1)  # (B, N, C)
    places = position_coordinates(4, 4, dtype=torch.float64).flatten(start_dim=1).T  # (N, 2), row-major
    assert (state[1][:, -2:]).abs().max() < TOLERANCE, "a_0 is the mean place of a symmetric grid: the centre"
    for y_prev in torch.randint(8, (4, 3), generator=_generator(33)):
        _, state = step(y_prev, state)
        weights = log[-1].T  # α^t, (B, N)
        context = state[1]
        assert (context[:, -2:] - weights @ places).abs().max() < TOLERANCE
        assert (context[:, :-2] - (weights.unsqueeze(-1) * features).sum(dim=1)).abs().max() < TOLERANCE


@pytest.mark.parametrize("score", ["dot", "bilinear", "reduced_rank", "additive"])
def test_attention_maps_are_distributions_over_the_positions(score):
    torch.manual_seed(3)
    model = ShowAttendTell(8, 4, 6, encoder=_small_encoder(), attention=score).double()
    _, alphas = model(_images(3, seed=7, size=24), torch.randint(8, (5, 3), generator=_generator(8)))
    assert alphas.shape == (5, 3, 36)
    assert (alphas >= 0).all()
    assert (alphas.sum(dim=-1) - 1).abs().max() < TOLERANCE


@pytest.mark.parametrize("model_class", [ShowAndTell, ShowAttendTell])
def test_step_function_gives_the_log_softmax_of_forward(model_class):
    torch.manual_seed(4)
    model = model_class(7, 3, 4, encoder=_small_encoder()).double()
    images = _images(2, seed=9)
    captions_in = torch.randint(7, (5, 2), generator=_generator(10))
    logits = model(images, captions_in)
    logits = logits[0] if isinstance(logits, tuple) else logits
    step, state = model.step_function(images)
    for t, y_prev in enumerate(captions_in):
        log_probs, state = step(y_prev, state)
        assert (log_probs - F.log_softmax(logits[t], dim=-1)).abs().max() < TOLERANCE


# --- loss and decoding ------------------------------------------------------------------------------


def test_caption_loss_is_the_masked_cross_entropy():
    logits = _randn(5, 3, 6, seed=11)
    targets = torch.randint(6, (5, 3), generator=_generator(12))
    lengths = torch.tensor([5, 2, 3])
    loss = caption_loss(logits, targets, lengths)
    assert abs(loss.item() - masked_cross_entropy(logits, targets, lengths).item()) < TOLERANCE
    padded = targets.clone()
    padded[2:, 1], padded[3:, 2] = -100, -100
    expected = F.cross_entropy(logits.reshape(-1, 6), padded.reshape(-1), ignore_index=-100)
    assert abs(loss.item() - expected.item()) < TOLERANCE


def _manual_greedy(model, images: torch.Tensor, bos_id: int, eos_id: int, max_len: int):
    """Greedy captions one image at a time: argmax, feed it back, stop at </s> or after max_len words."""
    captions, maps = [], []
    for image in images:
        log = []
        if isinstance(model, ShowAttendTell):
            step, state = model.step_function(image.unsqueeze(0), attention_log=log)
        else:
            step, state = model.step_function(image.unsqueeze(0))
        y, caption = torch.tensor([bos_id]), []
        while len(caption) < max_len:
            log_probs, state = step(y, state)
            y = log_probs.argmax(dim=-1)
            if y.item() == eos_id:
                break
            caption.append(y.item())
        captions.append(caption)
        maps.append(torch.stack([alpha[:, 0] for alpha in log[: len(caption)]]) if log and caption else None)
    return captions, maps


@pytest.mark.parametrize(
    ("model_class", "seed", "eos_bias"), [(ShowAndTell, 5, 0.5), (ShowAttendTell, 6, 1.0)]
)
def test_greedy_caption_equals_a_manual_argmax_loop(model_class, seed, eos_bias):
    torch.manual_seed(seed)
    model = model_class(6, 3, 8, encoder=_small_encoder()).double()
    eos_id = 3
    # Larger output weights, and a bias of </s> chosen so that the captions end at many lengths.
    with torch.no_grad():
        model.output.weight.normal_(0.0, 1.0)
        model.output.bias[eos_id] += eos_bias
    images = _images(8, seed=13) * torch.arange(8, dtype=torch.float64).reshape(8, 1, 1, 1)
    captions, maps = greedy_caption(model, images, bos_id=2, eos_id=eos_id, max_len=6)
    with torch.no_grad():
        expected_captions, expected_maps = _manual_greedy(model, images, 2, eos_id, 6)
    assert captions == expected_captions
    assert len({len(caption) for caption in captions}) >= 3, "the test needs captions of different lengths"
    for caption, attention_map, expected_map in zip(captions, maps, expected_maps, strict=True):
        if model_class is ShowAndTell:
            assert attention_map.numel() == 0
        elif caption:
            assert attention_map.shape == (len(caption), 16)
            assert (attention_map - expected_map).abs().max() < TOLERANCE
        else:
            assert attention_map.shape == (0, 16)


def test_beam_search_of_width_one_is_greedy_captioning():
    torch.manual_seed(6)
    model = ShowAttendTell(6, 3, 8, encoder=_small_encoder()).double()
    images = _images(3, seed=14)
    captions, _ = greedy_caption(model, images, bos_id=2, eos_id=3, max_len=7)
    with torch.no_grad():
        for image, caption in zip(images, captions, strict=True):
            step, state = model.step_function(image.unsqueeze(0))
            (best,) = beam_search(step, state, bos_id=2, eos_id=3, beam_width=1, max_len=7)
            assert best.tokens == caption
            step, state = model.step_function(image.unsqueeze(0))
            assert greedy_decode(step, state, 2, 3, 7) == [caption]


# --- learning ---------------------------------------------------------------------------------------

COLOURS = torch.tensor([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], dtype=torch.float)
BOS_ID, EOS_ID, FIRST_WORD = 0, 1, 2  # the colour words are ids 2 … 7


def _two_colour_images() -> tuple[torch.Tensor, torch.Tensor]:
    """Every 8×8 image whose left half has one colour and right half another (36), and the
    captions "left right </s>", shape (3, 36)."""
    pairs = torch.cartesian_prod(torch.arange(len(COLOURS)), torch.arange(len(COLOURS)))
    n = len(pairs)
    images = torch.empty(n, 3, 8, 8)
    images[..., :4] = COLOURS[pairs[:, 0]].reshape(n, 3, 1, 1)
    images[..., 4:] = COLOURS[pairs[:, 1]].reshape(n, 3, 1, 1)
    return images, torch.cat([pairs.T + FIRST_WORD, torch.full((1, n), EOS_ID)])


@pytest.mark.parametrize("model_class", [ShowAndTell, ShowAttendTell])
def test_a_captioner_learns_the_colours_of_two_halves(model_class):
    torch.manual_seed(0)
    model = model_class(FIRST_WORD + len(COLOURS), 8, 16, encoder=CNNEncoder(channels=(8, 16)))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    images, captions = _two_colour_images()
    captions_in = torch.cat([torch.full((1, len(images)), BOS_ID), captions[:-1]])
    lengths = torch.full((len(images),), 3)
    for _ in range(100):
        logits = model(images, captions_in)
        logits = logits[0] if isinstance(logits, tuple) else logits
        loss = caption_loss(logits, captions, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    predicted, maps = greedy_caption(model, images, BOS_ID, EOS_ID, max_len=4)
    assert predicted == captions[:2].T.tolist()
    if model_class is ShowAttendTell:
        # The feature map has 2 × 2 positions; positions 0 and 2 are its left column.
        left = torch.stack(maps)[:, :, [0, 2]].sum(dim=-1).mean(dim=0)
        assert left[0] > 0.9 and left[1] < 0.1, f"look left for the first word, right for the second: {left}"
