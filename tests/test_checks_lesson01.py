"""The checkers of lesson 1 (the RNN by hand; course_utils/checks/lesson01.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from checker_testing import devices_seen, keeps_random_state, not_implemented, rejects
from course_utils.checks import (
    check_hidden_state_gradients,
    check_rnn_forward,
    check_rnn_parameter_shapes,
    check_stacked_rnn_forward,
)
from course_utils.checks._common import default_device


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


def rnn_forward_projected_once(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """Vectorised input projection (all steps at once), then the loop over steps."""
    projected = x @ weight_ih.T + bias_ih + bias_hh
    h, outputs = h0, []
    for x_part in projected.unbind(dim=1):
        h = torch.tanh(x_part + h @ weight_hh.T)
        outputs.append(h)
    return torch.stack(outputs, dim=1), h


def rnn_forward_preallocated(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """Writes each step into a tensor made on the inputs' device, with torch.addmm and float64."""
    device = x.device
    output = torch.empty(x.shape[0], x.shape[1], h0.shape[1], dtype=torch.float64, device=device)
    h = h0.double()
    for t in range(x.shape[1]):
        h = torch.tanh(torch.addmm(bias_ih.double(), x[:, t].double(), weight_ih.double().T)
                       + torch.addmm(bias_hh.double(), h, weight_hh.double().T))
        output[:, t] = h
    return output.float(), h.float()


