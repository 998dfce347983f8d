"""The checkers of lesson 2 (LSTM and GRU cells; course_utils/checks/lesson02.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import math

from checker_testing import devices_seen, keeps_random_state, not_implemented, rejects
from course_utils.checks import (
    check_count_lstm_parameters,
    check_gru_cell,
    check_lstm_cell,
    check_memory_span,
    check_set_forget_bias,
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


def lstm_cell_gate_by_gate(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One weight slice per gate, in float64, the result cast back."""
    hidden = h.shape[1]

    def gate(k):
        rows = slice(k * hidden, (k + 1) * hidden)
        return (x_t.double() @ weight_ih[rows].double().T + bias_ih[rows].double()
                + h.double() @ weight_hh[rows].double().T + bias_hh[rows].double())

    i, f, g, o = torch.sigmoid(gate(0)), torch.sigmoid(gate(1)), torch.tanh(gate(2)), torch.sigmoid(gate(3))
    c_new = f * c.double() + i * g
    return (o * torch.tanh(c_new)).float(), c_new.float()


def lstm_cell_one_matmul(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """Both products in one: [x_t, h] @ [W_ih, W_hh].T, split with torch.split."""
    gates = torch.cat([x_t, h], dim=1) @ torch.cat([weight_ih, weight_hh], dim=1).T + bias_ih + bias_hh
    i, f, g, o = torch.split(gates, h.shape[1], dim=1)
    c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c_new), c_new


@pytest.mark.parametrize("right", [lstm_cell, lstm_cell_gate_by_gate, lstm_cell_one_matmul])
def test_lstm_cell_accepts_right_answers_written_differently(right, capsys):
    check_lstm_cell(right)
    check_lstm_cell(right, seed=1, device="cpu")
    assert "lstm_cell matches nn.LSTM" in capsys.readouterr().out


