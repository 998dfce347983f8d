"""The checkers of lessons 1 and 2 accept the right answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_count_lstm_parameters,
    check_gru_cell,
    check_lstm_cell,
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


# ----------------------------------------------------------------------------------------------
# lstm_cell
# ----------------------------------------------------------------------------------------------
def lstm_cell(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    gates = x_t @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh
    i, f, g, o = gates.chunk(4, dim=1)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_new = f * c + i * g
    return o * torch.tanh(c_new), c_new


def make_lstm_cell(*, order="ifgo", use_b_ih=True, candidate=torch.tanh, tanh_on_c=True,
                   forget=True, h_from_old_c=False, swap_return=False, detach=False):
    def broken(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        gates = x_t @ weight_ih.T + (bias_ih if use_b_ih else 0) + h @ weight_hh.T + bias_hh
        blocks = dict(zip(order, gates.chunk(4, dim=1)))
        i, f, o = (torch.sigmoid(blocks[k]) for k in "ifo")
        g = candidate(blocks["g"])
        c_new = (f * c if forget else c) + i * g
        c_used = c if h_from_old_c else c_new
        h_new = o * (torch.tanh(c_used) if tanh_on_c else c_used)
        if detach:
            h_new, c_new = h_new.detach(), c_new.detach()
        return (c_new, h_new) if swap_return else (h_new, c_new)
    return broken


def test_lstm_cell_accepts_the_right_answer(capsys):
    check_lstm_cell(lstm_cell)
    check_lstm_cell(lstm_cell, seed=1)
    assert "lstm_cell matches nn.LSTM" in capsys.readouterr().out


def test_lstm_cell_accepts_pytorchs_own_cell():
    def with_lstm_cell_module(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = nn.LSTMCell(x_t.shape[1], h.shape[1])
        weights = {"weight_ih": weight_ih, "weight_hh": weight_hh,
                   "bias_ih": bias_ih, "bias_hh": bias_hh}
        return torch.func.functional_call(cell, weights, (x_t, (h, c)))

    check_lstm_cell(with_lstm_cell_module)


@pytest.mark.parametrize("broken, fragments", [
    (make_lstm_cell(order="ifog"), ["gates look swapped", "i, f, o, g", "i, f, g, o"]),
    (make_lstm_cell(order="fi go".replace(" ", "")), ["gates look swapped", "f, i, g, o"]),
    (make_lstm_cell(order="igfo"), ["gates look swapped", "i, g, f, o"]),
    (make_lstm_cell(use_b_ih=False), ["bias_ih"]),
    (make_lstm_cell(candidate=torch.sigmoid), ["cell candidate g uses tanh"]),
    (make_lstm_cell(tanh_on_c=False), ["tanh on the cell state is missing"]),
    (make_lstm_cell(forget=False), ["forget gate is not applied"]),
    (make_lstm_cell(h_from_old_c=True), ["NEW cell state"]),
    (make_lstm_cell(swap_return=True), ["(c_new, h_new)"]),
    (make_lstm_cell(detach=True), ["no gradient flows"]),
    (lambda *a: lstm_cell(*a)[0], ["should return a pair"]),
    (not_implemented, ["not implemented yet"]),
])
def test_lstm_cell_rejects_mistakes(broken, fragments):
    rejects(check_lstm_cell, broken, *fragments)


def test_lstm_cell_is_also_checked_over_a_whole_sequence():
    def right_only_without_autograd(x_t, h, c, *params):
        h_new, c_new = lstm_cell(x_t, h, c, *params)
        return (h_new, c_new) if not torch.is_grad_enabled() else (h_new * 1.1, c_new)

    rejects(check_lstm_cell, right_only_without_autograd, "looping it over the sequence")


# ----------------------------------------------------------------------------------------------
# gru_cell
# ----------------------------------------------------------------------------------------------
def gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh):
    x_r, x_z, x_n = (x_t @ weight_ih.T + bias_ih).chunk(3, dim=1)
    h_r, h_z, h_n = (h @ weight_hh.T + bias_hh).chunk(3, dim=1)
    r = torch.sigmoid(x_r + h_r)
    z = torch.sigmoid(x_z + h_z)
    n = torch.tanh(x_n + r * h_n)
    return (1 - z) * n + z * h


def make_gru_cell(*, order="rzn", reset="pytorch", update="pytorch", use_b_hh=True,
                  candidate=torch.tanh, detach=False):
    def broken(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh):
        xs = dict(zip(order, (x_t @ weight_ih.T + bias_ih).chunk(3, dim=1)))
        ws = dict(zip(order, weight_hh.chunk(3, dim=0)))
        bs = dict(zip(order, (bias_hh if use_b_hh else torch.zeros_like(bias_hh)).chunk(3)))
        r = torch.sigmoid(xs["r"] + h @ ws["r"].T + bs["r"])
        z = torch.sigmoid(xs["z"] + h @ ws["z"].T + bs["z"])
        if reset == "paper":
            n = candidate(xs["n"] + (r * h) @ ws["n"].T + bs["n"])
        elif reset == "bias_outside":
            n = candidate(xs["n"] + r * (h @ ws["n"].T) + bs["n"])
        else:
            n = candidate(xs["n"] + r * (h @ ws["n"].T + bs["n"]))
        h_new = (1 - z) * n + z * h if update == "pytorch" else z * n + (1 - z) * h
        return h_new.detach() if detach else h_new
    return broken


def test_gru_cell_accepts_the_right_answer(capsys):
    check_gru_cell(gru_cell)
    check_gru_cell(gru_cell, seed=1)
    check_gru_cell(make_gru_cell())  # the broken family with no mistake switched on
    assert "gru_cell matches nn.GRU" in capsys.readouterr().out


@pytest.mark.parametrize("broken, fragments", [
    (make_gru_cell(reset="paper"), ["original GRU paper", "r * (W_hn h + b_hn)"]),
    (make_gru_cell(reset="bias_outside"), ["b_hn is added outside the reset gate"]),
    (make_gru_cell(order="zrn"), ["gates look swapped", "z, r, n", "r, z, n"]),
    (make_gru_cell(order="nzr"), ["gates look swapped", "n, z, r"]),
    (make_gru_cell(update="swapped"), ["update gate", "(1 - z) * n + z * h"]),
    (make_gru_cell(use_b_hh=False), ["bias_hh"]),
    (make_gru_cell(candidate=torch.sigmoid), ["n uses tanh"]),
    (make_gru_cell(detach=True), ["no gradient flows"]),
    (lambda *a: (gru_cell(*a), a[1]), ["one tensor"]),
    (not_implemented, ["not implemented yet"]),
])
def test_gru_cell_rejects_mistakes(broken, fragments):
    rejects(check_gru_cell, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# count_lstm_parameters
# ----------------------------------------------------------------------------------------------
def count_lstm_parameters(input_size, hidden_size, num_layers=1, bidirectional=False):
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers):
        size_in = input_size if layer == 0 else hidden_size * directions
        total += directions * 4 * hidden_size * (size_in + hidden_size + 2)
    return total


def test_count_lstm_parameters_accepts_the_right_answer(capsys):
    check_count_lstm_parameters(count_lstm_parameters)
    check_count_lstm_parameters(lambda *a: torch.tensor(count_lstm_parameters(*a)), seed=4)
    assert "count_lstm_parameters agrees" in capsys.readouterr().out


def count_with(*, gates=4, biases=2, upper="right", doubled=True):
    def broken(input_size, hidden_size, num_layers=1, bidirectional=False):
        directions = 2 if bidirectional else 1
        total = 0
        for layer in range(num_layers):
            size_in = {"right": hidden_size * directions, "input": input_size,
                       "hidden": hidden_size}[upper] if layer else input_size
            total += (directions if doubled else 1) * gates * hidden_size * (
                size_in + hidden_size + biases)
        return total
    return broken


def count_by_building(input_size, hidden_size, num_layers=1, bidirectional=False):
    lstm = nn.LSTM(input_size, hidden_size, num_layers, bidirectional=bidirectional)
    return sum(p.numel() for p in lstm.parameters())


@pytest.mark.parametrize("broken, fragments", [
    (count_with(gates=1), ["4 blocks"]),
    (count_with(gates=3), ["GRU"]),
    (count_with(biases=1), ["TWO bias vectors"]),
    (count_with(upper="input"), ["previous layer's output"]),
    (count_with(upper="hidden"), ["both directions"]),
    (count_with(doubled=False), ["doubles every layer"]),
    (lambda i, h, n=1, b=False: count_lstm_parameters(i, h, 1, b), ["only the first layer"]),
    (count_by_building, ["formula"]),
    (lambda *a: str(count_lstm_parameters(*a)), ["whole number"]),
    (not_implemented, ["not implemented yet"]),
])
def test_count_lstm_parameters_rejects_mistakes(broken, fragments):
    rejects(check_count_lstm_parameters, broken, *fragments)


def test_checkers_leave_the_random_stream_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    check_rnn_forward(rnn_forward)
    check_gru_cell(gru_cell)
    assert torch.equal(torch.rand(3), expected)
