"""Checkers for the exercises of lessons 1 (RNN by hand) and 2 (LSTM and GRU cells).

Each checker builds PyTorch's own module (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) with random sizes
and random weights, runs the student's function on the same numbers and compares. When the
answer is wrong, it also runs the *mistakes students often make* (a missing bias, gates in the
wrong order, the reset gate of the original GRU paper, ...) and, when the student's result equals
one of them, names it in the message. Every checker takes a ``seed``: the hidden tests of the
exercise notebooks call it again with other seeds, hence other sizes.
"""

from __future__ import annotations

import contextlib
import itertools
import numbers
from typing import Any, Callable, Iterator, Sequence
from unittest import mock

import torch
from torch import nn

from ._common import (
    StudentCodeError,
    assert_shape,
    assert_tensor,
    call_student,
    describe,
    first_matching_mistake,
    is_close,
    success,
)

Tensor = torch.Tensor


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Run a block with its own random stream, leaving the student's stream untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def _random_sizes(seed: int) -> dict[str, int]:
    """Random sizes with batch > 1, several steps, hidden_size != input_size, batch != seq_len."""
    with _seeded(seed):
        batch = int(torch.randint(2, 4, ()))
        seq_len = int(torch.randint(4, 7, ()))
        input_size = int(torch.randint(3, 7, ()))
        hidden_size = input_size + int(torch.randint(1, 4, ()))
    return {"batch": batch, "seq_len": seq_len, "input_size": input_size, "hidden_size": hidden_size}


def _randomize(module: nn.Module) -> nn.Module:
    """Give every weight and bias random values (biases too: a missing bias must show)."""
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.normal_(0.0, 0.4)
    return module






def _as_pair(got: Any, name: str, what: tuple[str, str]) -> tuple[Tensor, Tensor]:
    """Check that the student returned a pair of tensors (e.g. ``(output, h_n)``)."""
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        raise AssertionError(
            f"{name} should return a pair ({what[0]}, {what[1]}), but it returned {describe(got)}."
        )
    first = assert_tensor(got[0], f"{what[0]} (the first value {name} returns)")
    second = assert_tensor(got[1], f"{what[1]} (the second value {name} returns)")
    return first, second


def _clones(*tensors: Tensor) -> list[Tensor]:
    return [t.detach().clone() for t in tensors]


def _check_inputs_untouched(name: str, given: Sequence[Tensor], originals: Sequence[Tensor],
                            names: Sequence[str]) -> None:
    """Fail when the student's function changed one of its arguments in place."""
    for tensor, original, arg in zip(given, originals, names):
        if not torch.equal(tensor, original):
            raise AssertionError(
                f"{name} changed its argument `{arg}` in place. Compute new tensors instead "
                "(e.g. `h = torch.tanh(...)`, not `h[:] = ...` or `h += ...`)."
            )




class ForbiddenModuleError(RuntimeError):
    """Raised when a counting exercise builds the PyTorch module instead of using a formula."""


def _call_without_modules(fn: Callable, *args: Any, name: str) -> Any:
    """Call the student's ``fn`` while building nn.RNN / nn.LSTM / nn.GRU (or a cell) is refused.

    The counting exercises ask for a formula; building the module and counting its parameters
    would skip the point of the exercise.
    """
    refused = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        refused.append(True)
        raise ForbiddenModuleError("building a recurrent module is not allowed here")

    try:
        with mock.patch.object(nn.modules.rnn.RNNBase, "__init__", refuse), \
                mock.patch.object(nn.modules.rnn.RNNCellBase, "__init__", refuse):
            return call_student(fn, *args, name=name)
    except AssertionError:
        if refused:
            raise AssertionError(
                f"{name} builds a recurrent PyTorch module (nn.RNN, nn.LSTM, ...): derive the "
                "answer from the sizes with a formula instead, that is the point of the exercise."
            ) from None
        raise


# ----------------------------------------------------------------------------------------------
# Lesson 1: rnn_forward
# ----------------------------------------------------------------------------------------------
def _rnn_loop(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              *, activation: Callable[[Tensor], Tensor] = torch.tanh, transpose_hh: bool = True,
              carry: bool = True, reverse: bool = False, shift: bool = False) -> tuple[Tensor, Tensor]:
    """The RNN loop, with switches that reproduce common mistakes (defaults: the right loop)."""
    h = h0
    outputs = []
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        recurrent = h @ (w_hh.T if transpose_hh else w_hh)
        h_new = activation(x[:, t] @ w_ih.T + b_ih + recurrent + b_hh)
        outputs.append(h if shift else h_new)
        h = h_new if carry else h
    if reverse:
        outputs.reverse()
    return torch.stack(outputs, dim=1), (h_new if not carry else h)


