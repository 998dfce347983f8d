"""Checkers for the exercises of lesson 2, LSTM and GRU cells
(``notebooks/exercises/02_exercises.ipynb``; tests in ``tests/test_checks_lesson02.py``).

Each checker builds PyTorch's own ``nn.LSTM`` / ``nn.GRU`` with random sizes and random weights,
runs the student's function on the same numbers and compares. When the answer is wrong, it also
runs the *mistakes students often make* (gates in the wrong order, the reset gate of the original
GRU paper, ...) and names the one that matches. Every checker takes a ``seed``.
"""

from __future__ import annotations

import itertools
import numbers
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ._common import (
    as_pair,
    assert_shape,
    assert_tensor,
    call_student,
    call_without_modules,
    check_inputs_untouched,
    clones,
    describe,
    first_matching_mistake,
    is_close,
    random_sizes,
    randomize,
    seeded,
    success,
)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# Lesson 2: LSTM cell
# ----------------------------------------------------------------------------------------------
LSTM_GATES = "ifgo"
GRU_GATES = "rzn"


def _lstm_step(x: Tensor, h: Tensor, c: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
               b_hh: Tensor, *, order: str = LSTM_GATES, candidate: Callable = torch.tanh,
               tanh_on_c: bool = True, use_forget: bool = True, use_old_c: bool = True,
               h_uses_new_c: bool = True, recurrent_on_c: bool = False) -> tuple[Tensor, Tensor]:
    """One LSTM step; ``order`` is how the rows are (wrongly) split, the switches are mistakes."""
    state = c if recurrent_on_c else h
    blocks = dict(zip(order, (x @ w_ih.T + b_ih + state @ w_hh.T + b_hh).chunk(4, dim=1)))
    i, f, o = torch.sigmoid(blocks["i"]), torch.sigmoid(blocks["f"]), torch.sigmoid(blocks["o"])
    g = candidate(blocks["g"])
    old = c if use_old_c else torch.zeros_like(c)
    c_new = (f * old if use_forget else old) + i * g
    c_for_h = c_new if h_uses_new_c else c
    h_new = o * (torch.tanh(c_for_h) if tanh_on_c else c_for_h)
    return h_new, c_new


