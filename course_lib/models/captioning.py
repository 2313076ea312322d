"""Image captioning: a small CNN reads the image, a recurrent decoder writes the caption.

A captioner is a conditional language model, p(y_1 … y_T | image) = Π_t p(y_t | y_{<t}, image).
The image enters the decoder in one of two ways.

**Show and tell.** The CNN's feature map (B, C, h, w) is pooled into one vector per image,
im = mean over the h·w positions, shape (B, F) with F = C. The lecture's recurrence adds it
to every step (Vinyals et al., 2015, feed it once instead, as the first input of an LSTM),

    h_t = tanh(W_xh x_t + W_hh h_{t−1} + W_ih im + b),        x_t = E y_{t−1},

and/or starts the recurrence from it, h_0 = tanh(W_init im + b_init) (``image_in`` chooses:
``"recurrence"``, ``"initial"`` or ``"both"``). The next word is predicted from h_t:
logits_t = W_out h_t + b_out.

**Show, attend and tell.** One vector for the whole image forgets where things are. Keeping
the h·w positions of the feature map as a sequence of annotation vectors h_1 … h_N (N = h·w,
time-major (N, B, C), like the states of an encoder), the decoder looks at them afresh at
every step with the attention of Chapter 7. With ``coordinates=True`` every annotation vector
also carries the place of its position, h_i = [features_i; x_i; y_i] (:func:`append_coordinates`),
so that a look at a place also tells where the place is.

    s_t = tanh(W_xh x_t + W_hh s_{t−1} + W_ih a_{t−1} + b)     (input [E y_{t−1}; a_{t−1}])
    α^t = softmax(e^t),   e^t_i = score(s_t, h_i),   a_t = Σ_i α^t_i h_i
    o_t = tanh(W_u [a_t; s_t] + b_u),   logits_t = W_out o_t + b_out

It is the same recurrent step as show and tell, with the context a_{t−1} of the previous step
in the place of the pooled image (W_xh x_t + W_ih a_{t−1} = [W_xh | W_ih] [x_t; a_{t−1}]),
and the output layer sees [a_t; s_t] as in the lectures. It starts from the mean of the
annotations, a_0 = (1/N) Σ_i h_i (attention spread evenly), and s_0 = tanh(W_init a_0 + b_init).
The weights α^t (one number per position, summing to 1) show where the model looked for
each word.

Both models have ``forward(images, captions_in)`` for training with teacher forcing
(``captions_in`` = ``<s>`` + the caption without its last token, time-major (T, B)) and a
``step_function(images)`` for :mod:`course_lib.decoding` (greedy search, beam search).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.decoding import State, StepFunction, greedy_decode
from course_lib.metrics import masked_cross_entropy
from course_lib.models.attention import Attention

IMAGE_INPUTS = ("initial", "recurrence", "both")


class CNNEncoder(nn.Module):
    """A small convolutional network trained from scratch: blocks of conv 3×3 → ReLU → max-pool 2×2.

    Each block keeps the size of its input (padding 1) and then halves it, so with k blocks a
    (B, C_in, H_img, W_img) image becomes a feature map (B, C, H_img / 2^k, W_img / 2^k): with
    the default three blocks, 32×32 images give 4×4 = 16 positions and 48×48 images 6×6 = 36.
    Every position describes one patch of the image, its receptive field (``receptive_field``).

    Optional *context layers* follow the blocks: conv 3×3 → ReLU with C channels and no
    pooling, which keep the size of the feature map and let every position see its neighbours.
    Each widens the receptive field by 2 · 2^k pixels (one position of the map on each side):
    with three blocks, from 22 to 38 pixels, so that the feature vector of one object of a
    32×32 scene can also see an object two grid cells away.

    The convolutions are initialised for ReLU networks (He et al., 2015): weights drawn from
    N(0, 2 / fan_in) with fan_in = C_in · 3 · 3, biases zero, which keeps the mean square of
    the activations about the same from block to block. PyTorch's default initialisation of
    ``nn.Conv2d`` draws smaller weights: each conv–ReLU block then shrinks the spread of its
    input, and after three blocks the features of different images hardly differ, which leaves
    a decoder almost no signal to learn from at the start.

    Two choices make it faster on a CPU without changing what it computes (up to rounding):
    each block pools before its ReLU, the same as ReLU then pooling because ReLU is increasing
    (max_j relu(z_j) = relu(max_j z_j)), on a quarter of the values; and the convolutions run in
    PyTorch's channels-last memory layout, for which its CPU kernels are faster.

    Args:
        in_channels: C_in, 3 for RGB images.
        channels: the number of feature maps of each block; C = ``channels[-1]``.
        context_layers: the number of context layers after the blocks (0: none).

    Attributes:
        feature_size: C, the size of the feature vector at each position.
    """

    def __init__(self, in_channels: int = 3, channels: Sequence[int] = (32, 64, 64), context_layers: int = 0):
        super().__init__()
        if not channels:
            raise ValueError("need at least one block of channels")
        if context_layers < 0:
            raise ValueError(f"context_layers must be at least 0, got {context_layers}")
        layers: list[nn.Module] = []
        previous = in_channels
        for size in channels:
            layers += [nn.Conv2d(previous, size, kernel_size=3, padding=1), nn.MaxPool2d(2), nn.ReLU()]
            previous = size
        for _ in range(context_layers):
            layers += [nn.Conv2d(previous, previous, kernel_size=3, padding=1), nn.ReLU()]
        self.blocks = nn.Sequential(*layers).to(memory_format=torch.channels_last)
        self.feature_size = previous
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """He initialisation of every convolution: W ~ N(0, 2 / fan_in), b = 0.

        The weights are drawn in the default layout and then copied, so that a seed gives the
        same weights whatever the memory layout of the convolutions.
        """
        for layer in self.blocks:
            if isinstance(layer, nn.Conv2d):
                fan_in = layer.in_channels * math.prod(layer.kernel_size)
                weight = torch.empty(layer.weight.shape, dtype=layer.weight.dtype, device=layer.weight.device)
                with torch.no_grad():
                    layer.weight.copy_(weight.normal_(0.0, math.sqrt(2.0 / fan_in)))
                    layer.bias.zero_()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """The feature map (B, C, h, w) of images (B, C_in, H_img, W_img)."""
        if images.dim() != 4:
            raise ValueError(f"expected images of shape (B, C_in, H_img, W_img), got {tuple(images.shape)}")
        return self.blocks(images.contiguous(memory_format=torch.channels_last))

    @property
    def receptive_field(self) -> int:
        """The side, in pixels, of the square of the image that one position of the feature map sees.

        Layer by layer, r ← r + (k − 1) · j for a k×k convolution or pooling window, where j is
        the distance in pixels between neighbouring positions of the layer's input (j doubles
        after each pooling); r = 1 and j = 1 at the image. Three blocks give 22 pixels.
        """
        size, jump = 1, 1
        for layer in self.blocks:
            if isinstance(layer, nn.Conv2d):
                size += (layer.kernel_size[0] - 1) * jump
            elif isinstance(layer, nn.MaxPool2d):
                size += (layer.kernel_size - 1) * jump
                jump *= layer.stride
        return size


def flatten_features(fmap: torch.Tensor) -> torch.Tensor:
    """The positions of a feature map as a time-major sequence of annotation vectors.

    Position p = r·w + c (row-major: along the first row, then the second, …) holds the
    feature vector of row r and column c.

    Args:
        fmap: the feature map, shape (B, C, h, w).

    Returns:
        h_1 … h_N with N = h·w, shape (N, B, C).
    """
    if fmap.dim() != 4:
        raise ValueError(f"expected a feature map of shape (B, C, h, w), got {tuple(fmap.shape)}")
    return fmap.flatten(start_dim=2).permute(2, 0, 1)


def position_coordinates(h: int, w: int, dtype: torch.dtype = torch.float32,
                         device: torch.device | str | None = None) -> torch.Tensor:
    """The coordinates of the centres of the positions of an h × w feature map, in [−1, 1].

        x_c = (2c + 1) / w − 1        (column c, −1 at the left edge, +1 at the right)
        y_r = (2r + 1) / h − 1        (row r, −1 at the top, +1 at the bottom)

    Returns:
        shape (2, h, w): channel 0 holds x_c (the same down each column), channel 1 y_r.
    """
    xs = (2 * torch.arange(w, dtype=dtype, device=device) + 1) / w - 1
    ys = (2 * torch.arange(h, dtype=dtype, device=device) + 1) / h - 1
    return torch.stack([xs.expand(h, w), ys.unsqueeze(1).expand(h, w)])


def append_coordinates(fmap: torch.Tensor) -> torch.Tensor:
    """The feature map with two more channels holding the place of each position.

    At row r and column c, channel C holds x_c and channel C + 1 holds y_r
    (:func:`position_coordinates`); channels 0 … C − 1 are the features, unchanged. After
    :func:`flatten_features`, annotation vector h_i = [features_i; x_i; y_i], and the context of
    attention, a_t = Σ_i α^t_i h_i, ends with the mean place Σ_i α^t_i (x_i, y_i) it looked at.

    Args:
        fmap: shape (B, C, h, w).

    Returns:
        shape (B, C + 2, h, w).
    """
    if fmap.dim() != 4:
        raise ValueError(f"expected a feature map of shape (B, C, h, w), got {tuple(fmap.shape)}")
    B, _, h, w = fmap.shape
    coordinates = position_coordinates(h, w, fmap.dtype, fmap.device)
    return torch.cat([fmap, coordinates.expand(B, 2, h, w)], dim=1)


def image_rnn_step(
    x: torch.Tensor,
    h_prev: torch.Tensor,
    im: torch.Tensor | None,
    W_xh: torch.Tensor,
    W_hh: torch.Tensor,
    W_ih: torch.Tensor | None,
    b: torch.Tensor,
) -> torch.Tensor:
    """One step of the image-conditioned RNN, h_t = tanh(W_xh x_t + W_hh h_{t−1} + W_ih im + b).

    A batch holds row vectors, so in code the products are transposed (x_t W_xhᵀ). The image
    term is the input term of an ordinary RNN with the input [x_t; im]: W_xh x_t + W_ih im =
    [W_xh | W_ih] [x_t; im].

    Args:
        x: the inputs x_t (word vectors E y_{t−1}), shape (B, E).
        h_prev: h_{t−1}, shape (B, H).
        im: the image vector, shape (B, F), or ``None`` for no image term.
        W_xh: shape (H, E).
        W_hh: shape (H, H).
        W_ih: shape (H, F), or ``None`` (with ``im=None``).
        b: shape (H,).

    Returns:
        h_t, shape (B, H).
    """
    if (im is None) != (W_ih is None):
        raise ValueError("give both im and W_ih, or neither")
    pre_activation = x @ W_xh.T + h_prev @ W_hh.T + b
    if im is not None:
        pre_activation = pre_activation + im @ W_ih.T
    return torch.tanh(pre_activation)


def _uniform_parameter(*shape: int, bound: float) -> nn.Parameter:
    """A parameter of the given shape with entries ~ U(−bound, bound) (torch's RNN initialisation)."""
    return nn.Parameter(torch.empty(*shape).uniform_(-bound, bound))


class _ImageRNN(nn.Module):
    """The decoder's recurrence with an extra input: the parameters of :func:`image_rnn_step`.

    ``W_xh`` (H, E), ``W_hh`` (H, H), ``W_ih`` (H, F) (absent when ``image_size`` is ``None``)
    and ``b`` (H,), every entry ~ U(−1/√H, 1/√H).
    """

    def __init__(self, input_size: int, hidden_size: int, image_size: int | None):
        super().__init__()
        bound = 1.0 / math.sqrt(hidden_size)
        self.W_xh = _uniform_parameter(hidden_size, input_size, bound=bound)
        self.W_hh = _uniform_parameter(hidden_size, hidden_size, bound=bound)
        self.register_parameter(
            "W_ih", None if image_size is None else _uniform_parameter(hidden_size, image_size, bound=bound)
        )
        self.b = _uniform_parameter(hidden_size, bound=bound)

    def forward(self, x: torch.Tensor, h_prev: torch.Tensor, im: torch.Tensor) -> torch.Tensor:
        """h_t (B, H) from x_t (B, E), h_{t−1} (B, H) and the image input (B, F) (unused without W_ih)."""
        return image_rnn_step(
            x, h_prev, None if self.W_ih is None else im, self.W_xh, self.W_hh, self.W_ih, self.b
        )


def _check_captions(images: torch.Tensor, captions_in: torch.Tensor) -> None:
    if captions_in.dim() != 2 or captions_in.shape[1] != images.shape[0]:
        raise ValueError(
            f"captions_in must have shape (T, B) with B = {images.shape[0]} images, "
            f"got {tuple(captions_in.shape)}"
        )


class ShowAndTell(nn.Module):
    """Show and tell: a CNN, its features pooled into one vector, and an RNN decoder.

    This is the lecture's variant, a vanilla RNN that sees the image vector at every step
    and/or in its initial state; the model of Vinyals et al. (2015) is an LSTM that reads the
    image vector once, as its first input, before the first word.

        im = mean over positions of CNN(image)                       (B, F)
        h_0 = tanh(W_init im + b_init)  ("initial", "both"),  else 0
        h_t = tanh(W_xh E y_{t−1} + W_hh h_{t−1} [+ W_ih im] + b)   ([…] for "recurrence", "both")
        logits_t = W_out h_t + b_out

    Args:
        vocab_size: V.
        embedding_size: E, the size of the word vectors.
        hidden_size: H.
        encoder: the CNN; a :class:`CNNEncoder` with its defaults when ``None``.
        image_in: where the image enters: ``"initial"`` (only h_0), ``"recurrence"`` (only the
            steps, from h_0 = 0) or ``"both"``.

    Submodules: ``encoder``, ``embedding`` (E, V × E), ``rnn`` (parameters ``W_xh``, ``W_hh``,
    ``W_ih``, ``b``), ``init`` (W_init, b_init; absent for ``"recurrence"``), ``output`` (W_out, b_out).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 32,
        hidden_size: int = 128,
        encoder: CNNEncoder | None = None,
        image_in: str = "both",
    ):
        super().__init__()
        if image_in not in IMAGE_INPUTS:
            raise ValueError(f"image_in must be one of {IMAGE_INPUTS}, got {image_in!r}")
        self.image_in = image_in
        self.hidden_size = hidden_size
        self.encoder = CNNEncoder() if encoder is None else encoder
        image_size = self.encoder.feature_size
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = _ImageRNN(embedding_size, hidden_size, image_size if image_in != "initial" else None)
        self.init = nn.Linear(image_size, hidden_size) if image_in != "recurrence" else None
        self.output = nn.Linear(hidden_size, vocab_size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """im, the feature map of the CNN averaged over its positions: images (B, C_in, H, W) -> (B, F)."""
        return self.encoder(images).mean(dim=(2, 3))

    def initial_state(self, im: torch.Tensor) -> State:
        """The decoder state before the first word, (h_0 (B, H), im (B, F))."""
        if self.init is None:
            h0 = im.new_zeros(im.shape[0], self.hidden_size)
        else:
            h0 = torch.tanh(self.init(im))
        return h0, im

    def decoder_step(self, y_prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        """One step: the logits (N, V) of the next word after y_{t−1} (N,), and the new state (h_t, im)."""
        h_prev, im = state
        h = self.rnn(self.embedding(y_prev), h_prev, im)
        return self.output(h), (h, im)

    def forward(self, images: torch.Tensor, captions_in: torch.Tensor) -> torch.Tensor:
        """Teacher forcing: the logits (T, B, V) of every next word, from images (B, C_in, H, W) and the
        input words y_0 … y_{T−1} (T, B) (``<s>`` and the caption without its last word)."""
        _check_captions(images, captions_in)
        state = self.initial_state(self.encode(images))
        logits = []
        for y_prev in captions_in:
            step_logits, state = self.decoder_step(y_prev, state)
            logits.append(step_logits)
        return torch.stack(logits)

    def step_function(self, images: torch.Tensor) -> tuple[StepFunction, State]:
        """For :mod:`course_lib.decoding`: ``step(y_prev (N,), state) -> (log-probabilities (N, V), state)``
        and the initial state of the images, one row per image."""

        def step(y_prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            logits, state = self.decoder_step(y_prev, state)
            return F.log_softmax(logits, dim=-1), state

        return step, self.initial_state(self.encode(images))


class ShowAttendTell(nn.Module):
    """Show, attend and tell: an RNN decoder with attention over the positions of the feature map.

        h_1 … h_N = flatten_features(CNN(image))                      (N, B, D), N = h·w
            (with ``coordinates``: flatten_features(append_coordinates(CNN(image))))
        a_0 = (1/N) Σ_i h_i,   s_0 = tanh(W_init a_0 + b_init)
        s_t = tanh(W_xh E y_{t−1} + W_hh s_{t−1} + W_ih a_{t−1} + b)
        (a_t, α^t) = Attention(s_t, h_1 … h_N)
        o_t = tanh(W_u [a_t; s_t] + b_u),   logits_t = W_out o_t + b_out

    D, the size of an annotation vector, is C without coordinates and C + 2 with them.

    Args:
        vocab_size: V.
        embedding_size: E.
        hidden_size: H, the size of s_t.
        encoder: the CNN; a :class:`CNNEncoder` with its defaults when ``None``.
        attention: the score function, one of ``course_lib.models.attention.SCORE_FUNCTIONS``
            (``"dot"`` needs H = D).
        attention_size: A of the additive score, K of the reduced-rank one; H when ``None``.
        coordinates: append the place (x_i, y_i) of each position to its annotation vector.

    Attributes:
        annotation_size: D.

    Submodules: ``encoder``, ``embedding``, ``rnn`` (``W_xh``, ``W_hh``, ``W_ih`` (H, D), ``b``),
    ``init``, ``attention``, ``combine`` (W_u, b_u: H × (D + H)), ``output`` (W_out, b_out).
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int = 32,
        hidden_size: int = 128,
        encoder: CNNEncoder | None = None,
        attention: str = "additive",
        attention_size: int | None = None,
        coordinates: bool = False,
    ):
        super().__init__()
        self.encoder = CNNEncoder() if encoder is None else encoder
        self.coordinates = coordinates
        self.annotation_size = self.encoder.feature_size + (2 if coordinates else 0)
        self.embedding = nn.Embedding(vocab_size, embedding_size)
        self.rnn = _ImageRNN(embedding_size, hidden_size, self.annotation_size)
        self.init = nn.Linear(self.annotation_size, hidden_size)
        self.attention = Attention(attention, hidden_size, self.annotation_size, attention_size)
        self.combine = nn.Linear(self.annotation_size + hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, vocab_size)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """The annotation vectors h_1 … h_N of images (B, C_in, H, W): shape (N, B, D)."""
        fmap = self.encoder(images)
        return flatten_features(append_coordinates(fmap) if self.coordinates else fmap)

    def initial_state(self, annotations: torch.Tensor) -> State:
        """The decoder state before the first word, (s_0 (B, H), a_0 (B, D), annotations, keys).

        The annotations (B, N, D) and their keys (the part of the scores that depends on h_i
        only, ``Attention.precompute``, computed once instead of at every step) travel in the
        state with the batch first, so that search can reorder and copy its rows (beams) alike.
        """
        a0 = annotations.mean(dim=0)
        keys = self.attention.precompute(annotations)
        return torch.tanh(self.init(a0)), a0, annotations.transpose(0, 1), keys.transpose(0, 1)

    def decoder_step(self, y_prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        """One step: the logits (N, V) of the next word after y_{t−1} (N,), the new state, α^t (N_pos, N)."""
        s_prev, a_prev, annotations, keys = state
        s = self.rnn(self.embedding(y_prev), s_prev, a_prev)
        positions = annotations.transpose(0, 1)
        mask = torch.ones(positions.shape[:2], dtype=torch.bool, device=positions.device)
        a, alpha = self.attention(s, positions, mask, keys=keys.transpose(0, 1))
        o = torch.tanh(self.combine(torch.cat([a, s], dim=-1)))
        return self.output(o), (s, a, annotations, keys), alpha

    def forward(self, images: torch.Tensor, captions_in: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher forcing: the logits (T, B, V) of every next word and the attention weights
        (T, B, N) of every step, from images (B, C_in, H, W) and the input words (T, B)."""
        _check_captions(images, captions_in)
        state = self.initial_state(self.encode(images))
        logits, alphas = [], []
        for y_prev in captions_in:
            step_logits, state, alpha = self.decoder_step(y_prev, state)
            logits.append(step_logits)
            alphas.append(alpha.T)
        return torch.stack(logits), torch.stack(alphas)

    def step_function(
        self, images: torch.Tensor, attention_log: list | None = None
    ) -> tuple[StepFunction, State]:
        """For :mod:`course_lib.decoding`: the step function and the initial state of the images.

        When ``attention_log`` is a list, every call of the step appends its α^t, shape (N_pos, N).
        """

        def step(y_prev: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
            logits, state, alpha = self.decoder_step(y_prev, state)
            if attention_log is not None:
                attention_log.append(alpha)
            return F.log_softmax(logits, dim=-1), state

        return step, self.initial_state(self.encode(images))


def caption_loss(logits: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy over the real words of a padded batch of captions, in nats.

        J = Σ_{t,b} m_{t,b} · (−log softmax(z_{t,b})[y_{t,b}]) / Σ_{t,b} m_{t,b},   m_{t,b} = [t < n_b],

    so padding counts neither in the sum nor in the number of words. The targets are the
    captions followed by ``</s>``, and n_b counts that ``</s>``.

    Args:
        logits: z, shape (T, B, V).
        targets: y, shape (T, B).
        lengths: n_b, shape (B,).

    Returns:
        J, a scalar tensor.
    """
    return masked_cross_entropy(logits, targets, lengths=lengths)


def greedy_caption(
    model: ShowAndTell | ShowAttendTell, images: torch.Tensor, bos_id: int, eos_id: int, max_len: int
) -> tuple[list[list[int]], list[torch.Tensor]]:
    """Caption every image with the most probable word at each step (``course_lib.decoding.greedy_decode``).

    Args:
        model: a :class:`ShowAndTell` or :class:`ShowAttendTell`.
        images: shape (B, C_in, H, W).
        bos_id, eos_id: the ids of ``<s>`` and ``</s>``.
        max_len: the longest caption, in words (without ``</s>``).

    Returns:
        the captions (lists of ids without ``<s>`` and ``</s>``) and, for each, its attention
        weights: a tensor (len_out, N) whose row t is α^t over the N = h·w positions while the
        model wrote word t (an empty (0, 0) tensor for a model without attention).
    """
    with torch.no_grad():
        if not isinstance(model, ShowAttendTell):
            step, state = model.step_function(images)
            captions = greedy_decode(step, state, bos_id, eos_id, max_len)
            return captions, [torch.empty(0, 0) for _ in captions]
        log: list[torch.Tensor] = []
        step, state = model.step_function(images, attention_log=log)
        captions = greedy_decode(step, state, bos_id, eos_id, max_len)
    positions = log[0].shape[0]
    maps = [
        torch.stack([alpha[:, row] for alpha in log[: len(caption)]])
        if caption
        else torch.empty(0, positions)
        for row, caption in enumerate(captions)
    ]
    return captions, maps