def _rnn_case(seed: int) -> dict[str, Any]:
    """Random sizes, an nn.RNN with random weights and biases, an input and a non-zero h0."""
    sizes = _random_sizes(seed)
    with _seeded(seed + 1000):
        rnn = _randomize(nn.RNN(sizes["input_size"], sizes["hidden_size"], batch_first=True))
        x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"])
        h0 = torch.rand(sizes["batch"], sizes["hidden_size"]) * 1.6 - 0.8
    with torch.no_grad():
        output, h_n = rnn(x, h0.unsqueeze(0))
    params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    return {**sizes, "rnn": rnn, "x": x, "h0": h0, "params": [p.detach() for p in params],
            "output": output, "h_n": h_n[0]}


def _rnn_output_shape_hint(got: Tensor, case: dict[str, Any]) -> str:
    batch, seq_len, hidden = case["batch"], case["seq_len"], case["hidden_size"]
    shape = tuple(got.shape)
    if shape == (seq_len, batch, hidden):
        return ("You stacked the steps along dimension 0; with batch_first the steps go along "
                "dimension 1: torch.stack(outputs, dim=1).")
    if shape == (batch, hidden):
        return "output holds the hidden state of EVERY step, not only the last one."
    if shape == (batch, batch, hidden):
        return ("Your output has one state per sequence of the batch instead of one per step: with "
                "batch_first, loop over x.shape[1] (the steps), not x.shape[0] (the batch).")
    if shape == (batch, seq_len, case["input_size"]):
        return "The last dimension must be hidden_size (W_ih maps input_size to hidden_size)."
    return "Expected (batch, seq_len, hidden_size): one hidden state per sequence and per step."


def _rnn_h_n_shape_hint(got: Tensor, case: dict[str, Any]) -> str:
    batch, seq_len, hidden = case["batch"], case["seq_len"], case["hidden_size"]
    shape = tuple(got.shape)
    if shape == (1, batch, hidden):
        return ("nn.RNN returns h_n with a leading num_layers dimension, but this function "
                "returns (batch, hidden_size): drop it.")
    if shape == (batch, seq_len, hidden):
        return "h_n is only the hidden state after the LAST step."
    return "Expected (batch, hidden_size): the hidden state after the last step."