def test_lstm_cell_refuses_pytorchs_own_cell():
    def with_lstm_cell_module(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        cell = nn.LSTMCell(x_t.shape[1], h.shape[1])
        weights = {"weight_ih": weight_ih, "weight_hh": weight_hh,
                   "bias_ih": bias_ih, "bias_hh": bias_hh}
        return torch.func.functional_call(cell, weights, (x_t, (h, c)))

    def with_vf(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
        return torch._VF.lstm_cell(x_t, (h, c), weight_ih, weight_hh, bias_ih, bias_hh)

    for cheat in (with_lstm_cell_module, with_vf):
        rejects(check_lstm_cell, cheat, "recurrent layers", "tensor operations")


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


def gru_cell_on_notebook_device(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """Moves to the notebook's device and computes the three blocks with torch.addmm."""
    from course_utils.checks._common import default_device
    x_t, h, weight_ih, weight_hh, bias_ih, bias_hh = (
        t.to(default_device()) for t in (x_t, h, weight_ih, weight_hh, bias_ih, bias_hh))
    gi = torch.addmm(bias_ih, x_t, weight_ih.T).chunk(3, dim=1)
    gh = torch.addmm(bias_hh, h, weight_hh.T).chunk(3, dim=1)
    r, z = torch.sigmoid(gi[0] + gh[0]), torch.sigmoid(gi[1] + gh[1])
    return torch.lerp(torch.tanh(gi[2] + r * gh[2]), h, z)  # (1 - z) * n + z * h


def test_gru_cell_refuses_pytorchs_own_cell():
    def with_gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh):
        return torch.gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh)

    rejects(check_gru_cell, with_gru_cell, "recurrent layers")


@pytest.mark.parametrize("right", [gru_cell, make_gru_cell(), gru_cell_on_notebook_device])
def test_gru_cell_accepts_right_answers_written_differently(right, capsys):
    check_gru_cell(right)
    check_gru_cell(right, seed=1, device="cpu")
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


def count_by_blocks(input_size, hidden_size, num_layers=1, bidirectional=False):
    """Sums the numel of every named shape, as a float."""
    directions = 1 + bidirectional
    first = 4 * hidden_size * (input_size + hidden_size + 2)
    upper = 4 * hidden_size * (directions * hidden_size + hidden_size + 2)
    return float(directions * (first + (num_layers - 1) * upper))


@pytest.mark.parametrize("right", [count_lstm_parameters, count_by_blocks,
                                   lambda *a: torch.tensor(count_lstm_parameters(*a))])
def test_count_lstm_parameters_accepts_right_answers_written_differently(right, capsys):
    check_count_lstm_parameters(right)
    check_count_lstm_parameters(right, seed=4)
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


# ----------------------------------------------------------------------------------------------
# set_forget_bias
# ----------------------------------------------------------------------------------------------
def set_forget_bias(lstm, value):
    hidden = lstm.hidden_size
    with torch.no_grad():
        for name, parameter in lstm.named_parameters():
            if name.startswith("bias_ih"):
                parameter[hidden:2 * hidden] = value
            elif name.startswith("bias_hh"):
                parameter[hidden:2 * hidden] = 0.0


def set_forget_bias_with_chunks(lstm, value):
    """chunk(4) gives views; fill_ the forget gate's block (i, f, g, o: index 1)."""
    with torch.no_grad():
        for layer in range(lstm.num_layers):
            for suffix in ["", "_reverse"] if lstm.bidirectional else [""]:
                getattr(lstm, f"bias_ih_l{layer}{suffix}").chunk(4)[1].fill_(value)
                getattr(lstm, f"bias_hh_l{layer}{suffix}").chunk(4)[1].zero_()
    return lstm


def set_forget_bias_through_data(lstm, value):
    """Through .data (no autograd involved), with a tensor made on the parameters' device."""
    hidden = lstm.hidden_size
    for name, parameter in lstm.named_parameters():
        if "bias" in name:
            new = torch.full((hidden,), value if "_ih_" in name else 0.0, device=parameter.device)
            parameter.data[hidden:2 * hidden] = new


@pytest.mark.parametrize("right", [set_forget_bias, set_forget_bias_with_chunks, set_forget_bias_through_data])
def test_set_forget_bias_accepts_right_answers_written_differently(right, capsys):
    check_set_forget_bias(right)
    check_set_forget_bias(right, seed=3, device="cpu")
    assert "set_forget_bias sets" in capsys.readouterr().out


def forget_bias_with(*, block=1, hh="zero", layers="all", directions="all", no_grad=True):
    def broken(lstm, value):
        hidden = lstm.hidden_size
        rows = slice(block * hidden, (block + 1) * hidden) if block >= 0 else slice(None)
        with torch.no_grad() if no_grad else torch.enable_grad():
            for name, parameter in lstm.named_parameters():
                if (layers == "first" and "_l0" not in name) or (directions == "forward" and "reverse" in name):
                    continue
                if name.startswith("bias_ih"):
                    parameter[rows] = value
                elif name.startswith("bias_hh") and hh != "keep":
                    parameter[rows] = value if hh == "value" else 0.0
    return broken


def replaces_the_parameter(lstm, value):
    hidden = lstm.hidden_size
    for layer in range(lstm.num_layers):
        for suffix in ["", "_reverse"] if lstm.bidirectional else [""]:
            bias_ih = getattr(lstm, f"bias_ih_l{layer}{suffix}").detach().clone()
            bias_ih[hidden:2 * hidden] = value
            setattr(lstm, f"bias_ih_l{layer}{suffix}", nn.Parameter(bias_ih))
            getattr(lstm, f"bias_hh_l{layer}{suffix}").data[hidden:2 * hidden] = 0


@pytest.mark.parametrize("broken, fragments", [
    (forget_bias_with(block=0), ["the input gate i", "i, f, g, o"]),
    (forget_bias_with(block=2), ["the cell candidate g", "second block"]),
    (forget_bias_with(block=3, hh="keep"), ["the output gate o"]),
    (forget_bias_with(hh="value"), ["both biases", "2 * value"]),
    (forget_bias_with(hh="keep"), ["bias_hh's forget rows still hold"]),
    (forget_bias_with(block=-1), ["whole bias"]),
    (forget_bias_with(layers="first"), ["Only layer 0"]),
    (forget_bias_with(directions="forward"), ["Only the forward direction"]),
    (forget_bias_with(no_grad=False), ["torch.no_grad()", "leaf"]),
    (replaces_the_parameter, ["replaced the parameter", "in place"]),
    (not_implemented, ["not implemented yet"]),
])
def test_set_forget_bias_rejects_mistakes(broken, fragments):
    rejects(check_set_forget_bias, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# memory_span
# ----------------------------------------------------------------------------------------------
def memory_span(forget_bias, threshold=0.01):
    forget = 1 / (1 + math.exp(-forget_bias))
    return math.floor(math.log(threshold) / math.log(forget))


def memory_span_by_loop(forget_bias, threshold=0.01):
    forget, gain, steps = torch.sigmoid(torch.tensor(forget_bias, dtype=torch.float64)), 1.0, 0
    while gain * forget >= threshold:
        gain, steps = gain * forget, steps + 1
    return steps


def memory_span_as_tensor(forget_bias, threshold=0.01):
    forget = torch.sigmoid(torch.tensor(forget_bias, dtype=torch.float64))
    return torch.floor(torch.log(torch.tensor(threshold, dtype=torch.float64)) / torch.log(forget)).long()


@pytest.mark.parametrize("right", [memory_span, memory_span_by_loop, memory_span_as_tensor,
                                   lambda b, t: float(memory_span(b, t))])
def test_memory_span_accepts_right_answers_written_differently(right, capsys):
    check_memory_span(right)
    check_memory_span(right, seed=2)
    assert "memory_span agrees" in capsys.readouterr().out


def span_with(factor, rounding=math.floor):
    return lambda b, threshold: rounding(math.log(threshold) / math.log(factor(b)))


@pytest.mark.parametrize("broken, fragments", [
    (span_with(lambda b: 1 / (1 + math.exp(-b)), math.ceil), ["One step too many", "Round down"]),
    (lambda b, t: memory_span(b, t) - 1, ["One step too few"]),
    (span_with(lambda b: 1 / (1 + math.exp(-2 * b))), ["sigmoid(2 * forget_bias)"]),
    (span_with(lambda b: 1 - 1 / (1 + math.exp(-b))), ["1 - f"]),
    (span_with(math.tanh), ["not a tanh"]),
    (lambda b, t: 10**9, ["returned 1000000000"]),
    (lambda b, t: "many", ["whole number"]),
    (not_implemented, ["not implemented yet"]),
])
def test_memory_span_rejects_mistakes(broken, fragments):
    rejects(check_memory_span, broken, *fragments)


# ----------------------------------------------------------------------------------------------
# Every checker: the inputs' device, the student's random stream
# ----------------------------------------------------------------------------------------------
def test_checkers_build_their_inputs_on_the_requested_device():
    assert devices_seen(check_lstm_cell, lambda *args: args) == {"meta"}
    assert devices_seen(check_gru_cell, lambda *args: args) == {"meta"}
    assert devices_seen(check_set_forget_bias, lambda lstm, value: list(lstm.parameters())) == {"meta"}


def test_checkers_leave_the_random_stream_alone():
    assert keeps_random_state(lambda: check_lstm_cell(lstm_cell))
    assert keeps_random_state(lambda: check_gru_cell(gru_cell))
    assert keeps_random_state(lambda: check_count_lstm_parameters(count_lstm_parameters))
    assert keeps_random_state(lambda: check_set_forget_bias(set_forget_bias))
    assert keeps_random_state(lambda: check_memory_span(memory_span))
