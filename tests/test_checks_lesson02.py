"""The checkers of lesson 2 (LSTM and GRU cells; course_utils/checks/lesson02.py) accept the right
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
    check_count_lstm_parameters,
    check_gru_cell,
    check_lstm_cell,
)


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
    check_lstm_cell(lstm_cell)
    check_gru_cell(gru_cell)
    assert torch.equal(torch.rand(3), expected)
