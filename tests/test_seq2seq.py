"""Tests of course_lib.models.seq2seq.

Oracles: the model's equations written out one source at a time, without padding or packing
(torch.nn.LSTM on the bare sequence, course_lib's lstm_step for the decoder cell and the
textbook score functions), the same batch with more padding and more sources, the scratch
encoder against the cuDNN one with the same weights, and a short training run that must
learn to reverse strings.
"""

import pytest
import torch

from course_lib.decoding import greedy_decode
from course_lib.metrics import masked_cross_entropy
from course_lib.models.attention import (
    SCORE_FUNCTIONS,
    additive_scores,
    bilinear_scores,
    dot_scores,
    reduced_rank_scores,
)
from course_lib.models.lstm import lstm_step
from course_lib.models.seq2seq import Memory, Seq2Seq

pytestmark = pytest.mark.usefixtures("one_thread")

PAD, BOS, EOS = 0, 2, 3
V_SRC, V_TGT, E, H = 11, 9, 6, 8
LENGTHS = torch.tensor([5, 2, 4])
ATTENTIONS = [None, *SCORE_FUNCTIONS]
# Measured largest differences: 5.6e-17 against the per-source equations (float64), 3.7e-8 for
# padding and batch composition (float32), 3.0e-8 between the two encoders (float32).
TOL64, TOL32 = 1e-12, 1e-6



def batch(seed: int = 0, lengths: torch.Tensor = LENGTHS, target_length: int = 4):
    """Padded source ids (S, B) with lengths (B,), and target inputs (T, B) starting with <s>."""
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, V_SRC, (int(lengths.max()), len(lengths)), generator=generator)
    src = src.masked_fill(torch.arange(src.shape[0]).unsqueeze(1) >= lengths, PAD)
    tgt_in = torch.randint(4, V_TGT, (target_length, len(lengths)), generator=generator)
    tgt_in[0] = BOS
    return src, lengths, tgt_in


def make_model(attention: str | None, seed: int = 0, **options) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(V_SRC, V_TGT, E, H, attention=attention, attention_size=5, **options)


