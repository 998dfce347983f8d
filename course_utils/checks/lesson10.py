"""Checkers for the exercises of lesson 10, RNNs today
(``notebooks/exercises/10_exercises.ipynb``; tests in ``tests/test_checks_lesson10.py``).

The oracles are the definitions themselves: the recurrence h_t = a_t * h_{t-1} + b_t computed step
by step (``course_utils.modern.linear_recurrence_loop``), a mask built from its rule, and the minGRU
computed step by step. Two of the exercises must run *in parallel over time*: the checker counts the
tensor operations the student's function makes on a long sequence (a loop over 1,000 steps makes
thousands; a scan a few dozen). When an answer is wrong, the checker runs the usual mistakes (the
wrong cumulative product, h_0 one step off, the mask inverted, the future visible...) and names the
one that matches. Inputs are random, from local generators; each checker takes a ``seed`` and a
``device`` (``None``: the notebooks' default): the student's code gets its tensors there.
"""

from __future__ import annotations

import copy
import random
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..batching import padding_mask
from ..modern import g, linear_recurrence_loop
from ._common import (Device, call_student, describe, exact_float32, first_matching_mistake, is_close,
                      keeps_random_state, random_lengths, resolve_device, result_on, success)

Tensor = torch.Tensor

LONG = 1_000  # steps of the sequence on which the operations are counted
MAX_OPERATIONS = 200  # a scan needs a few dozen (a doubling scan: about 6 per doubling, 10 doublings)


class _CountOperations(TorchFunctionMode):
    """Counts every torch function and tensor method called inside the block."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _count_operations(fn: Callable, *args: Any, name: str) -> tuple[Any, int]:
    """The student's result and the number of tensor operations it took."""
    counter = _CountOperations()
    with counter:
        result = call_student(fn, *args, name=name)
    return result, counter.count


def _refuse_loops(count: int, name: str) -> None:
    if count > MAX_OPERATIONS:
        raise AssertionError(
            f"{name} made {count:,} tensor operations for a sequence of {LONG:,} steps: it loops over time. "
            "Compute every step at once with cumulative operations over the time dimension (dim=1): "
            "torch.cumprod / torch.cumsum (or their logarithms), no Python loop over the steps.")


def _no_bad_numbers(got: Tensor, name: str) -> None:
    if not torch.isfinite(got).all():
        raise AssertionError(
            f"{name} returned inf or NaN: a product of many gates below 1 underflows to 0 and a division by it "
            "explodes. Keep the division by A_k (it is exact) but make sure it is A_k = a_1 * ... * a_k of the same "
            "sequence; or compute in logarithms (torch.cumsum of log a).")


# ----------------------------------------------------------------------------------------------
# Exercise 1: the parallel scan of a linear recurrence
# ----------------------------------------------------------------------------------------------
def _scan_case(seed: int, steps: int = 0, low: float = 0.5) -> dict:
    """a in [low, 1), b and h0 of both signs; float64 so that any right method matches to 1e-9."""
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    batch, hidden = rng.randint(2, 4), rng.randint(2, 5)
    steps = steps or rng.randint(5, 30)
    return {
        "a": low + (1 - low) * torch.rand(batch, steps, hidden, generator=gen, dtype=torch.float64),
        "b": torch.randn(batch, steps, hidden, generator=gen, dtype=torch.float64),
        "h0": torch.randn(batch, hidden, generator=gen, dtype=torch.float64),
    }


