"""Checkers for the exercises of lesson 1, the RNN forward pass by hand
(``notebooks/exercises/01_exercises.ipynb``; tests in ``tests/test_checks_lesson01.py``).

Each checker builds PyTorch's own ``nn.RNN`` with random sizes and random weights, runs the
student's function on the same numbers and compares. When the answer is wrong, it also runs the
*mistakes students often make* (a missing bias, an untransposed weight, the state not carried, ...)
and, when the student's result equals one of them, names it in the message. Every checker takes a
``seed``: the hidden tests of the exercise notebook call it again with other seeds, hence other sizes.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from torch import nn

from ._common import (
    StudentCodeError,
    as_pair,
    assert_shape,
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
    sizes = random_sizes(seed)
    with seeded(seed + 1000):
        rnn = randomize(nn.RNN(sizes["input_size"], sizes["hidden_size"], batch_first=True))
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
    output, h_n = as_pair(call_student(rnn_forward, *leaves, name="rnn_forward"),
                           "rnn_forward", ("output", "h_n"))
    if not output.requires_grad:
        raise AssertionError(
            "rnn_forward gives the right values but no gradient flows back to the weights: do not "
            "use .detach(), .item(), .numpy(), .data or torch.no_grad() inside it.")
    with seeded(7):
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
        inputs = clones(case["x"], case["h0"], *case["params"])
        got = call_student(rnn_forward, *inputs, name="rnn_forward")
        check_inputs_untouched("rnn_forward", inputs, [case["x"], case["h0"], *case["params"]],
                                ["x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"])
        output, h_n = as_pair(got, "rnn_forward", ("output", "h_n"))
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
    with seeded(seed):
        cases = [(int(torch.randint(2, 9, ())), int(torch.randint(3, 9, ())), layers)
                 for layers in (1, 2, 3)]
    cases = [(i, h + (i == h), layers) for i, h, layers in cases]  # input_size != hidden_size
    for input_size, hidden_size, num_layers in cases:
        call = f"rnn_parameter_shapes({input_size}, {hidden_size}, {num_layers})"
        got = call_without_modules(rnn_parameter_shapes, input_size, hidden_size, num_layers,
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
        sizes = random_sizes(seed * 100 + 50 + trial)
        batch, seq_len = sizes["batch"], sizes["seq_len"]
        input_size, hidden_size = sizes["input_size"], sizes["hidden_size"]
        with seeded(seed * 100 + 1050 + trial):
            rnn = randomize(nn.RNN(input_size, hidden_size, num_layers, batch_first=True))
            x = torch.randn(batch, seq_len, input_size)
            h0 = torch.rand(num_layers, batch, hidden_size) * 1.6 - 0.8
        with torch.no_grad():
            expected_output, expected_h_n = rnn(x, h0)
        layers = [tuple(getattr(rnn, f"{kind}_l{k}").detach()
                        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for k in range(num_layers)]
        try:
            got = call_student(stacked_rnn_forward, x.clone(), h0.clone(),
                               [tuple(clones(*p)) for p in layers], name="stacked_rnn_forward")
        except StudentCodeError as error:
            if "not implemented yet" not in str(error):
                raise
            raise StudentCodeError(
                f"{error} (If you did write stacked_rnn_forward: a function it calls, such as "
                "your rnn_forward of exercise 1, still raises NotImplementedError.)") from None
        output, h_n = as_pair(got, "stacked_rnn_forward", ("output", "h_n"))
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
