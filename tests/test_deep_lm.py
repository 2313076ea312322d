"""DeepRecurrentLM against torch.nn's multi-layer RNN, LSTM and GRU with the same weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models.deep_lm import DeepRecurrentLM

pytestmark = pytest.mark.usefixtures("one_thread")

V, D, H, T, B = 13, 6, 6, 7, 3


def reference_logits(model: DeepRecurrentLM, cell: str, inputs: torch.Tensor, state):
    """The same model as one torch.nn module of L layers, its weights copied layer by layer."""
    layers = len(model.layers)
    kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
    reference = kind(D, H, num_layers=layers)
    with torch.no_grad():
        for index, layer in enumerate(model.layers):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l{index}").copy_(getattr(layer, f"{name}_l0"))
    if cell == "lstm":
        initial = (torch.cat([h for h, _ in state]), torch.cat([c for _, c in state]))
    else:
        initial = torch.cat(state)
    hidden, _ = reference(model.embedding(inputs), initial)
    return model.output(hidden)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("layers", [1, 2])
def test_matches_torch_nn_with_copied_weights(cell, layers):
    torch.manual_seed(0)
    model = DeepRecurrentLM(V, D, H, cell=cell, num_layers=layers, tie_weights=True, init_range=0.3).eval()
    inputs = torch.randint(0, V, (T, B))
    state = tuple(
        (torch.randn(1, B, H), torch.randn(1, B, H)) if cell == "lstm" else torch.randn(1, B, H)
        for _ in range(layers)
    )
    logits, _ = model(inputs, state)
    torch.testing.assert_close(logits, reference_logits(model, cell, inputs, state), rtol=1e-5, atol=1e-6)


def test_chunks_with_the_carried_state_give_the_logits_of_the_whole_stream():
    torch.manual_seed(1)
    model = DeepRecurrentLM(V, D, H, cell="lstm", num_layers=2).eval()
    inputs = torch.randint(0, V, (T, B))
    whole, _ = model(inputs)
    first, state = model(inputs[:3])
    second, _ = model(inputs[3:], state)
    torch.testing.assert_close(torch.cat([first, second]), whole)


def test_tied_weights_are_one_parameter_and_gradients_reach_both_uses():
    model = DeepRecurrentLM(V, D, H, tie_weights=True)
    assert model.output.weight is model.embedding.weight
    assert (
        sum(p.numel() for p in model.parameters())
        == V * D + sum(p.numel() for p in model.layers.parameters()) + V
    )
    logits, _ = model(torch.tensor([[1], [2]]))
    logits[0, 0, 5].backward()
    gradient = model.embedding.weight.grad
    assert gradient[1].abs().sum() > 0 and gradient[5].abs().sum() > 0


def test_dropout_is_active_in_training_only():
    torch.manual_seed(2)
    model = DeepRecurrentLM(V, D, H, num_layers=2, dropout=0.5)
    inputs = torch.randint(0, V, (T, B))
    model.eval()
    torch.testing.assert_close(model(inputs)[0], model(inputs)[0])
    model.train()
    assert not torch.equal(model(inputs)[0], model(inputs)[0])


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"cell": "transformer"}, "cell must be one of"),
        ({"num_layers": 0}, "num_layers must be at least 1"),
        ({"dropout": 1.0}, r"dropout must lie in \[0, 1\)"),
        ({"tie_weights": True, "embedding_dim": 4}, "tied weights need embedding_dim == hidden_size"),
    ],
)
def test_bad_arguments_are_named(arguments, message):
    settings = {"vocab_size": V, "embedding_dim": D, "hidden_size": H, **arguments}
    with pytest.raises(ValueError, match=message):
        DeepRecurrentLM(**settings)


def test_a_state_of_the_wrong_depth_is_refused():
    model = DeepRecurrentLM(V, D, H, num_layers=2)
    with pytest.raises(ValueError, match="one entry per layer"):
        model(torch.zeros(T, B, dtype=torch.long), model.init_state(B)[:1])