def _diagnose_rnn_output(got: Tensor, case: dict[str, Any]) -> str:
    x, h0 = case["x"], case["h0"]
    w_ih, w_hh, b_ih, b_hh = case["params"]
    zero = torch.zeros_like(b_ih)

    def output_of(**switches: Any) -> Callable[[], Tensor]:
        def compute() -> Tensor:
            args = dict(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
            args.update({k: v for k, v in switches.items() if k in args})
            flags = {k: v for k, v in switches.items() if k not in args}
            return _rnn_loop(**args, **flags)[0]
        return compute

    variants = [
        (output_of(h0=torch.zeros_like(h0)),
         "It looks like you start from zeros and ignore h0: the first step must use the "
         "initial state h0 (it is not zero here)."),
        (output_of(carry=False),
         "Step 0 is right but the later steps are not: the state is not carried. Every step "
         "must use the h computed at the previous step, not h0."),
        (output_of(h0=torch.zeros_like(h0), carry=False),
         "Every step seems to start from zeros: the state is not carried from one step to the "
         "next, and h0 is ignored."),
        (output_of(b_ih=zero), "A bias is missing: add bias_ih (nn.RNN adds both bias_ih and bias_hh)."),
        (output_of(b_hh=zero), "A bias is missing: add bias_hh (nn.RNN adds both bias_ih and bias_hh)."),
        (output_of(b_ih=zero, b_hh=zero), "Both biases are missing: add bias_ih and bias_hh."),
        (output_of(transpose_hh=False),
         "weight_hh is used without transposing: PyTorch computes h_{t-1} @ weight_hh.T "
         "(weight_hh is square, so the shapes did not warn you)."),
        (output_of(activation=lambda z: z), "The tanh is missing: h_t = tanh(...)."),
        (output_of(activation=torch.sigmoid), "Use tanh, not sigmoid (nn.RNN's default nonlinearity)."),
        (output_of(activation=torch.relu), "Use tanh, not relu (nn.RNN's default nonlinearity)."),
        (output_of(reverse=True), "It looks like you read the sequence backwards (last step first)."),
        (output_of(shift=True),
         "Your output is shifted by one step: output[:, t] must be the state AFTER reading "
         "x[:, t] (append the new h, not the previous one)."),
    ]
    known = first_matching_mistake(got, variants)
    if known:
        return known
    wrong_steps = [t for t in range(case["seq_len"])
                   if not is_close(got[:, t], case["output"][:, t])]
    if wrong_steps[0] == 0:
        return ("Already the first step differs: check h_1 = tanh(x_0 @ W_ih.T + b_ih + "
                "h0 @ W_hh.T + b_hh).")
    return (f"Steps 0 to {wrong_steps[0] - 1} are right but step {wrong_steps[0]} differs: "
            "check how the state is carried from one step to the next.")


def _check_rnn_gradients(rnn_forward: Callable, case: dict[str, Any]) -> None:
    """The student's loop must let autograd compute the same gradients as nn.RNN (BPTT)."""
    leaves = [t.clone().requires_grad_(True) for t in [case["x"], case["h0"], *case["params"]]]
    output, h_n = _as_pair(call_student(rnn_forward, *leaves, name="rnn_forward"),
                           "rnn_forward", ("output", "h_n"))
    if not output.requires_grad:
        raise AssertionError(
            "rnn_forward gives the right values but no gradient flows back to the weights: do not "
            "use .detach(), .item(), .numpy(), .data or torch.no_grad() inside it.")
    with _seeded(7):
        weights_out, weights_h = torch.randn(output.shape), torch.randn(h_n.shape)
    loss = (output * weights_out).sum() + (h_n * weights_h).sum()
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)

    rnn = case["rnn"]
    x, h0 = case["x"].clone().requires_grad_(True), case["h0"].clone().requires_grad_(True)
    expected_output, expected_h_n = rnn(x, h0.unsqueeze(0))
    expected_loss = (expected_output * weights_out).sum() + (expected_h_n[0] * weights_h).sum()
    expected = torch.autograd.grad(
        expected_loss, [x, h0, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0])
    names = ["x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
    for name, grad, grad_expected in zip(names, grads, expected):
        if grad is None or not is_close(grad, grad_expected):
            raise AssertionError(
                f"rnn_forward gives the right values, but the gradient with respect to {name} "
                "differs from nn.RNN's: part of the computation is cut from the autograd graph "
                "(.detach(), .data, in-place writes, or a tensor rebuilt from numbers).")


def check_rnn_forward(rnn_forward: Callable, seed: int = 0, trials: int = 3) -> None:
    """Check ``rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh) -> (output, h_n)``.

    Shapes: x (batch, seq_len, input_size), h0 (batch, hidden_size) -> output
    (batch, seq_len, hidden_size), h_n (batch, hidden_size). The oracle is ``nn.RNN`` with
    ``batch_first=True``; values and gradients (backpropagation through time) must match.
    """
    for trial in range(trials):
        case = _rnn_case(seed * 100 + trial)
        inputs = _clones(case["x"], case["h0"], *case["params"])
        got = call_student(rnn_forward, *inputs, name="rnn_forward")
        _check_inputs_untouched("rnn_forward", inputs, [case["x"], case["h0"], *case["params"]],
                                ["x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        output, h_n = _as_pair(got, "rnn_forward", ("output", "h_n"))
        expected_output, expected_h_n = case["output"], case["h_n"]
        if output.shape != expected_output.shape:
            assert_shape(output, expected_output.shape, "output", _rnn_output_shape_hint(output, case))
        if h_n.shape != expected_h_n.shape:
            assert_shape(h_n, expected_h_n.shape, "h_n", _rnn_h_n_shape_hint(h_n, case))
        if not is_close(output, expected_output):
            diff = (output.detach() - expected_output).abs().max().item()
            raise AssertionError(
                f"output differs from nn.RNN's (largest difference {diff:.3g}). "
                + _diagnose_rnn_output(output.detach(), case))
        if not is_close(h_n, expected_h_n):
            if is_close(h_n, case["h0"]):
                hint = "You return h0: h_n is the state after the LAST step."
            elif is_close(h_n, expected_output[:, 0]):
                hint = "You return the state after the FIRST step: h_n is the state after the last."
            else:
                hint = "h_n must equal output[:, -1], the state after the last step."
            raise AssertionError(f"output is right but h_n differs from nn.RNN's. {hint}")
    _check_rnn_gradients(rnn_forward, case)
    success(f"rnn_forward matches nn.RNN (outputs, h_n and gradients) on {trials} random cases.")


# ----------------------------------------------------------------------------------------------
# Lesson 1: parameter shapes and a stacked RNN
# ----------------------------------------------------------------------------------------------
def _expected_shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {name: tuple(p.shape) for name, p in module.named_parameters()}


def check_rnn_parameter_shapes(rnn_parameter_shapes: Callable, seed: int = 0) -> None:
    """Check ``rnn_parameter_shapes(input_size, hidden_size, num_layers) -> {name: shape}``.

    The answer must equal ``{name: tuple(p.shape) for name, p in nn.RNN(...).named_parameters()}``
    but be derived from the sizes: building an ``nn.RNN`` inside the function is refused.
    """
    with _seeded(seed):
        cases = [(int(torch.randint(2, 9, ())), int(torch.randint(3, 9, ())), layers)
                 for layers in (1, 2, 3)]
    cases = [(i, h + (i == h), layers) for i, h, layers in cases]  # input_size != hidden_size
    for input_size, hidden_size, num_layers in cases:
        call = f"rnn_parameter_shapes({input_size}, {hidden_size}, {num_layers})"
        got = _call_without_modules(rnn_parameter_shapes, input_size, hidden_size, num_layers,
                                    name="rnn_parameter_shapes")
        expected = _expected_shapes(nn.RNN(input_size, hidden_size, num_layers))
        if not isinstance(got, dict):
            raise AssertionError(f"{call} should return a dict {{name: shape}}, got {describe(got)}.")
        missing = [name for name in expected if name not in got]
        extra = [name for name in got if name not in expected]
        if missing:
            raise AssertionError(
                f"{call} misses {missing}. nn.RNN names its parameters weight_ih_l<k>, "
                "weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> for every layer k = 0, 1, ...")
        if extra:
            raise AssertionError(f"{call} has names nn.RNN does not have: {extra}.")
        for name, shape in expected.items():
            try:
                got_shape = tuple(int(n) for n in got[name])
            except TypeError:
                raise AssertionError(
                    f"{call}[{name!r}] should be a shape such as (3, 4), got {got[name]!r}.") from None
            if got_shape == shape:
                continue
            if got_shape == shape[::-1]:
                hint = ("transposed: PyTorch stores W_ih as (hidden_size, input_size) and computes "
                        "x_t @ W_ih.T")
            elif name.startswith("bias"):
                hint = "a bias is a vector with one entry per hidden unit: (hidden_size,)"
            elif name.startswith("weight_ih") and name != "weight_ih_l0":
                hint = ("layers above the first read the previous layer's output, so their input "
                        "size is hidden_size")
            else:
                hint = "rows = hidden_size (the outputs), columns = the size of what it multiplies"
            raise AssertionError(f"{call}[{name!r}] is {got_shape}, expected {shape}: {hint}.")
    success("rnn_parameter_shapes gives the names and shapes of nn.RNN for 1, 2 and 3 layers.")


def _stacked_reference(x: Tensor, h0: Tensor, layers: Sequence[Sequence[Tensor]],
                       *, same_h0: bool = False, layer_order: str = "normal") -> tuple[Tensor, Tensor]:
    """A stacked RNN made of the reference loop; switches reproduce common mistakes."""
    inputs, finals, outputs = x, [], []
    for k, params in enumerate(layers):
        output, h_n = _rnn_loop(inputs, h0[0] if same_h0 else h0[k], *params)
        finals.append(h_n)
        outputs.append(output)
        inputs = output
    if layer_order == "reversed":
        finals.reverse()
    return outputs[-1] if layer_order != "first_output" else outputs[0], torch.stack(finals)


def check_stacked_rnn_forward(stacked_rnn_forward: Callable, seed: int = 0) -> None:
    """Check ``stacked_rnn_forward(x, h0, layers) -> (output, h_n)`` against ``nn.RNN(num_layers=L)``.

    x (batch, seq_len, input_size), h0 (num_layers, batch, hidden_size) and ``layers`` a list
    of ``(weight_ih, weight_hh, bias_ih, bias_hh)`` per layer, as nn.RNN stores them; output
    (batch, seq_len, hidden_size) is the last layer's, h_n (num_layers, batch, hidden_size).
    """
    for trial, num_layers in enumerate((2, 3)):
        sizes = _random_sizes(seed * 100 + 50 + trial)
        batch, seq_len = sizes["batch"], sizes["seq_len"]
        input_size, hidden_size = sizes["input_size"], sizes["hidden_size"]
        with _seeded(seed * 100 + 1050 + trial):
            rnn = _randomize(nn.RNN(input_size, hidden_size, num_layers, batch_first=True))
            x = torch.randn(batch, seq_len, input_size)
            h0 = torch.rand(num_layers, batch, hidden_size) * 1.6 - 0.8
        with torch.no_grad():
            expected_output, expected_h_n = rnn(x, h0)
        layers = [tuple(getattr(rnn, f"{kind}_l{k}").detach()
                        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for k in range(num_layers)]
        try:
            got = call_student(stacked_rnn_forward, x.clone(), h0.clone(),
                               [tuple(_clones(*p)) for p in layers], name="stacked_rnn_forward")
        except StudentCodeError as error:
            if "not implemented yet" not in str(error):
                raise
            raise StudentCodeError(
                f"{error} (If you did write stacked_rnn_forward: a function it calls, such as "
                "your rnn_forward of exercise 1, still raises NotImplementedError.)") from None
        output, h_n = _as_pair(got, "stacked_rnn_forward", ("output", "h_n"))
        what = f"with num_layers={num_layers}"
        if tuple(output.shape) != tuple(expected_output.shape):
            assert_shape(output, expected_output.shape, f"output ({what})",
                         "output holds the LAST layer's hidden state at every step.")
        if tuple(h_n.shape) != tuple(expected_h_n.shape):
            hint = "h_n stacks the final state of every layer: torch.stack(finals) (layer 0 first)."
            assert_shape(h_n, expected_h_n.shape, f"h_n ({what})", hint)
        both = (output.detach(), h_n.detach())
        if is_close(both[0], expected_output) and is_close(both[1], expected_h_n):
            continue
        variants = [
            (lambda: _stacked_reference(x, h0, layers, same_h0=True),
             "Every layer must start from its own initial state h0[layer], not h0[0]."),
            (lambda: _stacked_reference(x, h0, layers, layer_order="reversed"),
             "h_n is in the wrong order: h_n[k] is the final state of layer k (layer 0 first)."),
            (lambda: _stacked_reference(x, h0, layers, layer_order="first_output"),
             "output must be the LAST layer's output; yours is the first layer's."),
        ]
        hint = first_matching_mistake(both, variants)
        if hint is None:
            if is_close(both[0], expected_output):
                hint = "output is right but h_n is not: h_n[k] is the last step of layer k's output."
            else:
                hint = ("Layer k + 1 reads the output sequence of layer k, starting from h0[k + 1]. "
                        "If it still fails, first make rnn_forward pass its own check.")
        raise AssertionError(f"stacked_rnn_forward differs from nn.RNN {what}. {hint}")
    success("stacked_rnn_forward matches nn.RNN with 2 and 3 layers.")


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
    sizes = _random_sizes(seed)
    with _seeded(seed + 2000):
        lstm = _randomize(nn.LSTM(sizes["input_size"], sizes["hidden_size"], batch_first=True))
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
                inputs = _clones(x[:, t], h, c, *params)
                got = call_student(lstm_cell, *inputs, name="lstm_cell")
                _check_inputs_untouched("lstm_cell", inputs, [x[:, t], h, c, *params], names)
                h_new, c_new = _as_pair(got, "lstm_cell", ("h_new", "c_new"))
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
        h, c = _as_pair(call_student(lstm_cell, case["x"][:, t], h, c, *params, name="lstm_cell"),
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
        sizes = _random_sizes(seed * 100 + trial)
        with _seeded(seed * 100 + trial + 3000):
            gru = _randomize(nn.GRU(sizes["input_size"], sizes["hidden_size"], batch_first=True))
            x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"])
            h0 = torch.rand(sizes["batch"], sizes["hidden_size"]) * 1.6 - 0.8
        params = [p.detach() for p in
                  (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]
        h = h0
        with torch.no_grad():
            for t in range(sizes["seq_len"]):
                _, h_next = gru(x[:, t:t + 1], h.unsqueeze(0))
                h_next = h_next[0]
                inputs = _clones(x[:, t], h, *params)
                got = call_student(gru_cell, *inputs, name="gru_cell")
                _check_inputs_untouched("gru_cell", inputs, [x[:, t], h, *params], names)
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
    with _seeded(seed):
        sizes = [(int(torch.randint(2, 40, ())), int(torch.randint(2, 40, ()))) for _ in range(4)]
    sizes = [(i, h + (i == h)) for i, h in sizes]
    cases = [(*sizes[0], 1, False), (*sizes[1], 2, False), (*sizes[2], 1, True), (*sizes[3], 3, True)]
    for input_size, hidden_size, num_layers, bidirectional in cases:
        call = (f"count_lstm_parameters({input_size}, {hidden_size}, num_layers={num_layers}, "
                f"bidirectional={bidirectional})")
        got = _call_without_modules(count_lstm_parameters, input_size, hidden_size, num_layers,
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
