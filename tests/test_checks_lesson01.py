"""The checkers of lesson 1 (the RNN by hand; course_utils/checks/lesson01.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_rnn_forward,
    check_rnn_parameter_shapes,
    check_stacked_rnn_forward,
)


# ----------------------------------------------------------------------------------------------
# rnn_forward
# ----------------------------------------------------------------------------------------------
def rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def make_rnn_forward(*, start=None, carry=True, use_b_hh=True, transpose_hh=True,
                     activation=torch.tanh, stack_dim=1, detach=False, shift=False):
    """A family of rnn_forward implementations with one mistake switched on."""
    def broken(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        h = torch.zeros_like(h0) if start == "zeros" else h0
        first, outputs = h, []
        for t in range(x.shape[1]):
            previous = h if carry else first
            w_hh = weight_hh.T if transpose_hh else weight_hh
            new = activation(x[:, t] @ weight_ih.T + bias_ih + previous @ w_hh
                             + (bias_hh if use_b_hh else 0))
            if detach:
                new = new.detach()
            outputs.append(previous if shift else new)
            h = new
        return torch.stack(outputs, dim=stack_dim), h
    return broken


def test_rnn_forward_accepts_the_right_answer(capsys):
    check_rnn_forward(rnn_forward)
    check_rnn_forward(rnn_forward, seed=1)
    assert "rnn_forward matches nn.RNN" in capsys.readouterr().out


@pytest.mark.parametrize("broken, fragments", [
    (make_rnn_forward(start="zeros"), ["ignore h0"]),
    (make_rnn_forward(carry=False), ["Step 0 is right", "not carried"]),
    (make_rnn_forward(use_b_hh=False), ["bias_hh"]),
    (make_rnn_forward(transpose_hh=False), ["without transposing"]),
    (make_rnn_forward(activation=lambda z: z), ["tanh is missing"]),
    (make_rnn_forward(activation=torch.relu), ["not relu"]),
    (make_rnn_forward(stack_dim=0), ["shape", "dim=1"]),
    (make_rnn_forward(shift=True), ["shifted by one step"]),
    (make_rnn_forward(detach=True), ["no gradient flows"]),
])
def test_rnn_forward_rejects_broken_loops(broken, fragments):
    rejects(check_rnn_forward, broken, *fragments)


def test_rnn_forward_rejects_wrong_returns():
    rejects(check_rnn_forward, lambda *a: rnn_forward(*a)[0], "should return a pair")
    rejects(check_rnn_forward, lambda *a: (rnn_forward(*a)[0], rnn_forward(*a)[1][None]),
            "h_n has shape", "drop it")
    rejects(check_rnn_forward, lambda *a: (rnn_forward(*a)[0], a[1]), "You return h0")
    rejects(check_rnn_forward, lambda *a: (rnn_forward(*a)[0], rnn_forward(*a)[0][:, 0]),
            "FIRST step")
    rejects(check_rnn_forward, lambda *a: (rnn_forward(*a)[1], rnn_forward(*a)[1]),
            "EVERY step")


def test_rnn_forward_names_a_loop_over_the_batch():
    def loops_over_batch(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        h, outputs = h0, []
        for t in range(x.shape[0]):  # the batch, not the steps
            h = torch.tanh(x[:, t] @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h

    rejects(check_rnn_forward, loops_over_batch, "x.shape[1]")


def test_rnn_forward_reports_the_students_exception():
    rejects(check_rnn_forward, not_implemented, "not implemented yet")

    def typo(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        return x @ weight_hh  # wrong shapes: a RuntimeError from PyTorch

    rejects(check_rnn_forward, typo, "raised RuntimeError")


def test_rnn_forward_rejects_in_place_changes():
    def in_place(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        output, h_n = rnn_forward(x, h0.clone(), weight_ih, weight_hh, bias_ih, bias_hh)
        h0.copy_(h_n)
        return output, h_n

    rejects(check_rnn_forward, in_place, "in place")


# ----------------------------------------------------------------------------------------------
# rnn_parameter_shapes and stacked_rnn_forward
# ----------------------------------------------------------------------------------------------
def rnn_parameter_shapes(input_size, hidden_size, num_layers=1):
    shapes = {}
    for k in range(num_layers):
        size_in = input_size if k == 0 else hidden_size
        shapes[f"weight_ih_l{k}"] = (hidden_size, size_in)
        shapes[f"weight_hh_l{k}"] = (hidden_size, hidden_size)
        shapes[f"bias_ih_l{k}"] = (hidden_size,)
        shapes[f"bias_hh_l{k}"] = (hidden_size,)
    return shapes


def test_rnn_parameter_shapes_accepts_the_right_answer(capsys):
    check_rnn_parameter_shapes(rnn_parameter_shapes)
    check_rnn_parameter_shapes(lambda i, h, n: {k: torch.Size(v) for k, v in
                                                rnn_parameter_shapes(i, h, n).items()}, seed=3)
    assert "rnn_parameter_shapes gives" in capsys.readouterr().out


def shapes_with(change):
    def broken(input_size, hidden_size, num_layers):
        shapes = rnn_parameter_shapes(input_size, hidden_size, num_layers)
        change(shapes, input_size, hidden_size, num_layers)
        return shapes
    return broken


def _transpose_ih(shapes, i, h, n):
    shapes["weight_ih_l0"] = (i, h)


def _upper_reads_input(shapes, i, h, n):
    for k in range(1, n):
        shapes[f"weight_ih_l{k}"] = (h, i)


def _column_bias(shapes, i, h, n):
    shapes["bias_hh_l0"] = (h, 1)


def _one_bias(shapes, i, h, n):
    for k in range(n):
        shapes[f"bias_l{k}"] = shapes.pop(f"bias_ih_l{k}")
        del shapes[f"bias_hh_l{k}"]


def _extra(shapes, i, h, n):
    shapes["weight_ho"] = (1, h)


def test_rnn_parameter_shapes_rejects_mistakes():
    rejects(check_rnn_parameter_shapes, shapes_with(_transpose_ih), "transposed")
    rejects(check_rnn_parameter_shapes, shapes_with(_upper_reads_input), "previous layer's output")
    rejects(check_rnn_parameter_shapes, shapes_with(_column_bias), "vector")
    rejects(check_rnn_parameter_shapes, shapes_with(_one_bias), "misses", "bias_ih_l0")
    rejects(check_rnn_parameter_shapes, shapes_with(_extra), "does not have", "weight_ho")
    rejects(check_rnn_parameter_shapes, lambda i, h, n: rnn_parameter_shapes(i, h, 1),
            "misses", "weight_ih_l1")
    rejects(check_rnn_parameter_shapes, lambda i, h, n: list(rnn_parameter_shapes(i, h, n)),
            "should return a dict")
    rejects(check_rnn_parameter_shapes, not_implemented, "not implemented yet")


def test_rnn_parameter_shapes_refuses_to_build_the_module():
    def cheat(input_size, hidden_size, num_layers):
        rnn = nn.RNN(input_size, hidden_size, num_layers)
        return {name: tuple(p.shape) for name, p in rnn.named_parameters()}

    rejects(check_rnn_parameter_shapes, cheat, "formula")
    nn.RNN(3, 4)  # the patch is gone afterwards


def stacked_rnn_forward(x, h0, layers):
    inputs, finals = x, []
    for k, params in enumerate(layers):
        inputs, h_n = rnn_forward(inputs, h0[k], *params)
        finals.append(h_n)
    return inputs, torch.stack(finals)


def test_stacked_rnn_forward_points_at_an_unfinished_rnn_forward():
    def stacked_with_unfinished_rnn_forward(x, h0, layers):
        not_implemented()

    rejects(check_stacked_rnn_forward, stacked_with_unfinished_rnn_forward,
            "not implemented yet", "your rnn_forward of exercise 1")


def test_stacked_rnn_forward_accepts_the_right_answer(capsys):
    check_stacked_rnn_forward(stacked_rnn_forward)
    check_stacked_rnn_forward(stacked_rnn_forward, seed=2)
    assert "stacked_rnn_forward matches" in capsys.readouterr().out


def stacked_same_h0(x, h0, layers):
    inputs, finals = x, []
    for params in layers:
        inputs, h_n = rnn_forward(inputs, h0[0], *params)
        finals.append(h_n)
    return inputs, torch.stack(finals)


def stacked_reversed(x, h0, layers):
    output, h_n = stacked_rnn_forward(x, h0, layers)
    return output, h_n.flip(0)


def stacked_first_output(x, h0, layers):
    first, _ = rnn_forward(x, h0[0], *layers[0])
    _, h_n = stacked_rnn_forward(x, h0, layers)
    return first, h_n


def stacked_last_h_n_only(x, h0, layers):
    output, h_n = stacked_rnn_forward(x, h0, layers)
    return output, h_n[-1]


def stacked_reads_x_everywhere(x, h0, layers):
    finals = []
    for k, params in enumerate(layers):
        output, h_n = rnn_forward(x, h0[k], *params)
        finals.append(h_n)
    return output, torch.stack(finals)


@pytest.mark.parametrize("broken, fragments", [
    (stacked_same_h0, ["own initial state"]),
    (stacked_reversed, ["wrong order"]),
    (stacked_first_output, ["LAST layer"]),
    (stacked_last_h_n_only, ["h_n", "stacks the final state"]),
    (stacked_reads_x_everywhere, ["raised RuntimeError"]),
    (not_implemented, ["not implemented yet"]),
])
def test_stacked_rnn_forward_rejects_mistakes(broken, fragments):
    rejects(check_stacked_rnn_forward, broken, *fragments)


def test_checkers_leave_the_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_rnn_forward(rnn_forward)
    check_stacked_rnn_forward(stacked_rnn_forward)
    assert torch.equal(torch.rand(3), expected)
