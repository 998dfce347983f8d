"""Checkers for the exercises of lesson 1, the RNN forward pass by hand
(``notebooks/exercises/01_exercises.ipynb``; tests in ``tests/test_checks_lesson01.py``).

Each checker builds PyTorch's own ``nn.RNN`` with random sizes and random weights, runs the
student's function on the same numbers and compares (autograd is the oracle of the gradients).
When the answer is wrong, it also runs the *mistakes students often make* (a missing bias, an
untransposed weight, the tanh derivative forgotten, ...) and, when the student's result equals one
of them, names it. Every checker takes a ``seed`` (the hidden tests use other seeds, hence other
sizes) and a ``device`` (default: ``cuda`` when available), where the student's function runs.
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
)

Tensor = torch.Tensor
NAMES = ["x", "h0", "weight_ih", "weight_hh", "bias_ih", "bias_hh"]
NO_RNN = ("recurrent",)  # the answers must not run nn.RNN or its functional forms


# ----------------------------------------------------------------------------------------------
# Exercise 1: rnn_forward
# ----------------------------------------------------------------------------------------------
def _rnn_loop(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
              *, activation: Callable[[Tensor], Tensor] = torch.tanh, transpose_hh: bool = True,
              carry: bool = True, reverse: bool = False, shift: bool = False) -> tuple[Tensor, list[Tensor]]:
    """The RNN loop, with switches that reproduce common mistakes (defaults: the right loop).

    Returns ``output`` and the list of states, so that autograd can differentiate with respect to
    each of them."""
    h, outputs, states = h0, [], []
    steps = range(x.shape[1] - 1, -1, -1) if reverse else range(x.shape[1])
    for t in steps:
        h_new = activation(x[:, t] @ w_ih.T + b_ih + h @ (w_hh.T if transpose_hh else w_hh) + b_hh)
        outputs.append(h if shift else h_new)
        states.append(h_new)
        h = h_new if carry else h
    if reverse:
        outputs.reverse()
    return torch.stack(outputs, dim=1), states


def _rnn_case(seed: int) -> dict[str, Any]:
    """Random sizes, an nn.RNN with random weights and biases, an input and a non-zero h0 (CPU)."""
    sizes = random_sizes(seed)
    g = generator(seed + 1000)
    rnn = randomize(nn.RNN(sizes["input_size"], sizes["hidden_size"], batch_first=True), seed)
    x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"], generator=g)
    h0 = torch.rand(sizes["batch"], sizes["hidden_size"], generator=g) * 1.6 - 0.8
    with torch.no_grad():
        output, h_n = rnn(x, h0.unsqueeze(0))
    params = [rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0]
    return {**sizes, "rnn": rnn, "x": x, "h0": h0, "params": [p.detach() for p in params],
            "output": output, "h_n": h_n[0]}


def _shape_hint(got: Tensor, case: dict[str, Any], what: str) -> str:
    batch, seq_len, hidden = case["batch"], case["seq_len"], case["hidden_size"]
    hints = {
        ("output", (seq_len, batch, hidden)): "You stacked the steps along dimension 0; with "
        "batch_first the steps go along dimension 1: torch.stack(outputs, dim=1).",
        ("output", (batch, hidden)): "output holds the hidden state of EVERY step, not only the last one.",
        ("output", (batch, batch, hidden)): "Your output has one state per sequence of the batch "
        "instead of one per step: with batch_first, loop over x.shape[1] (the steps), not x.shape[0].",
        ("output", (batch, seq_len, case["input_size"])): "The last dimension must be hidden_size "
        "(W_ih maps input_size to hidden_size).",
        ("h_n", (1, batch, hidden)): "nn.RNN returns h_n with a leading num_layers dimension, but "
        "this function returns (batch, hidden_size): drop it.",
        ("h_n", (batch, seq_len, hidden)): "h_n is only the hidden state after the LAST step.",
    }
    default = {"output": "Expected (batch, seq_len, hidden_size): one hidden state per sequence and per step.",
               "h_n": "Expected (batch, hidden_size): the hidden state after the last step."}
    return hints.get((what, tuple(got.shape)), default[what])


def _diagnose_rnn_output(got: Tensor, case: dict[str, Any]) -> str:
    args = dict(zip(["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"], [case["x"], case["h0"], *case["params"]]))
    zero, zero_h = torch.zeros_like(args["b_ih"]), torch.zeros_like(args["h0"])

    def output_of(**switches: Any) -> Callable[[], Tensor]:
        return lambda: _rnn_loop(**{**args, **switches})[0]

    variants = [
        (output_of(h0=zero_h), "It looks like you start from zeros and ignore h0: the first step "
         "must use the initial state h0 (it is not zero here)."),
        (output_of(carry=False), "Step 0 is right but the later steps are not: the state is not "
         "carried. Every step must use the h computed at the previous step, not h0."),
        (output_of(h0=zero_h, carry=False), "Every step seems to start from zeros: the state is "
         "not carried from one step to the next, and h0 is ignored."),
        (output_of(b_ih=zero), "A bias is missing: add bias_ih (nn.RNN adds both bias_ih and bias_hh)."),
        (output_of(b_hh=zero), "A bias is missing: add bias_hh (nn.RNN adds both bias_ih and bias_hh)."),
        (output_of(b_ih=zero, b_hh=zero), "Both biases are missing: add bias_ih and bias_hh."),
        (output_of(transpose_hh=False), "weight_hh is used without transposing: PyTorch computes "
         "h_{t-1} @ weight_hh.T (weight_hh is square, so the shapes did not warn you)."),
        (output_of(activation=lambda z: z), "The tanh is missing: h_t = tanh(...)."),
        (output_of(activation=torch.sigmoid), "Use tanh, not sigmoid (nn.RNN's default nonlinearity)."),
        (output_of(activation=torch.relu), "Use tanh, not relu (nn.RNN's default nonlinearity)."),
        (output_of(reverse=True), "It looks like you read the sequence backwards (last step first)."),
        (output_of(shift=True), "Your output is shifted by one step: output[:, t] must be the state "
         "AFTER reading x[:, t] (append the new h, not the previous one)."),
    ]
    known = first_matching_mistake(got, variants)
    if known:
        return known
    first_wrong = next(t for t in range(case["seq_len"]) if not is_close(got[:, t], case["output"][:, t]))
    if first_wrong == 0:
        return "Already the first step differs: check h_1 = tanh(x_0 @ W_ih.T + b_ih + h0 @ W_hh.T + b_hh)."
    return (f"Steps 0 to {first_wrong - 1} are right but step {first_wrong} differs: "
            "check how the state is carried from one step to the next.")


def _check_rnn_gradients(rnn_forward: Callable, case: dict[str, Any], device: torch.device) -> None:
    """The student's loop must let autograd compute the same gradients as nn.RNN (BPTT)."""
    leaves = [t.requires_grad_(True) for t in on_device(device, case["x"], case["h0"], *case["params"])]
    output, h_n = as_pair(call_student(rnn_forward, *leaves, name="rnn_forward", forbid=NO_RNN),
                          "rnn_forward", ("output", "h_n"))
    if not output.requires_grad:
        raise AssertionError(
            "rnn_forward gives the right values but no gradient flows back to the weights: do not "
            "use .detach(), .item(), .numpy(), .data or torch.no_grad() inside it.")
    g = generator(7)
    weights_out, weights_h = torch.randn(output.shape, generator=g), torch.randn(h_n.shape, generator=g)
    loss = (output * weights_out.to(output.device)).sum() + (h_n * weights_h.to(h_n.device)).sum()
    grads = torch.autograd.grad(loss, leaves, allow_unused=True)

    rnn, (x, h0) = case["rnn"], [t.clone().requires_grad_(True) for t in (case["x"], case["h0"])]
    expected_output, expected_h_n = rnn(x, h0.unsqueeze(0))
    expected_loss = (expected_output * weights_out).sum() + (expected_h_n[0] * weights_h).sum()
    expected = torch.autograd.grad(expected_loss, [x, h0, *rnn.parameters()])
    for name, grad, grad_expected in zip(NAMES, grads, expected):
        if grad is None or not is_close(grad, grad_expected):
            raise AssertionError(
                f"rnn_forward gives the right values, but the gradient with respect to {name} "
                "differs from nn.RNN's: part of the computation is cut from the autograd graph "
                "(.detach(), .data, in-place writes, or a tensor rebuilt from numbers).")


