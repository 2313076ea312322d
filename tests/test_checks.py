"""The checks of the visible tests: they pass on right answers and say what, expected and got."""

import numpy as np
import pytest
import torch

from course_lib.checks import CheckFailed, check_close, check_equal, check_raises, check_shape, check_that


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as caught:
        check(*args, **kwargs)
    assert isinstance(caught.value, AssertionError)
    return str(caught.value)


def test_close_values_pass_for_arrays_tensors_and_numbers():
    check_close(np.array([1.0, 2.0]), [1.0, 2.0 + 1e-9], "pair")
    check_close(torch.tensor([[0.5]], requires_grad=True) * 1, np.array([[0.5]]), "tensor with gradients")
    check_close(0.1 + 0.2, 0.3, "a float")
    check_close(np.array([np.nan, 1.0]), [np.nan, 1.0], "matching NaN")


def test_differing_values_name_the_first_positions_with_expected_and_got():
    message = failure(check_close, np.array([[0.0, 1.0], [2.0, 3.0]]), [[0.0, 1.5], [2.0, 3.25]], "h_1")
    assert message.splitlines()[0].startswith("h_1: 2 of 4 values differ (largest difference 0.5")
    assert "  at [0, 1]: expected 1.5, got 1" in message
    assert "  at [1, 1]: expected 3.25, got 3" in message


def test_many_differences_are_summarised():
    message = failure(check_close, np.zeros(10), np.ones(10), "zeros")
    assert message.count("expected 1, got 0") == 3
    assert "… and 7 more" in message


def test_values_closer_than_six_digits_are_shown_with_the_digits_that_differ():
    message = failure(check_close, 2.436250013, 2.43625, "the loss", atol=1e-12, rtol=0)
    assert "value: expected 2.43625, got 2.43625001" in message


def test_a_wrong_shape_is_reported_before_values():
    message = failure(check_close, np.zeros((3, 40)), np.zeros((3, 50)), "rnn_step_forward")
    assert message == "rnn_step_forward: expected shape (3, 50), got shape (3, 40)"


def test_short_sequences_of_another_length_are_shown_whole():
    message = failure(check_equal, [2, 3, 4, 0], [2, 3], "greedy_decode, row 0")
    assert message == ("greedy_decode, row 0: expected shape (2,), got shape (4,)\n"
                       "  expected [2, 3]\n  got      [2, 3, 4, 0]")


def test_a_list_of_tensors_is_described_by_its_items():
    outputs = [torch.zeros(3, 6, requires_grad=True) * 1 for _ in range(5)]
    message = failure(check_close, outputs, torch.zeros(5, 3, 6), "run_sequence")
    assert message.endswith("got a list of 5: tensor of shape (3, 6)")


def test_a_missing_return_is_named():
    message = failure(check_close, None, np.zeros(2), "one_hot")
    assert "expected an array of shape (2,)" in message and "got None" in message and "return" in message


def test_scalars_report_their_value():
    message = failure(check_close, torch.tensor(2.5), 2.0, "the loss")
    assert "value: expected 2, got 2.5" in message


def test_exact_equality_for_integers_and_other_values():
    check_equal(torch.tensor([1, 2]), [1, 2], "ids")
    check_equal(["a", "b"], ["a", "b"], "tokens")
    message = failure(check_equal, np.array([1, 2, 2]), [1, 2, 3], "targets")
    assert "1 of 3 values differ" in message and "at [2]: expected 3, got 2" in message
    message = failure(check_equal, ("the", "cat"), ("the", "dog"), "tokens")
    assert message == "tokens: expected ('the', 'dog'), got tuple ('the', 'cat')"


def test_shape_property_and_raises():
    check_shape(torch.zeros(2, 3), (2, 3), "state")
    assert failure(check_shape, [1, 2], (2,), "state").startswith("state: expected an array or tensor")
    check_that(True, "loss", expected="a scalar", got="—")
    assert failure(check_that, False, "loss", expected="a scalar", got=torch.zeros(2)) == (
        "loss: expected a scalar, got a tensor of shape (2,) (torch.float32)")
    check_raises(ValueError, int, "x", what="int('x')")
    assert failure(check_raises, ValueError, int, "3", what="int('3')") == (
        "int('3'): expected ValueError, got no error (it returned int 3)")
    assert "got TypeError" in failure(check_raises, ValueError, int, None, what="int(None)")