def max_error(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def scores_of(model: Seq2Seq, s: torch.Tensor, enc: torch.Tensor) -> torch.Tensor:
    """e (n, 1) with the textbook score function and the model's weights."""
    attention = model.attention
    if attention.score == "dot":
        return dot_scores(s, enc)
    if attention.score == "bilinear":
        return bilinear_scores(s, enc, attention.W)
    if attention.score == "reduced_rank":
        return reduced_rank_scores(s, enc, attention.U, attention.V)
    return additive_scores(s, enc, attention.W1, attention.W2, attention.v)


def equations(model: Seq2Seq, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
    """Logits (T, V) for ONE unpadded source (n,), computed from the module docstring's equations."""
    enc, (h_n, c_n) = model.encoder(model.src_embedding(src).unsqueeze(1))
    s = torch.tanh(model.init_hidden(torch.cat([h_n[0], h_n[1]], dim=-1)))
    c = torch.tanh(model.init_cell(torch.cat([c_n[0], c_n[1]], dim=-1)))
    o = torch.zeros_like(s)
    cell = model.decoder_cell
    logits = []
    for y in tgt_in:
        x = torch.cat([model.tgt_embedding(y.view(1)), o], dim=-1)
        s, c = lstm_step(x, s, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
        if model.attention is None:
            o = torch.tanh(s @ model.combine.weight.T)
        else:
            alpha = scores_of(model, s, enc).softmax(0)
            a = (alpha.unsqueeze(-1) * enc).sum(0)
            o = torch.tanh(torch.cat([a, s], dim=-1) @ model.combine.weight.T)
        logits.append(o @ model.output.weight.T + model.output.bias)
    return torch.cat(logits)


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_forward_follows_the_equations_source_by_source(attention):
    model = make_model(attention).double()
    src, lengths, tgt_in = batch()
    logits = model(src, lengths, tgt_in)
    assert logits.shape == (tgt_in.shape[0], len(lengths), V_TGT)
    for b, n in enumerate(lengths.tolist()):
        assert max_error(logits[:, b], equations(model, src[:n, b], tgt_in[:, b])) < TOL64


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_teacher_forcing_equals_a_loop_of_decoder_steps_and_of_the_step_function(attention):
    model = make_model(attention)
    src, lengths, tgt_in = batch(seed=1)
    logits = model(src, lengths, tgt_in)
    memory = model.encode(src, lengths)
    step, state = model.step_function(src, lengths)
    step_state = memory.initial
    for t, y_prev in enumerate(tgt_in):
        step_logits, step_state, _ = model.decoder_step(y_prev, step_state, memory)
        assert torch.equal(step_logits, logits[t])
        log_probs, state = step(y_prev, state)
        assert max_error(log_probs, logits[t].log_softmax(-1)) < TOL32


@pytest.mark.parametrize("attention", ATTENTIONS)
def test_more_padding_and_more_sources_change_no_output(attention):
    model = make_model(attention, seed=1)
    src, lengths, tgt_in = batch(seed=2)
    logits = model(src, lengths, tgt_in)
    extra_src, extra_lengths, extra_tgt = batch(seed=3, lengths=torch.tensor([7, 1]))
    padded = torch.full((src.shape[0] + 2, src.shape[1]), PAD)
    padded[: src.shape[0]] = src
    padded[src.shape[0] :] = 5  # padding may hold any id
    wider = torch.cat([extra_src[:, :1], padded, extra_src[:, 1:]], dim=1)
    wider_lengths = torch.cat([extra_lengths[:1], lengths, extra_lengths[1:]])
    wider_tgt = torch.cat([extra_tgt[:, :1], tgt_in, extra_tgt[:, 1:]], dim=1)
    wider_logits = model(wider, wider_lengths, wider_tgt)
    assert max_error(wider_logits[:, 1 : 1 + len(lengths)], logits) < TOL32


def test_attention_is_zero_on_padding_and_sums_to_one():
    model = make_model("additive", seed=2).eval()
    src, lengths, _ = batch(seed=4)
    log: list[torch.Tensor] = []
    step, state = model.step_function(src, lengths, attention_log=log)
    outputs = greedy_decode(step, state, BOS, EOS, max_len=6)
    assert len(log) == min(6, max(len(output) + 1 for output in outputs))  # one α per step
    padding = torch.arange(src.shape[0]).unsqueeze(1) >= lengths
    for alpha in log:
        assert alpha.shape == (src.shape[0], len(lengths))
        assert torch.all(alpha[padding] == 0.0)
        assert max_error(alpha.sum(0), torch.ones(len(lengths))) < TOL32
    translations, matrices = model.greedy_translate(src, lengths, BOS, EOS, max_len=6)
    assert translations == outputs
    for b, matrix in enumerate(matrices):
        assert matrix.shape == (len(outputs[b]), int(lengths[b]))
        for t, row in enumerate(matrix):
            assert torch.equal(row, log[t][: lengths[b], b])


def test_without_attention_only_the_final_encoder_states_reach_the_decoder():
    src, lengths, tgt_in = batch(seed=5)
    for attention, changes in ((None, False), ("additive", True)):
        model = make_model(attention, seed=3)
        memory = model.encode(src, lengths)
        garbage = torch.randn_like(memory.states)
        keys = None if model.attention is None else model.attention.precompute(garbage)
        other = Memory(garbage, memory.mask, memory.initial, keys)
        state, other_state = memory.initial, memory.initial
        differences = []
        for y_prev in tgt_in:
            logits, state, _ = model.decoder_step(y_prev, state, memory)
            other_logits, other_state, _ = model.decoder_step(y_prev, other_state, other)
            differences.append(max_error(logits, other_logits))
        assert (max(differences) > 1e-3) == changes
    model = make_model(None)
    _, matrices = model.greedy_translate(src, lengths, BOS, EOS, 3)
    assert all(matrix.numel() == 0 for matrix in matrices)


def test_scratch_and_cudnn_encoders_agree():
    cudnn = make_model("bilinear", seed=4)
    scratch = make_model("bilinear", seed=5, implementation="scratch")
    scratch.load_state_dict(cudnn.state_dict())
    src, lengths, tgt_in = batch(seed=6)
    assert max_error(scratch(src, lengths, tgt_in), cudnn(src, lengths, tgt_in)) < TOL32


def test_dropout_acts_only_in_training_mode():
    model = make_model("additive", seed=6, dropout=0.5)
    src, lengths, tgt_in = batch(seed=7)
    assert not torch.equal(model(src, lengths, tgt_in), model(src, lengths, tgt_in))
    model.eval()
    assert torch.equal(model(src, lengths, tgt_in), model(src, lengths, tgt_in))
    model.train()
    model.greedy_translate(src, lengths, BOS, EOS, 3)
    assert model.training


def test_invalid_arguments_raise_value_errors():
    with pytest.raises(ValueError, match="attention must be"):
        make_model("cosine")
    with pytest.raises(ValueError, match="dot scores"):
        make_model("dot", encoder_size=H)
    model = make_model("additive")
    src, lengths, tgt_in = batch()
    with pytest.raises(ValueError, match="target inputs"):
        model(src, lengths, tgt_in[:, :2])
    with pytest.raises(ValueError, match="source ids"):
        model.encode(src[:, 0], lengths[:1])


def reversal_data(count: int, seed: int):
    """Random strings of 3 to 6 symbols (ids 4 … 9) and their reversals."""
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for _ in range(count):
        length = int(torch.randint(3, 7, (1,), generator=generator))
        source = torch.randint(4, 10, (length,), generator=generator).tolist()
        pairs.append((source, source[::-1]))
    return pairs


def pad(sequences: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(seq) for seq in sequences])
    padded = torch.full((int(lengths.max()), len(sequences)), PAD)
    for b, seq in enumerate(sequences):
        padded[: len(seq), b] = torch.tensor(seq)
    return padded, lengths


def test_a_short_training_run_learns_to_reverse_strings():
    torch.manual_seed(0)
    model = Seq2Seq(10, 10, embedding_size=16, hidden_size=32, attention="additive")
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    train = reversal_data(6000, seed=0)
    for start in range(0, len(train), 50):
        pairs = train[start : start + 50]
        src, src_lengths = pad([source for source, _ in pairs])
        tgt, tgt_lengths = pad([[BOS] + target + [EOS] for _, target in pairs])
        logits = model(src, src_lengths, tgt[:-1])
        loss = masked_cross_entropy(logits, tgt[1:], tgt_lengths - 1)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test = reversal_data(200, seed=1)
    src, src_lengths = pad([source for source, _ in test])
    outputs, _ = model.greedy_translate(src, src_lengths, BOS, EOS, max_len=10)
    accuracy = sum(output == target for output, (_, target) in zip(outputs, test, strict=True)) / len(test)
    assert accuracy > 0.9