def _scan_mistakes(a: Tensor, b: Tensor, h0: Tensor) -> list:
    A = torch.cumprod(a, dim=1)
    A_before = torch.cat([torch.ones_like(A[:, :1]), A[:, :-1]], dim=1)  # a_1 ... a_{t-1}
    loop = linear_recurrence_loop(a, b, h0)
    return [
        (lambda: A * (h0.unsqueeze(1) + torch.cumsum(b / A_before, dim=1)),
         "The wrong cumulative product: each b_k got multiplied by its own a_k. In h_t = A_t (h_0 + sum_k b_k / A_k), "
         "divide b_k by A_k = a_1 ... a_k, the product up to AND including step k (torch.cumprod is inclusive)."),
        (lambda: A_before * h0.unsqueeze(1) + A * torch.cumsum(b / A, dim=1),
         "Off by one in h_0: h_1 = a_1 h_0 + b_1, so h_0 is multiplied by a_1 too; h_0 enters h_t as A_t * h_0 "
         "with A_t = a_1 ... a_t (the same A_t as the b terms)."),
        (lambda: torch.cat([h0.unsqueeze(1), loop[:, :-1]], dim=1),
         "Off by one in h_0: your output starts with h_0. output[:, t] must be the state AFTER step t+1: "
         "h_1, ..., h_T (h_0 is not in it)."),
        (lambda: A * torch.cumsum(b / A, dim=1),
         "h_0 is ignored (you start from zeros): add A_t * h_0."),
        (lambda: linear_recurrence_loop(a.cumsum(1), b, h0),
         "Cumulative SUM of a: A_t is the PRODUCT a_1 * ... * a_t (torch.cumprod), since the gates multiply."),
        (lambda: torch.cumsum(a, 1) * (h0.unsqueeze(1) + torch.cumsum(b / torch.cumsum(a, 1), dim=1)),
         "Cumulative SUM of a: A_t is the PRODUCT a_1 * ... * a_t (torch.cumprod), since the gates multiply."),
        (lambda: linear_recurrence_loop(a.flip(1), b.flip(1), h0).flip(1),
         "Your states run backwards in time: cumulate from step 1 to step T (dim=1, no flip)."),
    ]


