"""FusedLSTM and FusedGRU compute what torch.nn.LSTM/GRU and the from-scratch layers compute."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_lib.models.fast_recurrent import CompiledOrEager, FusedGRU, FusedLSTM, lstm_pointwise
from course_lib.models.lstm import GRU, LSTM

T, B, D, H = 7, 3, 5, 4
LAYERS = {"lstm": (FusedLSTM, nn.LSTM, LSTM), "gru": (FusedGRU, nn.GRU, GRU)}


def _initial_state(cell: str, generator: torch.Generator):
    h0 = torch.randn(1, B, H, dtype=torch.float64, generator=generator)
    if cell == "lstm":
        return (h0, torch.randn(1, B, H, dtype=torch.float64, generator=generator))
    return h0


def _flat(state) -> list[torch.Tensor]:
    return list(state) if isinstance(state, tuple) else [state]


def _run(layer: nn.Module, x: torch.Tensor, state) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Outputs and final states, and the gradients of a scalar that depends on all of them."""
    x = x.clone().requires_grad_(True)
    state = tuple(s.clone().requires_grad_(True) for s in _flat(state))
    output, final = layer(x, state if len(state) == 2 else state[0])
    results = [output, *_flat(final)]
    loss = sum((r * torch.linspace(-1, 1, r.numel(), dtype=r.dtype).view_as(r)).sum() for r in results)
    loss.backward()
    grads = {name: p.grad for name, p in layer.named_parameters()}
    grads["x"] = x.grad
    for i, s in enumerate(state):
        grads[f"state{i}"] = s.grad
    return [r.detach() for r in results], grads


@pytest.mark.parametrize("cell", list(LAYERS))
@pytest.mark.parametrize("reference_kind", ["torch.nn", "scratch"])
def test_matches_reference_in_float64(cell, reference_kind):
    fused_class, torch_class, scratch_class = LAYERS[cell]
    torch.manual_seed(0)
    fused = fused_class(D, H).double()
    reference = (torch_class if reference_kind == "torch.nn" else scratch_class)(D, H).double()
    reference.load_state_dict(fused.state_dict())
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(T, B, D, dtype=torch.float64, generator=generator)
    state = _initial_state(cell, generator)
    ours, our_grads = _run(fused, x, state)
    theirs, their_grads = _run(reference, x, state)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert our_grads.keys() == their_grads.keys()
    for name in our_grads:
        torch.testing.assert_close(our_grads[name], their_grads[name], rtol=1e-12, atol=1e-12, msg=name)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_state_dict_round_trip_and_shapes(cell):
    fused_class, torch_class, _ = LAYERS[cell]
    reference = torch_class(D, H)
    fused = fused_class(D, H)
    fused.load_state_dict(reference.state_dict())
    reference.load_state_dict(fused.state_dict())
    output, final = fused(torch.randn(T, B, D))
    assert output.shape == (T, B, H)
    assert all(s.shape == (1, B, H) for s in _flat(final))


@pytest.mark.parametrize("cell", list(LAYERS))
def test_without_bias_matches_torch(cell):
    fused_class, torch_class, _ = LAYERS[cell]
    fused = fused_class(D, H, bias=False).double()
    reference = torch_class(D, H, bias=False).double()
    reference.load_state_dict(fused.state_dict())
    x = torch.randn(T, B, D, dtype=torch.float64)
    torch.testing.assert_close(fused(x)[0], reference(x)[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("cell", list(LAYERS))
def test_compiled_step_gives_the_same_outputs(cell):
    fused_class, _, _ = LAYERS[cell]
    torch.manual_seed(0)
    plain = fused_class(D, H).double()
    compiled = fused_class(D, H, compile_step=True, compile_backend="eager").double()
    compiled.load_state_dict(plain.state_dict())
    x = torch.randn(T, B, D, dtype=torch.float64)
    torch.testing.assert_close(compiled(x)[0], plain(x)[0], rtol=1e-12, atol=1e-12)


def test_failed_compile_falls_back_with_one_warning(monkeypatch):
    def broken_compile(function, backend):
        def fail(*args):
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(torch, "compile", broken_compile)
    step = CompiledOrEager(lstm_pointwise)
    gates, c = torch.randn(B, 4 * H), torch.randn(B, H)
    with pytest.warns(UserWarning, match="no compiler here"):
        h, c_new = step(gates, c)
    assert not step.compiled
    torch.testing.assert_close(h, lstm_pointwise(gates, c)[0])
    torch.testing.assert_close(step(gates, c)[1], c_new)  # no second warning: uncompiled from now on


def test_wrong_state_shape_is_reported():
    with pytest.raises(ValueError, match="h"):
        FusedLSTM(D, H)(torch.randn(T, B, D), (torch.zeros(1, B + 1, H), torch.zeros(1, B + 1, H)))