def rnn_forward_on_notebook_device(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
    """Moves everything to the notebook's device first, as the lessons do."""
    device = default_device()
    tensors = [t.to(device) for t in (x, h0, weight_ih, weight_hh, bias_ih, bias_hh)]
    return rnn_forward(*tensors)


@pytest.mark.parametrize("right", [rnn_forward, rnn_forward_projected_once, rnn_forward_preallocated,
                                   rnn_forward_on_notebook_device])
def test_rnn_forward_accepts_right_answers_written_differently(right, capsys):
    check_rnn_forward(right)
    check_rnn_forward(right, seed=1, device="cpu")
    assert "rnn_forward matches nn.RNN" in capsys.readouterr().out


def test_rnn_forward_refuses_pytorchs_rnn_however_it_is_called():
    def through_functional_call(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        rnn = nn.RNN(x.shape[2], h0.shape[1], batch_first=True)
        weights = dict(zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                           [weight_ih, weight_hh, bias_ih, bias_hh]))
        output, h_n = torch.func.functional_call(rnn, weights, (x, h0[None]))
        return output, h_n[0]

    def through_vf(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        output, h_n = torch._VF.rnn_tanh(x, h0[None], [weight_ih, weight_hh, bias_ih, bias_hh],
                                         True, 1, 0.0, False, False, True)
        return output, h_n[0]

    def through_cell_hiding_the_error(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        try:
            return torch.rnn_tanh_cell(x[:, 0], h0, weight_ih, weight_hh, bias_ih, bias_hh)
        except Exception:
            return rnn_forward(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)

    for cheat in (through_functional_call, through_vf, through_cell_hiding_the_error):
        rejects(check_rnn_forward, cheat, "recurrent layers", "write the computation")


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

    rejects(check_rnn_forward, typo, "raised RuntimeError", "`return x @ weight_hh")


def test_an_error_inside_torch_points_at_the_students_line():
    def loss_inside(x, h0, weight_ih, weight_hh, bias_ih, bias_hh):
        scores = x * 2
        return nn.functional.binary_cross_entropy_with_logits(scores, h0)  # 3-d and 2-d: an error

    message = rejects(check_rnn_forward, loss_inside, "raised ValueError",
                      "`return nn.functional.binary_cross_entropy_with_logits(scores, h0)")
    assert "functional.py" not in message and "torch.binary_cross_entropy" not in message


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


def stacked_preallocated(x, h0, layers):
    """Written differently: h_n filled into a preallocated tensor, layers unpacked by name."""
    h_n = torch.empty_like(h0)
    output = x
    for k, (weight_ih, weight_hh, bias_ih, bias_hh) in enumerate(layers):
        output, h_n[k] = rnn_forward(output, h0[k], weight_ih, weight_hh, bias_ih, bias_hh)
    return output, h_n


def stacked_step_major(x, h0, layers):
    """Written differently: time outermost, every layer advanced one step at a time (no rnn_forward)."""
    hidden = list(h0.unbind(0))
    outputs = []
    for t in range(x.shape[1]):
        inputs = x[:, t]
        for k, (weight_ih, weight_hh, bias_ih, bias_hh) in enumerate(layers):
            hidden[k] = torch.tanh(inputs @ weight_ih.T + bias_ih + hidden[k] @ weight_hh.T + bias_hh)
            inputs = hidden[k]
        outputs.append(inputs)
    return torch.stack(outputs, dim=1), torch.stack(hidden)


@pytest.mark.parametrize("answer", [stacked_rnn_forward, stacked_preallocated, stacked_step_major])
def test_stacked_rnn_forward_accepts_the_right_answer(answer, capsys):
    check_stacked_rnn_forward(answer)
    check_stacked_rnn_forward(answer, seed=2)
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
# hidden_state_gradients: backpropagation through time by hand
# ----------------------------------------------------------------------------------------------
def hidden_state_gradients(output, weight_hh, grad_output):
    steps = output.shape[1]
    grads = [grad_output[:, -1]]
    for t in range(steps - 2, -1, -1):
        from_next = (grads[-1] * (1 - output[:, t + 1] ** 2)) @ weight_hh
        grads.append(grad_output[:, t] + from_next)
    return torch.stack(grads[::-1], dim=1)


def hidden_state_gradients_preallocated(output, weight_hh, grad_output):
    """Fills a zeros_like tensor from the last step back, in float64."""
    grad_h = torch.zeros_like(output, dtype=torch.float64)
    output, weight_hh, grad_output = output.double(), weight_hh.double(), grad_output.double()
    grad_h[:, -1] = grad_output[:, -1]
    for t in reversed(range(output.shape[1] - 1)):
        grad_h[:, t] = grad_output[:, t] + (grad_h[:, t + 1] * (1 - output[:, t + 1].pow(2))) @ weight_hh
    return grad_h


def hidden_state_gradients_with_jacobians(output, weight_hh, grad_output):
    """Builds each Jacobian J = diag(1 - h_{t+1}^2) W_hh (one per sequence) and applies J^T."""
    batch, steps, hidden = output.shape
    grad, grads = grad_output[:, -1], [grad_output[:, -1]]
    for t in range(steps - 2, -1, -1):
        jacobians = torch.diag_embed(1 - output[:, t + 1] ** 2) @ weight_hh  # (batch, hidden, hidden)
        grad = grad_output[:, t] + torch.einsum("bij,bi->bj", jacobians, grad)
        grads.insert(0, grad)
    return torch.stack(grads, dim=1)


@pytest.mark.parametrize("right", [hidden_state_gradients, hidden_state_gradients_preallocated,
                                   hidden_state_gradients_with_jacobians])
def test_hidden_state_gradients_accepts_right_answers_written_differently(right, capsys):
    check_hidden_state_gradients(right)
    check_hidden_state_gradients(right, seed=4, device="cpu")
    assert "equals autograd's dL/dh_t" in capsys.readouterr().out


def make_bptt(*, derivative=lambda h: 1 - h**2, transpose=False, same_step=False, forward=False,
              direct=True, pre_activation=False, one_step=False):
    """A family of hand-written BPTT loops with one mistake switched on."""
    def broken(output, weight_hh, grad_output):
        w = weight_hh.T if transpose else weight_hh
        steps = list(range(output.shape[1]))
        order = steps if forward else steps[::-1]
        grads, previous = {}, None
        for t in order:
            grad = grad_output[:, t] if direct else torch.zeros_like(grad_output[:, t])
            if previous is not None:
                coming = grad_output[:, previous] if one_step else grads[previous]
                grad = grad + (coming * derivative(output[:, t if same_step else previous])) @ w
            grads[t], previous = grad, t
        result = torch.stack([grads[t] for t in steps], dim=1)
        return result * derivative(output) if pre_activation else result
    return broken


def bptt_square_of_difference(output, weight_hh, grad_output):
    """Held out in issue 20: (1 - h)**2 for the tanh derivative, written as students write it."""
    grad_h = grad_output.clone()
    for t in range(output.shape[1] - 2, -1, -1):
        grad_h[:, t] += (grad_h[:, t + 1] * (1 - output[:, t + 1]) ** 2) @ weight_hh
    return grad_h


def bptt_one_step_back(output, weight_hh, grad_output):
    """Held out in issue 20: each step adds only what the NEXT step's own loss sends back."""
    grad_h = grad_output.clone()
    grad_h[:, :-1] += (grad_output[:, 1:] * (1 - output[:, 1:] ** 2)) @ weight_hh
    return grad_h


def with_autograd(output, weight_hh, grad_output):
    output = output.clone().requires_grad_(True)
    (output * grad_output).sum().backward()
    return output.grad


def with_torch_func(output, weight_hh, grad_output):
    _, vjp = torch.func.vjp(lambda o: o * 2, output)
    return vjp(grad_output / 2)[0]


@pytest.mark.parametrize("broken, fragments", [
    (make_bptt(derivative=lambda h: torch.ones_like(h)), ["tanh derivative is missing"]),
    (make_bptt(derivative=lambda h: 1 - torch.tanh(h) ** 2), ["already tanh(a)"]),
    (make_bptt(transpose=True), ["transposed the wrong way", "@ W_hh"]),
    (make_bptt(same_step=True), ["wrong step", "1 - h_{t+1}**2"]),
    (make_bptt(forward=True), ["wrong order", "last step"]),
    (make_bptt(direct=False), ["direct term is missing"]),
    (make_bptt(pre_activation=True), ["dL/da_t"]),
    (make_bptt(derivative=lambda h: (1 - h) ** 2), ["1 - h**2", "not (1 - h)**2"]),
    (bptt_square_of_difference, ["1 - h**2", "not (1 - h)**2"]),
    (make_bptt(one_step=True), ["Only one step back", "running sum"]),
    (bptt_one_step_back, ["Only one step back", "running sum"]),
    (lambda output, weight_hh, grad_output: grad_output.clone(), ["You return grad_output"]),
    (lambda output, weight_hh, grad_output: hidden_state_gradients(output, weight_hh, grad_output)[:, :-1],
     ["grad_h has shape"]),
    (with_autograd, ["autograd", "by hand"]),
    (with_torch_func, ["autograd", "by hand"]),
    (not_implemented, ["not implemented yet"]),
])
def test_hidden_state_gradients_rejects_mistakes(broken, fragments):
    rejects(check_hidden_state_gradients, broken, *fragments)


def test_hidden_state_gradients_rejects_changing_its_inputs():
    def in_place(output, weight_hh, grad_output):
        output.mul_(1.0).pow_(1)  # harmless values, but...
        grad_output[:, 0] = grad_output[:, 0]
        weight_hh.t_()
        return hidden_state_gradients(output, weight_hh.t(), grad_output)

    rejects(check_hidden_state_gradients, in_place, "in place", "weight_hh")


# ----------------------------------------------------------------------------------------------
# Every checker: the inputs' device, the student's random stream
# ----------------------------------------------------------------------------------------------
def test_checkers_build_their_inputs_on_the_requested_device():
    assert devices_seen(check_rnn_forward, lambda *args: args) == {"meta"}
    assert devices_seen(check_stacked_rnn_forward, lambda x, h0, layers: [x, h0, *layers[0]]) == {"meta"}
    assert devices_seen(check_hidden_state_gradients, lambda *args: args) == {"meta"}


def test_checkers_leave_the_random_stream_alone():
    assert keeps_random_state(lambda: check_rnn_forward(rnn_forward))
    assert keeps_random_state(lambda: check_stacked_rnn_forward(stacked_rnn_forward))
    assert keeps_random_state(lambda: check_rnn_parameter_shapes(rnn_parameter_shapes))
    assert keeps_random_state(lambda: check_hidden_state_gradients(hidden_state_gradients))