@exact_float32
@keeps_random_state
def check_linear_scan(linear_scan: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``linear_scan(a, b, h0) -> h``: a, b (batch, time, hidden), h0 (batch, hidden);
    h (batch, time, hidden) with h[:, t] the state after step t + 1 of h_t = a_t * h_{t-1} + b_t,
    computed without a loop over time. The oracle is the loop; a in [0.5, 1), b and h0 of any sign."""
    device = resolve_device(device)
    for trial in range(3):
        case = _scan_case(seed * 10 + trial)
        a, b, h0 = case["a"], case["b"], case["h0"]
        given = [t.to(device, copy=True) for t in (a, b, h0)]
        got = result_on(call_student(linear_scan, *given, name="linear_scan"), device, "linear_scan(a, b, h0)")
        if not all(torch.equal(t.cpu(), o) for t, o in zip(given, (a, b, h0))):
            raise AssertionError("linear_scan changed one of its arguments in place: compute new tensors "
                                 "(torch.cumprod(a, dim=1), not a.cumprod_(1) or a *= ...).")
        expected = linear_recurrence_loop(a, b, h0)
        batch, steps, hidden = a.shape
        if tuple(got.shape) != tuple(expected.shape):
            hint = {(batch, steps + 1, hidden): "You return h_0 too: return only h_1 ... h_T (drop h_0).",
                    (batch, hidden): "Return every state (batch, time, hidden), not only the last one."}
            raise AssertionError(f"linear_scan(a, b, h0) has shape {tuple(got.shape)}, expected "
                                 f"{tuple(expected.shape)}. {hint.get(tuple(got.shape), '')}".strip())
        _no_bad_numbers(got, "linear_scan")
        if is_close(got, expected):
            continue
        hint = first_matching_mistake(got, _scan_mistakes(a, b, h0))
        raise AssertionError(f"linear_scan returned wrong states ({steps} steps). " + (hint or (
            "Unrolled, h_t = A_t * (h_0 + sum_{k<=t} b_k / A_k) with A_t = a_1 * ... * a_t: "
            "A = torch.cumprod(a, dim=1), then one torch.cumsum over dim=1.")))
    long = _scan_case(seed + 1000, steps=LONG, low=0.995)
    got, count = _count_operations(linear_scan, *(t.to(device) for t in long.values()), name="linear_scan")
    _refuse_loops(count, "linear_scan")
    if not is_close(result_on(got, device, "linear_scan(a, b, h0)"), linear_recurrence_loop(*long.values())):
        raise AssertionError(f"linear_scan is right on short sequences but not on one of {LONG:,} steps: does it "
                             "depend on the length (a fixed number of steps, a slice)?")
    success(f"linear_scan: every state of h_t = a_t h_(t-1) + b_t at once (no loop over the {LONG:,} steps), "
            "equal to the loop.")


# ----------------------------------------------------------------------------------------------
# Exercise 2: the attention mask (padding and causal)
# ----------------------------------------------------------------------------------------------
def _expected_mask(lengths: Tensor, steps: int, causal: bool) -> Tensor:
    keys = padding_mask(lengths, steps).unsqueeze(1)  # (batch, 1, keys): real keys
    if not causal:
        return keys.expand(-1, steps, -1)
    return keys & torch.ones(steps, steps, dtype=torch.bool).tril()


def _mask_mistakes(lengths: Tensor, steps: int, causal: bool) -> list:
    real = padding_mask(lengths, steps)
    keys, queries = real.unsqueeze(1), real.unsqueeze(2)
    full = torch.ones(steps, steps, dtype=torch.bool)
    expected = _expected_mask(lengths, steps, causal)
    inverted = ("The mask is inverted: True must mark the pairs that MAY attend (the convention of "
                "F.scaled_dot_product_attention's boolean attn_mask). nn.MultiheadAttention's key_padding_mask "
                "uses the opposite, True = ignore: a trap worth remembering.")
    mistakes = [
        (lambda: ~expected, inverted),
        (lambda: queries.expand(-1, -1, steps) & (full.tril() if causal else full),
         "The padding is masked on the QUERY axis (rows): mask the padded KEYS, the last dimension "
         "(mask[b, i, j] is about key j), so that no position reads padding."),
        (lambda: (keys & queries) & (full.tril() if causal else full),
         "You also masked the padded queries (whole rows of False): a row with no True makes the softmax 0/0 = NaN. "
         "Mask the padded KEYS only; the outputs at padded positions are ignored later anyway."),
    ]
    if causal:
        mistakes += [
            (lambda: keys & full.triu(), "The causal part is the wrong triangle: position i may read keys j <= i "
             "(the past and itself: torch.tril), not the future (triu)."),
            (lambda: keys & full.tril(-1), "The diagonal is missing: a position may attend to itself (j <= i, "
             "torch.tril with diagonal=0)."),
            (lambda: keys.expand(-1, steps, -1).clone(), "causal=True but the future is visible: also require key "
             "j <= query i (torch.tril of a (steps, steps) matrix of True)."),
            (lambda: full.tril().expand(len(lengths), -1, -1).clone(), "The padded keys are not masked: combine the "
             "causal triangle with the padding mask of the keys (&)."),
        ]
    else:
        mistakes += [
            (lambda: keys & full.tril(), "causal=False: every position may read every real key, past and future "
             "(the Transformer encoder of the lesson reads both ways); no triangle."),
            (lambda: full.expand(len(lengths), -1, -1).clone(), "The padded keys are not masked: mask[b, i, j] must "
             "be False where j >= lengths[b]."),
        ]
    return mistakes


@exact_float32
@keeps_random_state
def check_attention_mask(attention_mask: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``attention_mask(lengths, steps, causal) -> mask``: lengths (batch,) on the device,
    mask (batch, steps, steps) boolean (or a shape that broadcasts to it, such as (batch, 1, steps))
    with mask[b, i, j] True when query i may attend to key j:
    j is a real step (j < lengths[b]) and, when ``causal``, j <= i. Then the mask is used in
    ``F.scaled_dot_product_attention`` and compared with ``nn.MultiheadAttention``."""
    device = resolve_device(device)
    rng = random.Random(seed)
    for causal in (False, True, True, False):
        batch, steps = rng.randint(3, 5), rng.randint(4, 8)
        lengths = random_lengths(rng, batch, steps)
        given = lengths.to(device)
        got = call_student(attention_mask, given, steps, causal, name="attention_mask")
        if not torch.equal(given.cpu(), lengths):
            raise AssertionError("attention_mask changed `lengths` in place: compute a new tensor.")
        got = result_on(got, device, f"attention_mask(lengths, {steps}, causal={causal})")
        if got.dtype != torch.bool:
            raise AssertionError(f"attention_mask should return a boolean tensor (True = may attend), got "
                                 f"{got.dtype}. Compare positions (<, <=) and combine with &.")
        expected = _expected_mask(lengths, steps, causal)
        if got.dim() == 3 and all(n in (1, m) for n, m in zip(got.shape, expected.shape)):
            got = got.expand_as(expected)  # (batch, 1, steps) broadcasts over the queries, as attention does
        if tuple(got.shape) != tuple(expected.shape):
            hint = ("Keep the batch: one (steps, steps) mask per sequence, since each has its own length."
                    if got.dim() == 2 else "")
            raise AssertionError(f"attention_mask(lengths, {steps}, causal={causal}) has shape "
                                 f"{tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}".strip())
        if torch.equal(got, expected):
            continue
        hint = first_matching_mistake(got, _mask_mistakes(lengths, steps, causal), same=torch.equal)
        raise AssertionError(f"attention_mask(lengths={lengths.tolist()}, steps={steps}, causal={causal}) is wrong "
                             f"at {(got != expected).sum().item()} of {expected.numel()} places. " + (hint or (
                                 "mask[b, i, j] = (j < lengths[b]) and (not causal or j <= i).")))
    _attend_with(attention_mask, seed, device)
    success("attention_mask: padded keys hidden, the future hidden when causal; with it, "
            "F.scaled_dot_product_attention equals nn.MultiheadAttention.")


def _attend_with(attention_mask: Callable, seed: int, device: torch.device) -> None:
    """The student's mask in ``scaled_dot_product_attention`` gives what nn.MultiheadAttention gives
    with its own masks (key_padding_mask True = ignore, attn_mask True = not allowed)."""
    gen = torch.Generator().manual_seed(seed)
    lengths, steps, d = torch.tensor([5, 2, 4]), 5, 6
    x = torch.randn(3, steps, d, generator=gen)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        attention = nn.MultiheadAttention(d, 1, batch_first=True, bias=False).eval()
    w_q, w_k, w_v = attention.in_proj_weight.detach().chunk(3)
    for causal in (False, True):
        mask = result_on(call_student(attention_mask, lengths.to(device), steps, causal, name="attention_mask"),
                         device, "attention_mask")
        ours = torch.nn.functional.scaled_dot_product_attention(x @ w_q.T, x @ w_k.T, x @ w_v.T, attn_mask=mask)
        ours = ours @ attention.out_proj.weight.detach().T
        blocked = torch.ones(steps, steps, dtype=torch.bool).triu(1) if causal else None
        with torch.no_grad():
            theirs, _ = attention(x, x, x, key_padding_mask=~padding_mask(lengths, steps), attn_mask=blocked,
                                  need_weights=False)
        if not is_close(ours, theirs):
            raise AssertionError("With your mask, scaled_dot_product_attention differs from nn.MultiheadAttention "
                                 f"(causal={causal}); check the mask's orientation: mask[b, i, j], query i, key j.")


# ----------------------------------------------------------------------------------------------
# Exercise 3: the minGRU, in parallel
# ----------------------------------------------------------------------------------------------
def _min_gru_case(seed: int, steps: int = 0, bias_z: float = 0.0) -> tuple[dict, nn.Linear, nn.Linear]:
    rng = random.Random(seed)
    gen = torch.Generator().manual_seed(seed)
    batch, features, hidden = rng.randint(2, 4), rng.randint(2, 5), rng.randint(3, 6)
    steps = steps or rng.randint(5, 20)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        linear_z, linear_h = nn.Linear(features, hidden).double(), nn.Linear(features, hidden).double()
    with torch.no_grad():
        linear_z.bias.add_(bias_z)  # a negative bias: gates near 0, products of a = 1 - z that stay away from 0
    case = {"x": torch.randn(batch, steps, features, generator=gen, dtype=torch.float64),
            "h0": torch.rand(batch, hidden, generator=gen, dtype=torch.float64) + 0.1}
    return case, linear_z, linear_h


def _min_gru_reference(x: Tensor, h0: Tensor, linear_z: nn.Module, linear_h: nn.Module,
                       candidate: Callable = g, swap: bool = False, gate: Callable = torch.sigmoid) -> Tensor:
    z = gate(linear_z(x))
    a, b = (z, (1 - z) * candidate(linear_h(x))) if swap else (1 - z, z * candidate(linear_h(x)))
    return linear_recurrence_loop(a, b, h0)


def _min_gru_mistakes(x: Tensor, h0: Tensor, linear_z: nn.Module, linear_h: nn.Module) -> list:
    def ref(**options: Any) -> Callable[[], Tensor]:
        return lambda: _min_gru_reference(x, h0, linear_z, linear_h, **options)

    right = _min_gru_reference(x, h0, linear_z, linear_h)
    return [
        (ref(swap=True), "z and 1 - z are swapped: h_t = (1 - z_t) * h_(t-1) + z_t * h~_t, so a = 1 - z multiplies "
         "the OLD state and z the candidate."),
        (ref(candidate=torch.tanh), "The candidate is tanh(...) as in the GRU: the minGRU's candidate is "
         "g(linear_h(x)) (course_utils.modern.g), with no h_(t-1) and no tanh inside."),
        (ref(candidate=lambda v: v), "The candidate is linear_h(x) without g: apply g (it keeps the candidate "
         "positive, as the lesson's log-space scan needs)."),
        (ref(gate=lambda v: v), "The update gate has no sigmoid: z = torch.sigmoid(linear_z(x)), a number "
         "between 0 and 1."),
        (lambda: _min_gru_reference(x, torch.zeros_like(h0), linear_z, linear_h), "h0 is ignored: the first step "
         "is h_1 = (1 - z_1) h_0 + z_1 h~_1."),
        (lambda: torch.cat([h0.unsqueeze(1), right[:, :-1]], dim=1), "Your output starts with h_0: return "
         "h_1 ... h_T, the state after each step."),
    ]


@exact_float32
@keeps_random_state
def check_min_gru(min_gru: Callable, seed: int = 0, device: Device = None) -> None:
    """Check ``min_gru(x, h0, linear_z, linear_h) -> h``: x (batch, time, features), h0 (batch,
    hidden) positive, linear_z and linear_h ``nn.Linear(features, hidden)``; z = sigmoid(linear_z(x)),
    h~ = g(linear_h(x)), h_t = (1 - z_t) h_(t-1) + z_t h~_t for every t, without a loop over time.
    The oracle is the loop (``course_utils.modern.MinGRU.loop`` computes the same)."""
    device = resolve_device(device)
    for trial in range(3):
        case, linear_z, linear_h = _min_gru_case(seed * 10 + trial)
        expected = _min_gru_reference(case["x"], case["h0"], linear_z, linear_h).detach()
        modules = [copy.deepcopy(layer).to(device) for layer in (linear_z, linear_h)]  # the student may change them
        got = call_student(min_gru, case["x"].to(device), case["h0"].to(device), *modules, name="min_gru")
        got = result_on(got, device, "min_gru(x, h0, linear_z, linear_h)")
        if tuple(got.shape) != tuple(expected.shape):
            raise AssertionError(f"min_gru returned {describe(got)}, expected shape {tuple(expected.shape)} "
                                 "(batch, time, hidden): every state h_1 ... h_T.")
        _no_bad_numbers(got, "min_gru")
        if is_close(got, expected):
            continue
        with torch.no_grad():
            hint = first_matching_mistake(got, _min_gru_mistakes(case["x"], case["h0"], linear_z, linear_h))
        raise AssertionError("min_gru returned wrong states. " + (hint or (
            "a = 1 - z and b = z * g(linear_h(x)) with z = torch.sigmoid(linear_z(x)), then your linear_scan(a, b, h0).")))
    case, linear_z, linear_h = _min_gru_case(seed + 1000, steps=LONG, bias_z=-4.0)
    modules = [copy.deepcopy(layer).to(device) for layer in (linear_z, linear_h)]  # the student may change them
    with torch.no_grad():
        got, count = _count_operations(min_gru, case["x"].to(device), case["h0"].to(device), *modules, name="min_gru")
        expected = _min_gru_reference(case["x"], case["h0"], linear_z, linear_h)
    _refuse_loops(count, "min_gru")
    if not is_close(result_on(got, device, "min_gru(x, h0, linear_z, linear_h)"), expected):
        raise AssertionError(f"min_gru is right on short sequences but not on one of {LONG:,} steps.")
    success(f"min_gru: the minGRU's states in parallel (no loop over the {LONG:,} steps), equal to the loop.")
