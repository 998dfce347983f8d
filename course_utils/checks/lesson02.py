"""Checkers for the exercises of lesson 2, LSTM and GRU cells
(``notebooks/exercises/02_exercises.ipynb``; tests in ``tests/test_checks_lesson02.py``).

Each checker builds PyTorch's own ``nn.LSTM`` / ``nn.GRU`` with random sizes and random weights,
runs the student's function on the same numbers and compares (for the forget-gate exercises, the
oracle is a gradient measured by autograd). When the answer is wrong, it also runs the *mistakes
students often make* (gates in the wrong order, the reset gate of the original GRU paper, the
wrong bias slice, ...) and names the one that matches. Every checker takes a ``seed``, and those
that build tensors a ``device`` (default: ``cuda`` when available) where the student's code runs.
"""

from __future__ import annotations

import itertools
import math
import random
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ._common import exact_float32  # the whole check in full float32 on a GPU (no TF32)
from ._common import (
    StudentCodeError,
    as_pair,
    assert_shape,
    assert_tensor,
    call_student,
    call_without_modules,
    check_inputs_untouched,
    describe,
    first_matching_mistake,
    generator,
    is_close,
    keeps_random_state,
    on_device,
    random_sizes,
    randomize,
    resolve_device,
    success,
    whole_number,
)

Tensor = torch.Tensor
NO_RECURRENT = ("recurrent",)  # the cells must be written with tensor operations


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


def _cell_variants(cell_step: Callable, inputs: Sequence[Tensor], params: Sequence[Tensor], gates: str,
                   gate_words: str, module: str) -> tuple[Callable[..., Callable[[], Any]], list]:
    """``step(**switches)``, the cell run with a mistake switched on, and the mistakes every gated
    cell shares: its blocks of rows split in another order, a bias missing."""
    zero = torch.zeros_like(params[2])

    def step(**switches: Any) -> Callable[[], Any]:
        weights = dict(zip(("w_ih", "w_hh", "b_ih", "b_hh"), params))
        return lambda: cell_step(*inputs, **{**weights, **switches})

    shared = [(step(order="".join(order)), f"The gates look swapped: you split the rows as {', '.join(order)}, "
               f"but PyTorch stores them in the order {', '.join(gates)} ({gate_words}).")
              for order in itertools.permutations(gates) if "".join(order) != gates]
    shared += [(step(b_ih=zero), f"A bias is missing: add bias_ih ({module} adds bias_ih and bias_hh)."),
               (step(b_hh=zero), f"A bias is missing: add bias_hh ({module} adds bias_ih and bias_hh)."),
               (step(b_ih=zero, b_hh=zero), "Both biases are missing: add bias_ih and bias_hh.")]
    return step, shared