def _lstm_variants(x: Tensor, h: Tensor, c: Tensor, params: Sequence[Tensor]
                   ) -> list[tuple[Callable[[], tuple[Tensor, Tensor]], str]]:
    w_ih, w_hh, b_ih, b_hh = params
    zero = torch.zeros_like(b_ih)

    def step(**switches: Any) -> Callable[[], tuple[Tensor, Tensor]]:
        args = dict(w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
        args.update({k: v for k, v in switches.items() if k in args})
        flags = {k: v for k, v in switches.items() if k not in args}
        return lambda: _lstm_step(x, h, c, **args, **flags)

    variants = []
    for order in itertools.permutations(LSTM_GATES):
        order = "".join(order)
        if order != LSTM_GATES:
            variants.append((step(order=order),
                             f"The gates look swapped: you split the rows as {', '.join(order)}, "
                             "but PyTorch stores them in the order i, f, g, o (input gate, forget "
                             "gate, cell candidate, output gate)."))
    variants += [
        (lambda: _lstm_step(x, h, c, *params)[::-1],
         "You return (c_new, h_new): return (h_new, c_new), in this order."),
        (step(b_ih=zero), "A bias is missing: add bias_ih (nn.LSTM adds bias_ih and bias_hh)."),
        (step(b_hh=zero), "A bias is missing: add bias_hh (nn.LSTM adds bias_ih and bias_hh)."),
        (step(b_ih=zero, b_hh=zero), "Both biases are missing: add bias_ih and bias_hh."),
        (step(candidate=torch.sigmoid),
         "The cell candidate g uses tanh, not sigmoid (only i, f and o are sigmoid gates)."),
        (step(tanh_on_c=False), "h_new = o * tanh(c_new): the tanh on the cell state is missing."),
        (step(use_forget=False),
         "The forget gate is not applied: c_new = f * c + i * g (you have c + i * g)."),
        (step(use_old_c=False),
         "The previous cell state is ignored: c_new = f * c + i * g, with the c you were given."),
        (step(h_uses_new_c=False), "h_new must use the NEW cell state: h_new = o * tanh(c_new)."),
        (step(recurrent_on_c=True),
         "weight_hh multiplies the hidden state h, not the cell state c."),
    ]
    return variants


def _lstm_case(seed: int) -> dict[str, Any]:
    sizes = random_sizes(seed)
    with seeded(seed + 2000):
        lstm = randomize(nn.LSTM(sizes["input_size"], sizes["hidden_size"], batch_first=True))
        x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"])
        h0 = torch.rand(sizes["batch"], sizes["hidden_size"]) * 1.6 - 0.8
        c0 = torch.randn(sizes["batch"], sizes["hidden_size"])
    params = [p.detach() for p in
              (lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0)]
    return {**sizes, "module": lstm, "x": x, "h0": h0, "c0": c0, "params": params}


def check_lstm_cell(lstm_cell: Callable, seed: int = 0, trials: int = 3) -> None:
    """Check ``lstm_cell(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_new, c_new)``.

    Shapes: x_t (batch, input_size), h and c (batch, hidden_size); weights and biases as
    ``nn.LSTM`` stores them for layer 0 (rows in gate order i, f, g, o). The oracle is
    ``nn.LSTM`` itself, fed one step at a time; then the student's cell is run over the whole
    sequence, carrying its own state, and compared with one call of ``nn.LSTM``.
    """
    names = ["x_t", "h", "c", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for trial in range(trials):
        case = _lstm_case(seed * 100 + trial)
        lstm, x, params = case["module"], case["x"], case["params"]
        h, c = case["h0"], case["c0"]
        with torch.no_grad():
            for t in range(case["seq_len"]):
                _, (h_next, c_next) = lstm(x[:, t:t + 1], (h.unsqueeze(0), c.unsqueeze(0)))
                h_next, c_next = h_next[0], c_next[0]
                inputs = clones(x[:, t], h, c, *params)
                got = call_student(lstm_cell, *inputs, name="lstm_cell")
                check_inputs_untouched("lstm_cell", inputs, [x[:, t], h, c, *params], names)
                h_new, c_new = as_pair(got, "lstm_cell", ("h_new", "c_new"))
                assert_shape(h_new, h_next.shape, "h_new", "Expected (batch, hidden_size).")
                assert_shape(c_new, c_next.shape, "c_new", "Expected (batch, hidden_size).")
                if not (is_close(h_new, h_next) and is_close(c_new, c_next)):
                    got_pair = (h_new.detach(), c_new.detach())
                    hint = first_matching_mistake(got_pair, _lstm_variants(x[:, t], h, c, params))
                    if hint is None:
                        if is_close(c_new, c_next):
                            hint = ("c_new is right but h_new is not: h_new = o * tanh(c_new), o "
                                    "being the output gate (the 4th block of rows).")
                        elif is_close(h_new, h_next):
                            hint = "h_new is right but c_new is not: c_new = f * c + i * g."
                        else:
                            hint = ("Both h_new and c_new differ: check the gate equations and "
                                    "the row order i, f, g, o.")
                    raise AssertionError(
                        f"lstm_cell differs from nn.LSTM at step {t} "
                        f"(batch={case['batch']}, input_size={case['input_size']}, "
                        f"hidden_size={case['hidden_size']}). {hint}")
                h, c = h_next, c_next
        _check_lstm_sequence(lstm_cell, case)
    success(f"lstm_cell matches nn.LSTM step by step and over whole sequences ({trials} random cases).")


def _check_lstm_sequence(lstm_cell: Callable, case: dict[str, Any]) -> None:
    """The student's cell, looped over the sequence with gradients on, equals one nn.LSTM call."""
    params = [p.clone().requires_grad_(True) for p in case["params"]]
    h, c = case["h0"], case["c0"]
    outputs = []
    for t in range(case["seq_len"]):
        h, c = as_pair(call_student(lstm_cell, case["x"][:, t], h, c, *params, name="lstm_cell"),
                        "lstm_cell", ("h_new", "c_new"))
        outputs.append(h)
    output = torch.stack(outputs, dim=1)
    lstm = case["module"]
    expected_output, (_, expected_c) = lstm(case["x"], (case["h0"][None], case["c0"][None]))
    if not (is_close(output, expected_output) and is_close(c, expected_c[0])):
        raise AssertionError(
            "lstm_cell is right one step at a time, but looping it over the sequence does not "
            "give nn.LSTM's output: does it keep some state of its own between calls?")
    if not output.requires_grad:
        raise AssertionError("lstm_cell gives the right values but no gradient flows back to the "
                             "weights: do not use .detach(), .item(), .data or torch.no_grad().")
    grads = torch.autograd.grad(output.sum(), params)
    expected = torch.autograd.grad(expected_output.sum(), [
        lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0, lstm.bias_hh_l0])
    if not all(is_close(g, e) for g, e in zip(grads, expected)):
        raise AssertionError("lstm_cell gives the right values but wrong gradients: part of the "
                             "computation is cut from the autograd graph.")


# ----------------------------------------------------------------------------------------------
# Lesson 2: GRU cell
# ----------------------------------------------------------------------------------------------
def _gru_step(x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              *, order: str = GRU_GATES, reset: str = "pytorch", update: str = "pytorch",
              candidate: Callable = torch.tanh, keep_old: bool = True) -> Tensor:
    """One GRU step as PyTorch computes it, with switches that reproduce common mistakes.

    ``reset``: "pytorch" r * (W_hn h + b_hn); "paper" W_hn (r * h) + b_hn (Cho et al. 2014);
    "bias_outside" r * (W_hn h) + b_hn. ``update``: "pytorch" (1 - z) * n + z * h, "swapped"
    z * n + (1 - z) * h.
    """
    gi = dict(zip(order, (x @ w_ih.T + b_ih).chunk(3, dim=1)))
    w_h = dict(zip(order, w_hh.chunk(3, dim=0)))
    b_h = dict(zip(order, b_hh.chunk(3, dim=0)))
    r = torch.sigmoid(gi["r"] + h @ w_h["r"].T + b_h["r"])
    z = torch.sigmoid(gi["z"] + h @ w_h["z"].T + b_h["z"])
    if reset == "pytorch":
        recurrent = r * (h @ w_h["n"].T + b_h["n"])
    elif reset == "paper":
        recurrent = (r * h) @ w_h["n"].T + b_h["n"]
    else:  # "bias_outside"
        recurrent = r * (h @ w_h["n"].T) + b_h["n"]
    n = candidate(gi["n"] + recurrent)
    old = h if keep_old else torch.zeros_like(h)
    if update == "pytorch":
        return (1 - z) * n + z * old
    return z * n + (1 - z) * old


def _gru_variants(x: Tensor, h: Tensor, params: Sequence[Tensor]
                  ) -> list[tuple[Callable[[], Tensor], str]]:
    w_ih, w_hh, b_ih, b_hh = params
    zero = torch.zeros_like(b_ih)

    def step(**switches: Any) -> Callable[[], Tensor]:
        args = dict(w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
        args.update({k: v for k, v in switches.items() if k in args})
        flags = {k: v for k, v in switches.items() if k not in args}
        return lambda: _gru_step(x, h, **args, **flags)

    paper = ("You apply the reset gate BEFORE the matrix product, W_hn (r * h), as in the original "
             "GRU paper (Cho et al. 2014). PyTorch computes r * (W_hn h + b_hn): the reset gate "
             "multiplies the product and its bias b_hn.")
    variants: list[tuple[Callable[[], Tensor], str]] = [
        (step(reset="paper"), paper),
        (step(reset="bias_outside"),
         "b_hn is added outside the reset gate: PyTorch computes r * (W_hn h + b_hn), with b_hn "
         "INSIDE the product by r."),
        (step(update="swapped"),
         "The update gate is used the other way round: PyTorch computes "
         "h_new = (1 - z) * n + z * h (z close to 1 keeps the old state)."),
    ]
    for order in itertools.permutations(GRU_GATES):
        order = "".join(order)
        if order != GRU_GATES:
            variants.append((step(order=order),
                             f"The gates look swapped: you split the rows as {', '.join(order)}, "
                             "but PyTorch stores them in the order r, z, n (reset gate, update "
                             "gate, new/candidate state)."))
    variants += [
        (step(b_ih=zero), "A bias is missing: add bias_ih (nn.GRU adds bias_ih and bias_hh)."),
        (step(b_hh=zero), "A bias is missing: add bias_hh (nn.GRU adds bias_ih and bias_hh)."),
        (step(b_ih=zero, b_hh=zero), "Both biases are missing: add bias_ih and bias_hh."),
        (step(candidate=torch.sigmoid), "The new state n uses tanh, not sigmoid."),
        (step(keep_old=False), "The z * h term is missing: h_new = (1 - z) * n + z * h."),
    ]
    return variants


def check_gru_cell(gru_cell: Callable, seed: int = 0, trials: int = 3) -> None:
    """Check ``gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h_new`` against ``nn.GRU``.

    Shapes: x_t (batch, input_size), h (batch, hidden_size); weights and biases as ``nn.GRU``
    stores them for layer 0 (rows in gate order r, z, n). Step by step, then over whole
    sequences with gradients.
    """
    names = ["x_t", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for trial in range(trials):
        sizes = random_sizes(seed * 100 + trial)
        with seeded(seed * 100 + trial + 3000):
            gru = randomize(nn.GRU(sizes["input_size"], sizes["hidden_size"], batch_first=True))
            x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"])
            h0 = torch.rand(sizes["batch"], sizes["hidden_size"]) * 1.6 - 0.8
        params = [p.detach() for p in
                  (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]
        h = h0
        with torch.no_grad():
            for t in range(sizes["seq_len"]):
                _, h_next = gru(x[:, t:t + 1], h.unsqueeze(0))
                h_next = h_next[0]
                inputs = clones(x[:, t], h, *params)
                got = call_student(gru_cell, *inputs, name="gru_cell")
                check_inputs_untouched("gru_cell", inputs, [x[:, t], h, *params], names)
                if isinstance(got, (tuple, list)):
                    raise AssertionError(
                        f"gru_cell should return one tensor h_new, but it returned {describe(got)} "
                        "(a GRU has no separate cell state).")
                assert_shape(got, h_next.shape, "h_new", "Expected (batch, hidden_size).")
                if not is_close(got, h_next):
                    hint = first_matching_mistake(got.detach(), _gru_variants(x[:, t], h, params))
                    if hint is None:
                        hint = ("Check r and z (sigmoid), n = tanh(W_in x + b_in + r * (W_hn h + "
                                "b_hn)) and h_new = (1 - z) * n + z * h, rows in order r, z, n.")
                    raise AssertionError(
                        f"gru_cell differs from nn.GRU at step {t} (batch={sizes['batch']}, "
                        f"input_size={sizes['input_size']}, hidden_size={sizes['hidden_size']}). "
                        f"{hint}")
                h = h_next
        _check_gru_sequence(gru_cell, gru, x, h0)
    success(f"gru_cell matches nn.GRU step by step and over whole sequences ({trials} random cases).")


def _check_gru_sequence(gru_cell: Callable, gru: nn.GRU, x: Tensor, h0: Tensor) -> None:
    params = [p.detach().clone().requires_grad_(True) for p in
              (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]
    h, outputs = h0, []
    for t in range(x.shape[1]):
        h = assert_tensor(call_student(gru_cell, x[:, t], h, *params, name="gru_cell"), "h_new")
        outputs.append(h)
    output = torch.stack(outputs, dim=1)
    expected, _ = gru(x, h0[None])
    if not is_close(output, expected):
        raise AssertionError(
            "gru_cell is right one step at a time, but looping it over the sequence does not "
            "give nn.GRU's output: does it keep some state of its own between calls?")
    if not output.requires_grad:
        raise AssertionError("gru_cell gives the right values but no gradient flows back to the "
                             "weights: do not use .detach(), .item(), .data or torch.no_grad().")
    grads = torch.autograd.grad(output.sum(), params)
    expected_grads = torch.autograd.grad(expected.sum(), [
        gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0])
    if not all(is_close(g, e) for g, e in zip(grads, expected_grads)):
        raise AssertionError("gru_cell gives the right values but wrong gradients: part of the "
                             "computation is cut from the autograd graph.")


# ----------------------------------------------------------------------------------------------
# Lesson 2: counting the parameters of nn.LSTM
# ----------------------------------------------------------------------------------------------
def _lstm_count(input_size: int, hidden_size: int, num_layers: int, bidirectional: bool, *,
                gates: int = 4, biases: int = 2, upper_input: str = "right",
                directions_counted: bool = True, layers_counted: int | None = None) -> int:
    """The parameter count of nn.LSTM by formula, with switches that reproduce mistakes."""
    directions = 2 if bidirectional else 1
    total = 0
    for layer in range(num_layers if layers_counted is None else layers_counted):
        if layer == 0 or upper_input == "input_size":
            size_in = input_size
        elif upper_input == "hidden_size":
            size_in = hidden_size
        else:
            size_in = hidden_size * directions
        per_direction = gates * hidden_size * (size_in + hidden_size + biases)
        total += per_direction * (directions if directions_counted else 1)
    return total


def check_count_lstm_parameters(count_lstm_parameters: Callable, seed: int = 0) -> None:
    """Check ``count_lstm_parameters(input_size, hidden_size, num_layers, bidirectional) -> int``.

    The oracle is ``sum(p.numel() for p in nn.LSTM(...).parameters())``; building an
    ``nn.LSTM`` inside the student's function is refused: the count must come from a formula.
    """
    with seeded(seed):
        sizes = [(int(torch.randint(2, 40, ())), int(torch.randint(2, 40, ()))) for _ in range(4)]
    sizes = [(i, h + (i == h)) for i, h in sizes]
    cases = [(*sizes[0], 1, False), (*sizes[1], 2, False), (*sizes[2], 1, True), (*sizes[3], 3, True)]
    for input_size, hidden_size, num_layers, bidirectional in cases:
        call = (f"count_lstm_parameters({input_size}, {hidden_size}, num_layers={num_layers}, "
                f"bidirectional={bidirectional})")
        got = call_without_modules(count_lstm_parameters, input_size, hidden_size, num_layers,
                                    bidirectional, name="count_lstm_parameters")
        if isinstance(got, Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, numbers.Real) or not float(got).is_integer():
            raise AssertionError(f"{call} should return a whole number, got {got!r}.")
        lstm = nn.LSTM(input_size, hidden_size, num_layers, bidirectional=bidirectional)
        expected = sum(p.numel() for p in lstm.parameters())
        if got == expected:
            continue
        args = (input_size, hidden_size, num_layers, bidirectional)
        mistakes = [
            (dict(gates=1), "Each LSTM matrix packs 4 blocks of rows (i, f, g, o): multiply by 4."),
            (dict(gates=3), "That is a GRU's count (3 blocks); an LSTM has 4: i, f, g, o."),
            (dict(biases=1),
             "nn.LSTM has TWO bias vectors per layer and direction (bias_ih and bias_hh)."),
            (dict(biases=0), "The biases are missing: bias_ih and bias_hh, 4 * hidden_size each."),
            (dict(upper_input="input_size"),
             "Layers above the first read the previous layer's output, not the input: their "
             "weight_ih has hidden_size columns (2 * hidden_size when bidirectional)."),
            (dict(upper_input="hidden_size"),
             "With bidirectional=True the layers above the first read both directions "
             "concatenated: 2 * hidden_size features."),
            (dict(layers_counted=1),
             f"You count only the first layer: num_layers={num_layers} layers each have their "
             "own weights and biases."),
            (dict(directions_counted=False),
             "bidirectional=True doubles every layer: one full set of weights per direction."),
        ]
        hint = next((message for switches, message in mistakes
                     if _lstm_count(*args, **switches) == got), None)
        if hint is None:
            hint = ("Per layer and direction: 4 * hidden_size * (inputs + hidden_size + 2), where "
                    "inputs is input_size for layer 0.")
        raise AssertionError(f"{call} returned {got}, but nn.LSTM has {expected} parameters. {hint}")
    success("count_lstm_parameters agrees with nn.LSTM (1 to 3 layers, uni- and bidirectional).")