@keeps_random_state
def check_rnn_forward(rnn_forward: Callable, seed: int = 0, trials: int = 3, device: Any = None) -> None:
    """Check ``rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh) -> (output, h_n)``.

    Shapes: x (batch, seq_len, input_size), h0 (batch, hidden_size) -> output
    (batch, seq_len, hidden_size), h_n (batch, hidden_size). The oracle is ``nn.RNN`` with
    ``batch_first=True``; values and gradients (backpropagation through time) must match.
    Running ``nn.RNN`` (or its functional forms) inside the answer is refused.
    """
    device = resolve_device(device)
    for trial in range(trials):
        case = _rnn_case(seed * 100 + trial)
        originals = [case["x"], case["h0"], *case["params"]]
        inputs = on_device(device, *originals)
        got = call_student(rnn_forward, *inputs, name="rnn_forward", forbid=NO_RNN)
        check_inputs_untouched("rnn_forward", inputs, originals, NAMES)
        output, h_n = as_pair(got, "rnn_forward", ("output", "h_n"))
        for what, tensor in (("output", output), ("h_n", h_n)):
            assert_shape(tensor, case[what].shape, what, _shape_hint(tensor, case, what))
        if not is_close(output, case["output"]):
            raise AssertionError("output differs from nn.RNN's. " + _diagnose_rnn_output(output.detach(), case))
        if not is_close(h_n, case["h_n"]):
            if is_close(h_n, case["h0"]):
                hint = "You return h0: h_n is the state after the LAST step."
            elif is_close(h_n, case["output"][:, 0]):
                hint = "You return the state after the FIRST step: h_n is the state after the last."
            else:
                hint = "h_n must equal output[:, -1], the state after the last step."
            raise AssertionError(f"output is right but h_n differs from nn.RNN's. {hint}")
    _check_rnn_gradients(rnn_forward, case, device)
    success(f"rnn_forward matches nn.RNN (outputs, h_n and gradients) on {trials} random cases.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: parameter shapes
# ----------------------------------------------------------------------------------------------
@keeps_random_state
def check_rnn_parameter_shapes(rnn_parameter_shapes: Callable, seed: int = 0) -> None:
    """Check ``rnn_parameter_shapes(input_size, hidden_size, num_layers) -> {name: shape}``.

    The answer must equal ``{name: tuple(p.shape) for name, p in nn.RNN(...).named_parameters()}``
    but be derived from the sizes: building an ``nn.RNN`` inside the function is refused.
    """
    g = generator(seed)
    cases = [(int(torch.randint(2, 9, (), generator=g)), int(torch.randint(3, 9, (), generator=g)), layers)
             for layers in (1, 2, 3)]
    for input_size, hidden_size, num_layers in [(i, h + (i == h), n) for i, h, n in cases]:
        call = f"rnn_parameter_shapes({input_size}, {hidden_size}, {num_layers})"
        got = call_without_modules(rnn_parameter_shapes, input_size, hidden_size, num_layers,
                                   name="rnn_parameter_shapes")
        expected = {name: tuple(p.shape) for name, p in nn.RNN(input_size, hidden_size, num_layers).named_parameters()}
        if not isinstance(got, dict):
            raise AssertionError(f"{call} should return a dict {{name: shape}}, got {describe(got)}.")
        missing, extra = [n for n in expected if n not in got], [n for n in got if n not in expected]
        if missing:
            raise AssertionError(
                f"{call} misses {missing}. nn.RNN names its parameters weight_ih_l<k>, "
                "weight_hh_l<k>, bias_ih_l<k>, bias_hh_l<k> for every layer k = 0, 1, ...")
        if extra:
            raise AssertionError(f"{call} has names nn.RNN does not have: {extra}.")
        for name, shape in expected.items():
            try:
                got_shape = tuple(int(n) for n in got[name])
            except (TypeError, ValueError):
                raise AssertionError(f"{call}[{name!r}] should be a shape such as (3, 4), got {got[name]!r}.") from None
            if got_shape == shape:
                continue
            if got_shape == shape[::-1]:
                hint = "transposed: PyTorch stores W_ih as (hidden_size, input_size) and computes x_t @ W_ih.T"
            elif name.startswith("bias"):
                hint = "a bias is a vector with one entry per hidden unit: (hidden_size,)"
            elif name.startswith("weight_ih") and name != "weight_ih_l0":
                hint = "layers above the first read the previous layer's output, so their input size is hidden_size"
            else:
                hint = "rows = hidden_size (the outputs), columns = the size of what it multiplies"
            raise AssertionError(f"{call}[{name!r}] is {got_shape}, expected {shape}: {hint}.")
    success("rnn_parameter_shapes gives the names and shapes of nn.RNN for 1, 2 and 3 layers.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: a stacked RNN
# ----------------------------------------------------------------------------------------------
def _stacked_reference(x: Tensor, h0: Tensor, layers: Sequence[Sequence[Tensor]],
                       *, same_h0: bool = False, layer_order: str = "normal") -> tuple[Tensor, Tensor]:
    """A stacked RNN made of the reference loop; switches reproduce common mistakes."""
    inputs, finals, outputs = x, [], []
    for k, params in enumerate(layers):
        output, states = _rnn_loop(inputs, h0[0] if same_h0 else h0[k], *params)
        finals.append(states[-1])
        outputs.append(output)
        inputs = output
    if layer_order == "reversed":
        finals.reverse()
    return outputs[0] if layer_order == "first_output" else outputs[-1], torch.stack(finals)


@keeps_random_state
def check_stacked_rnn_forward(stacked_rnn_forward: Callable, seed: int = 0, device: Any = None) -> None:
    """Check ``stacked_rnn_forward(x, h0, layers) -> (output, h_n)`` against ``nn.RNN(num_layers=L)``.

    x (batch, seq_len, input_size), h0 (num_layers, batch, hidden_size) and ``layers`` a list
    of ``(weight_ih, weight_hh, bias_ih, bias_hh)`` per layer, as nn.RNN stores them; output
    (batch, seq_len, hidden_size) is the last layer's, h_n (num_layers, batch, hidden_size).
    """
    device = resolve_device(device)
    for trial, num_layers in enumerate((2, 3)):
        sizes = random_sizes(seed * 100 + 50 + trial)
        g = generator(seed * 100 + 1050 + trial)
        rnn = randomize(nn.RNN(sizes["input_size"], sizes["hidden_size"], num_layers, batch_first=True),
                        seed * 100 + trial)
        x = torch.randn(sizes["batch"], sizes["seq_len"], sizes["input_size"], generator=g)
        h0 = torch.rand(num_layers, sizes["batch"], sizes["hidden_size"], generator=g) * 1.6 - 0.8
        with torch.no_grad():
            expected = rnn(x, h0)
        layers = [tuple(getattr(rnn, f"{kind}_l{k}").detach() for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
                  for k in range(num_layers)]
        try:
            got = call_student(stacked_rnn_forward, *on_device(device, x, h0),
                               [tuple(on_device(device, *p)) for p in layers], name="stacked_rnn_forward",
                               forbid=NO_RNN)
        except StudentCodeError as error:
            if "not implemented yet" not in str(error):
                raise
            raise StudentCodeError(
                f"{error} (If you did write stacked_rnn_forward: a function it calls, such as "
                "your rnn_forward of exercise 1, still raises NotImplementedError.)") from None
        output, h_n = as_pair(got, "stacked_rnn_forward", ("output", "h_n"))
        what = f"with num_layers={num_layers}"
        assert_shape(output, expected[0].shape, f"output ({what})", "output holds the LAST layer's hidden state at every step.")
        assert_shape(h_n, expected[1].shape, f"h_n ({what})",
                     "h_n stacks the final state of every layer: torch.stack(finals) (layer 0 first).")
        both = (output.detach(), h_n.detach())
        if is_close(both, expected):
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
            if is_close(both[0], expected[0]):
                hint = "output is right but h_n is not: h_n[k] is the last step of layer k's output."
            else:
                hint = ("Layer k + 1 reads the output sequence of layer k, starting from h0[k + 1]. "
                        "If it still fails, first make rnn_forward pass its own check.")
        raise AssertionError(f"stacked_rnn_forward differs from nn.RNN {what}. {hint}")
    success("stacked_rnn_forward matches nn.RNN with 2 and 3 layers.")


# ----------------------------------------------------------------------------------------------
# Exercise 4: backpropagation through time by hand
# ----------------------------------------------------------------------------------------------
def _bptt(output: Tensor, w_hh: Tensor, grad_output: Tensor, *, derivative: Callable = lambda h: 1 - h**2,
          w: Tensor | None = None, same_step: bool = False, forward: bool = False,
          direct: bool = True, recurrent: bool = True, pre_activation: bool = False,
          one_step: bool = False) -> Tensor:
    """dL/dh_t for every t by hand; the switches reproduce common mistakes (defaults: right).

    ``one_step``: the gradient coming back from h_{t+1} is built from grad_output[:, t+1] alone
    instead of the running total dL/dh_{t+1} (only one step back).
    """
    w = w_hh if w is None else w
    steps = list(range(output.shape[1]))
    grads: dict[int, Tensor] = {}
    previous = None  # the step the gradient comes from (t + 1 when going backwards)
    for t in (steps if forward else steps[::-1]):
        grad = grad_output[:, t] if direct else torch.zeros_like(grad_output[:, t])
        if previous is not None and recurrent:
            coming = grad_output[:, previous] if one_step else grads[previous]
            grad = grad + (coming * derivative(output[:, t if same_step else previous])) @ w
        grads[t], previous = grad, t
    result = torch.stack([grads[t] for t in steps], dim=1)
    return result * derivative(output) if pre_activation else result


@keeps_random_state
def check_hidden_state_gradients(hidden_state_gradients: Callable, seed: int = 0, trials: int = 3,
                                 device: Any = None) -> None:
    """Check ``hidden_state_gradients(output, weight_hh, grad_output) -> grad_h``, computed by hand.

    ``output`` (batch, seq_len, hidden_size) holds the states h_t of a tanh RNN, ``grad_output``
    the gradient the loss sends directly into each of them, dL/d output. The answer is the total
    dL/dh_t for every step (through all later steps too), same shape. The oracle is autograd on
    the RNN loop; autograd inside the answer is refused.
    """
    device = resolve_device(device)
    for trial in range(trials):
        case = _rnn_case(seed * 100 + 70 + trial)
        x, h0, w_ih, w_hh, b_ih, b_hh = [case["x"], case["h0"], *case["params"]]
        output, states = _rnn_loop(x, h0, w_ih, w_hh.clone().requires_grad_(True), b_ih, b_hh)
        grad_output = torch.randn(output.shape, generator=generator(seed * 100 + trial))
        if trial == trials - 1:  # the loss reads only the last state, as in lesson 1's picture
            grad_output[:, :-1] = 0
        expected = torch.stack(torch.autograd.grad((output * grad_output).sum(), states), dim=1)
        output = output.detach()
        inputs = on_device(device, output, w_hh, grad_output)
        got = call_student(hidden_state_gradients, *inputs, name="hidden_state_gradients",
                           forbid=("autograd", "recurrent"))
        check_inputs_untouched("hidden_state_gradients", inputs, [output, w_hh, grad_output],
                               ["output", "weight_hh", "grad_output"])
        assert_shape(got, expected.shape, "grad_h", "One gradient per state: (batch, seq_len, hidden_size).")
        if is_close(got, expected):
            continue
        args = (output, w_hh, grad_output)
        variants = [
            (lambda: _bptt(*args, recurrent=False), "You return grad_output: h_t also reaches the "
             "loss through every later state, h_{t+1} = tanh(... + h_t @ W_hh.T + ...)."),
            (lambda: _bptt(*args, derivative=lambda h: 1), "The tanh derivative is missing: going "
             "back through h_{t+1} = tanh(a_{t+1}) multiplies by 1 - h_{t+1}**2 (element-wise) before W_hh."),
            (lambda: _bptt(*args, derivative=lambda h: 1 - torch.tanh(h) ** 2), "h is already tanh(a): "
             "the derivative is 1 - h**2, not 1 - tanh(h)**2."),
            (lambda: _bptt(*args, derivative=lambda h: (1 - h) ** 2), "The tanh derivative is 1 - h**2 "
             "(one minus h squared, element-wise), not (1 - h)**2: mind the brackets."),
            (lambda: _bptt(*args, one_step=True), "Only one step back: the gradient coming back from "
             "h_{t+1} must be the TOTAL dL/dh_{t+1} you computed the step before (the running sum, which "
             "already holds every later step), not grad_output[:, t+1] alone."),
            (lambda: _bptt(*args, w=w_hh.T), "W_hh is transposed the wrong way: the forward step "
             "computes h_t @ W_hh.T, so going back the gradient is multiplied by W_hh: (...) @ W_hh."),
            (lambda: _bptt(*args, same_step=True), "The tanh derivative is taken at the wrong step: "
             "the gradient coming from h_{t+1} is multiplied by 1 - h_{t+1}**2, not 1 - h_t**2."),
            (lambda: _bptt(*args, forward=True), "The sum runs in the wrong order: h_t influences "
             "only LATER steps, so start at the last step and go back (t = T-1, ..., 0)."),
            (lambda: _bptt(*args, direct=False), "The direct term is missing: output[:, t] itself "
             "feeds the loss, so dL/dh_t starts with grad_output[:, t]."),
            (lambda: _bptt(*args, pre_activation=True), "You return dL/da_t, the gradient AFTER "
             "multiplying by the tanh derivative; the exercise asks for dL/dh_t."),
        ]
        hint = first_matching_mistake(got.detach(), variants)
        if hint is None:
            wrong = [t for t in range(case["seq_len"]) if not is_close(got[:, t], expected[:, t])]
            hint = (f"The last step is right, but step {wrong[-1]} is not: dL/dh_t = grad_output[:, t] "
                    "+ the gradient coming back from h_{t+1}." if wrong[-1] < case["seq_len"] - 1 else
                    "Already the last step differs: nothing comes after it, so dL/dh_T = grad_output[:, T].")
        raise AssertionError(f"grad_h differs from autograd's (seq_len={case['seq_len']}). {hint}")
    success(f"hidden_state_gradients equals autograd's dL/dh_t at every step ({trials} random cases).")