def _lstm_variants(x: Tensor, h: Tensor, c: Tensor, params: Sequence[Tensor]) -> list:
    step, shared = _cell_variants(_lstm_step, (x, h, c), params, LSTM_GATES,
                                  "input gate, forget gate, cell candidate, output gate", "nn.LSTM")
    return shared + [
        (lambda: _lstm_step(x, h, c, *params)[::-1],
         "You return (c_new, h_new): return (h_new, c_new), in this order."),
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


def _lstm_case(seed: int) -> dict[str, Any]:
    sizes = random_sizes(seed)
    g = generator(seed + 2000)
    lstm = randomize(nn.LSTM(sizes["input_size"], sizes["hidden_size"], batch_first=True), seed + 2000)
    x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"], generator=g)
    h0 = torch.rand(sizes["batch"], sizes["hidden_size"], generator=g) * 1.6 - 0.8
    c0 = torch.randn(sizes["batch"], sizes["hidden_size"], generator=g)
    return {**sizes, "module": lstm, "x": x, "h0": h0, "c0": c0,
            "params": [p.detach() for p in lstm.parameters()]}


@exact_float32
@keeps_random_state
def check_lstm_cell(lstm_cell: Callable, seed: int = 0, trials: int = 3, device: Any = None) -> None:
    """Check ``lstm_cell(x_t, h, c, weight_ih, weight_hh, bias_ih, bias_hh) -> (h_new, c_new)``.

    Shapes: x_t (batch, input_size), h and c (batch, hidden_size); weights and biases as
    ``nn.LSTM`` stores them for layer 0 (rows in gate order i, f, g, o). The oracle is
    ``nn.LSTM`` itself, fed one step at a time; then the student's cell is run over the whole
    sequence, carrying its own state, and compared with one call of ``nn.LSTM`` (values and
    gradients). Running nn.LSTM / nn.LSTMCell or their functional forms inside it is refused.
    """
    device = resolve_device(device)
    names = ["x_t", "h", "c", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for trial in range(trials):
        case = _lstm_case(seed * 100 + trial)
        lstm, x, params = case["module"], case["x"], case["params"]
        h, c = case["h0"], case["c0"]
        with torch.no_grad():
            for t in range(case["seq_len"]):
                _, (h_next, c_next) = lstm(x[:, t:t + 1], (h.unsqueeze(0), c.unsqueeze(0)))
                h_next, c_next = h_next[0], c_next[0]
                inputs = on_device(device, x[:, t], h, c, *params)
                got = call_student(lstm_cell, *inputs, name="lstm_cell", forbid=NO_RECURRENT)
                check_inputs_untouched("lstm_cell", inputs, [x[:, t], h, c, *params], names)
                h_new, c_new = as_pair(got, "lstm_cell", ("h_new", "c_new"))
                assert_shape(h_new, h_next.shape, "h_new", "Expected (batch, hidden_size).")
                assert_shape(c_new, c_next.shape, "c_new", "Expected (batch, hidden_size).")
                if not is_close((h_new, c_new), (h_next, c_next)):
                    got_pair = (h_new.detach(), c_new.detach())
                    hint = first_matching_mistake(got_pair, _lstm_variants(x[:, t], h, c, params))
                    if hint is None:
                        if is_close(c_new, c_next):
                            hint = ("c_new is right but h_new is not: h_new = o * tanh(c_new), o "
                                    "being the output gate (the 4th block of rows).")
                        elif is_close(h_new, h_next):
                            hint = "h_new is right but c_new is not: c_new = f * c + i * g."
                        else:
                            hint = "Both h_new and c_new differ: check the gate equations and the row order i, f, g, o."
                    raise AssertionError(
                        f"lstm_cell differs from nn.LSTM at step {t} (batch={case['batch']}, "
                        f"input_size={case['input_size']}, hidden_size={case['hidden_size']}). {hint}")
                h, c = h_next, c_next
        _check_sequence(lambda x_t, state, *p: call_student(lstm_cell, x_t, *state, *p, name="lstm_cell",
                                                            forbid=NO_RECURRENT),
                        "lstm_cell", lstm, x, (case["h0"], case["c0"]), device)
    success(f"lstm_cell matches nn.LSTM step by step and over whole sequences ({trials} random cases).")


def _check_sequence(step: Callable, name: str, module: nn.Module, x: Tensor, state: tuple[Tensor, ...],
                    device: torch.device) -> None:
    """The student's cell, looped over the sequence with gradients on, equals one call of ``module``."""
    params = [p.requires_grad_(True) for p in on_device(device, *module.parameters())]
    x_device, carried, outputs = on_device(device, x)[0], tuple(on_device(device, *state)), []
    for t in range(x.shape[1]):
        got = step(x_device[:, t], carried, *params)
        carried = as_pair(got, name, ("h_new", "c_new")) if len(state) == 2 else (assert_tensor(got, "h_new"),)
        outputs.append(carried[0])
    output = torch.stack(outputs, dim=1)
    expected, final = module(x, tuple(s[None] for s in state) if len(state) == 2 else state[0][None])
    if not (is_close(output, expected) and is_close(carried[-1], (final[-1] if len(state) == 2 else final)[0])):
        raise AssertionError(
            f"{name} is right one step at a time, but looping it over the sequence does not give "
            f"nn.{type(module).__name__}'s output: does it keep some state of its own between calls?")
    if not output.requires_grad:
        raise AssertionError(f"{name} gives the right values but no gradient flows back to the "
                             "weights: do not use .detach(), .item(), .data or torch.no_grad().")
    grads = torch.autograd.grad(output.sum(), params)
    if not is_close(list(grads), list(torch.autograd.grad(expected.sum(), list(module.parameters())))):
        raise AssertionError(f"{name} gives the right values but wrong gradients: part of the "
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


def _gru_variants(x: Tensor, h: Tensor, params: Sequence[Tensor]) -> list:
    step, shared = _cell_variants(_gru_step, (x, h), params, GRU_GATES,
                                  "reset gate, update gate, new/candidate state", "nn.GRU")
    return [
        (step(reset="paper"), "You apply the reset gate BEFORE the matrix product, W_hn (r * h), as "
         "in the original GRU paper (Cho et al. 2014). PyTorch computes r * (W_hn h + b_hn): the "
         "reset gate multiplies the product and its bias b_hn."),
        (step(reset="bias_outside"),
         "b_hn is added outside the reset gate: PyTorch computes r * (W_hn h + b_hn), with b_hn "
         "INSIDE the product by r."),
        (step(update="swapped"),
         "The update gate is used the other way round: PyTorch computes "
         "h_new = (1 - z) * n + z * h (z close to 1 keeps the old state)."),
        *shared,
        (step(candidate=torch.sigmoid), "The new state n uses tanh, not sigmoid."),
        (step(keep_old=False), "The z * h term is missing: h_new = (1 - z) * n + z * h."),
    ]


@exact_float32
@keeps_random_state
def check_gru_cell(gru_cell: Callable, seed: int = 0, trials: int = 3, device: Any = None) -> None:
    """Check ``gru_cell(x_t, h, weight_ih, weight_hh, bias_ih, bias_hh) -> h_new`` against ``nn.GRU``.

    Shapes: x_t (batch, input_size), h (batch, hidden_size); weights and biases as ``nn.GRU``
    stores them for layer 0 (rows in gate order r, z, n). Step by step, then over whole
    sequences with gradients. Running nn.GRU / nn.GRUCell or their functional forms is refused.
    """
    device = resolve_device(device)
    names = ["x_t", "h", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for trial in range(trials):
        sizes = random_sizes(seed * 100 + trial)
        g = generator(seed * 100 + trial + 3000)
        gru = randomize(nn.GRU(sizes["input_size"], sizes["hidden_size"], batch_first=True), seed * 100 + trial + 3000)
        x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"], generator=g)
        h0 = torch.rand(sizes["batch"], sizes["hidden_size"], generator=g) * 1.6 - 0.8
        params = [p.detach() for p in gru.parameters()]
        h = h0
        with torch.no_grad():
            for t in range(sizes["seq_len"]):
                h_next = gru(x[:, t:t + 1], h.unsqueeze(0))[1][0]
                inputs = on_device(device, x[:, t], h, *params)
                got = call_student(gru_cell, *inputs, name="gru_cell", forbid=NO_RECURRENT)
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
                        f"input_size={sizes['input_size']}, hidden_size={sizes['hidden_size']}). {hint}")
                h = h_next
        _check_sequence(lambda x_t, state, *p: call_student(gru_cell, x_t, *state, *p, name="gru_cell",
                                                            forbid=NO_RECURRENT),
                        "gru_cell", gru, x, (h0,), device)
    success(f"gru_cell matches nn.GRU step by step and over whole sequences ({trials} random cases).")


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


@keeps_random_state
def check_count_lstm_parameters(count_lstm_parameters: Callable, seed: int = 0) -> None:
    """Check ``count_lstm_parameters(input_size, hidden_size, num_layers, bidirectional) -> int``.

    The oracle is ``sum(p.numel() for p in nn.LSTM(...).parameters())``; building an
    ``nn.LSTM`` inside the student's function is refused: the count must come from a formula.
    """
    rng = random.Random(seed)
    sizes = [(rng.randint(2, 39), rng.randint(2, 39)) for _ in range(4)]
    sizes = [(i, h + (i == h)) for i, h in sizes]
    cases = [(*sizes[0], 1, False), (*sizes[1], 2, False), (*sizes[2], 1, True), (*sizes[3], 3, True)]
    for input_size, hidden_size, num_layers, bidirectional in cases:
        call = (f"count_lstm_parameters({input_size}, {hidden_size}, num_layers={num_layers}, "
                f"bidirectional={bidirectional})")
        got = call_without_modules(count_lstm_parameters, input_size, hidden_size, num_layers,
                                    bidirectional, name="count_lstm_parameters")
        got = whole_number(got, call)
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


# ----------------------------------------------------------------------------------------------
# Lesson 2: the forget-gate bias
# ----------------------------------------------------------------------------------------------
GATE_NAMES = ["the input gate i", "the forget gate f", "the cell candidate g", "the output gate o"]


def _with_forget_bias(params: dict[str, Tensor], hidden: int, value: float, *, block: int = 1,
                      hh: str = "zero", which: Callable[[str], bool] = lambda name: True) -> dict[str, Tensor]:
    """``params`` with the forget bias set; the switches reproduce common mistakes.

    ``block``: which block of rows is changed (1 = f); ``hh``: what bias_hh's rows get ("zero",
    "value" or "keep"); ``which``: the parameter names changed (all by default).
    """
    result = {name: p.clone() for name, p in params.items()}
    rows = slice(block * hidden, (block + 1) * hidden) if block >= 0 else slice(None)
    for name, p in result.items():
        if which(name) and name.startswith("bias_ih"):
            p[rows] = value
        elif which(name) and name.startswith("bias_hh") and hh != "keep":
            p[rows] = value if hh == "value" else 0.0
    return result


@keeps_random_state
def check_set_forget_bias(set_forget_bias: Callable, seed: int = 0, device: Any = None) -> None:
    """Check ``set_forget_bias(lstm, value)``: changes ``lstm`` in place so that the forget gate
    of every layer and direction has the total bias ``value`` (bias_ih's forget rows = value,
    bias_hh's = 0), everything else unchanged, the same ``Parameter`` objects, still trainable.
    """
    device, rng = resolve_device(device), random.Random(seed)
    for trial, (num_layers, bidirectional) in enumerate(((1, False), (2, True))):
        hidden, value = rng.randint(2, 5), round(rng.uniform(1.0, 4.0), 2)
        lstm = nn.LSTM(hidden + rng.randint(1, 3), hidden, num_layers, bidirectional=bidirectional)
        before = {name: p.detach().clone() for name, p in randomize(lstm, seed * 10 + trial).named_parameters()}
        objects = dict(lstm.to(device).named_parameters())  # Module.to keeps the Parameter objects
        call = f"set_forget_bias(nn.LSTM(..., hidden_size={hidden}, num_layers={num_layers}, " \
               f"bidirectional={bidirectional}), {value})"
        try:
            call_student(set_forget_bias, lstm, value, name="set_forget_bias")
        except StudentCodeError as error:
            if "leaf Variable" not in str(error):
                raise
            raise StudentCodeError(f"{error} Change a parameter's values inside `with torch.no_grad():`: "
                                   "autograd refuses in-place changes of a leaf that requires grad.") from None
        for name, p in objects.items():
            now = dict(lstm.named_parameters()).get(name)
            if now is not p:
                raise AssertionError(
                    f"{call} replaced the parameter {name} by a new tensor: change its values in place "
                    "(under torch.no_grad()), so that the module, and an optimizer that holds it, keep it.")
            if not (p.requires_grad and p.is_leaf):
                raise AssertionError(f"{call} left {name} without requires_grad: it must stay trainable.")
        got = {name: p.detach().cpu() for name, p in lstm.named_parameters()}
        expected = _with_forget_bias(before, hidden, value)
        if is_close(list(got.values()), list(expected.values())):
            continue
        rows = f"rows {hidden}:{2 * hidden} here"
        variants = [(lambda b=b, hh=hh: _with_forget_bias(before, hidden, value, block=b, hh=hh),
                     f"You changed {GATE_NAMES[b]} (rows {b * hidden}:{(b + 1) * hidden}): PyTorch's "
                     f"order is i, f, g, o, so the forget gate is the second block ({rows}).")
                    for b in (0, 2, 3) for hh in ("zero", "keep", "value")]
        variants += [
            (lambda: _with_forget_bias(before, hidden, value, hh="value"), "You set both biases to "
             "value: the gate adds bias_ih + bias_hh, so its total bias is 2 * value. Set bias_hh's "
             "forget rows to 0."),
            (lambda: _with_forget_bias(before, hidden, value, hh="keep"), "bias_hh's forget rows still "
             "hold their old values, and the gate adds bias_ih + bias_hh: set them to 0 so that the "
             "total is exactly value."),
            (lambda: _with_forget_bias(before, hidden, value, block=-1), "You set the whole bias "
             f"vectors: only the forget gate's rows change ({rows})."),
            (lambda: _with_forget_bias(before, hidden, value, which=lambda n: "_l0" in n),
             "Only layer 0 is changed: every layer has its own forget gate (bias_ih_l1, ...)."),
            (lambda: _with_forget_bias(before, hidden, value, which=lambda n: "reverse" not in n),
             "Only the forward direction is changed: a bidirectional LSTM also has bias_ih_l0_reverse, ..."),
        ]
        hint = first_matching_mistake(list(got.values()), [(lambda f=f: list(f().values()), m) for f, m in variants])
        if hint is None:
            wrong = [name for name in got if not is_close(got[name], expected[name])]
            hint = f"These parameters differ from what is expected: {wrong}."
        raise AssertionError(f"{call} did not give the expected parameters. {hint}")
    success("set_forget_bias sets the forget gate's bias of every layer and direction, in place.")


def _cell_path_gain(forget_bias: float, steps: int) -> float:
    """d c_T / d c_0 measured by autograd: an ``nn.LSTM(1, 1)`` whose weights are all 0 and whose
    forget gate has the bias ``forget_bias`` reads ``steps`` zeros (float64)."""
    lstm = nn.LSTM(1, 1, batch_first=True).double()
    with torch.no_grad():
        for p in lstm.parameters():
            p.zero_()
        lstm.bias_ih_l0[1] = forget_bias
    c0 = torch.ones(1, 1, 1, dtype=torch.float64, requires_grad=True)
    if steps == 0:
        return 1.0
    _, (_, c_n) = lstm(torch.zeros(1, steps, 1, dtype=torch.float64), (torch.zeros_like(c0), c0))
    return torch.autograd.grad(c_n.sum(), c0)[0].item()


@keeps_random_state
def check_memory_span(memory_span: Callable, seed: int = 0) -> None:
    """Check ``memory_span(forget_bias, threshold) -> int``: the largest number of steps T after
    which the gradient along the cell path, d c_T / d c_0, is still at least ``threshold``, for an
    LSTM whose weights are 0 and whose forget gate has the bias ``forget_bias``. The oracle is
    autograd on such an ``nn.LSTM``: the answer T must give a gain >= threshold, and T + 1 less.
    """
    rng = random.Random(seed)
    cases = [(3.0, 0.01), (0.0, 0.01), (-3.0, 0.1)]
    cases += [(round(rng.uniform(-1.0, 4.5), 2), rng.choice([0.1, 0.01, 0.001])) for _ in range(3)]
    for forget_bias, threshold in cases:
        call = f"memory_span(forget_bias={forget_bias}, threshold={threshold})"
        got = whole_number(call_student(memory_span, forget_bias, threshold, name="memory_span",
                                        forbid=("recurrent",)), call)
        f = 1 / (1 + math.exp(-forget_bias))
        right = math.floor(math.log(threshold) / math.log(f))  # only to name mistakes and bound the run
        measured = 0 <= got <= 2 * right + 10  # the oracle: autograd measures T and T + 1 steps
        if measured and _cell_path_gain(forget_bias, got) >= threshold > _cell_path_gain(forget_bias, got + 1):
            continue
        variants = [
            (lambda: right + 1, "One step too many: after that many steps the gradient is already "
             "below threshold. Round down: the LARGEST T with f ** T >= threshold."),
            (lambda: right - 1, "One step too few: f ** (your answer + 1) is still >= threshold."),
            (lambda: math.floor(math.log(threshold) / math.log(forget_bias)), "You used the bias "
             "itself as the factor: each step multiplies the gradient by the gate, sigmoid(forget_bias)."),
            (lambda: math.floor(math.log(threshold) / math.log(1 - f)), "You used 1 - f: the cell "
             "keeps f * c of its state, so the gradient is multiplied by f = sigmoid(forget_bias)."),
            (lambda: math.floor(math.log(threshold) / math.log(1 / (1 + math.exp(-2 * forget_bias)))),
             "You used sigmoid(2 * forget_bias): forget_bias is already the gate's total bias."),
            (lambda: math.floor(math.log(threshold) / math.log(math.tanh(forget_bias))),
             "The forget gate is a sigmoid, not a tanh: f = sigmoid(forget_bias)."),
        ]
        hint = first_matching_mistake(got, variants, lambda a, b: a == b) or (
            "With all weights 0 the forget gate is the same at every step, f = sigmoid(forget_bias), "
            "and each step back along the cell path multiplies the gradient by f.")
        gain = f"{_cell_path_gain(forget_bias, got):.3g}" if measured else f"{f:.3g} ** {got}"
        raise AssertionError(f"{call} returned {got}, but autograd measures a gradient {gain} after "
                             f"{got} steps (and it must be >= {threshold}, one step more < {threshold}). {hint}")
    success(f"memory_span agrees with the gradient autograd measures in an LSTM ({len(cases)} cases).")
