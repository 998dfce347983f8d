"""The checkers of lesson 10 (RNNs today; course_utils/checks/lesson10.py) accept right answers
written several ways and reject the usual wrong ones with a hint that names the mistake."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from checker_testing import devices_seen, keeps_random_state, not_implemented, rejects
from course_utils.checks import fresh_checks
from course_utils.checks.lesson10 import check_attention_mask, check_linear_scan, check_min_gru
from course_utils.modern import g, linear_recurrence_loop, log_g, log_space_scan

SEEDS = [0, 3]


# --- exercise 1: the parallel scan of a linear recurrence ---------------------------------------------
def scan_cumprod(a, b, h0):
    A = torch.cumprod(a, dim=1)
    return A * (h0.unsqueeze(1) + torch.cumsum(b / A, dim=1))


def scan_logs(a, b, h0):  # products as exponentials of cumulative sums of logarithms
    log_A = torch.cumsum(torch.log(a), dim=1)
    return torch.exp(log_A) * (h0.unsqueeze(1) + torch.cumsum(b * torch.exp(-log_A), dim=1))


def scan_doubling(a, b, h0):  # Hillis-Steele: combine pairs of affine maps, 1, 2, 4, ... steps apart
    b = torch.cat([a[:, :1] * h0.unsqueeze(1) + b[:, :1], b[:, 1:]], dim=1)
    step = 1
    while step < a.size(1):
        b = torch.cat([b[:, :step], a[:, step:] * b[:, :-step] + b[:, step:]], dim=1)
        a = torch.cat([a[:, :step], a[:, step:] * a[:, :-step]], dim=1)
        step *= 2
    return b


def scan_matrix(a, b, h0):  # h = L @ b + A h0, with L[t, k] = a_(k+1) ... a_t: a (time x time) product
    log_A = torch.cumsum(torch.log(a), dim=1)  # (batch, time, hidden)
    diff = log_A.unsqueeze(2) - log_A.unsqueeze(1)  # (batch, t, k, hidden)
    lower = torch.ones(a.size(1), a.size(1), dtype=torch.bool, device=a.device).tril()
    L = torch.where(lower[None, :, :, None], torch.exp(diff.clamp(max=0)), torch.zeros_like(diff))
    return torch.einsum("btkh,bkh->bth", L, b) + torch.exp(log_A) * h0.unsqueeze(1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", [scan_cumprod, scan_logs, scan_doubling, scan_matrix])
def test_linear_scan_accepts_right_answers(answer, seed, capsys):
    check_linear_scan(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def scan_loop(a, b, h0):
    return linear_recurrence_loop(a, b, h0)


@pytest.mark.parametrize("answer, fragment", [
    (scan_loop, "loops over time"),
    (lambda a, b, h0: torch.cumprod(a, 1) * (h0.unsqueeze(1) + torch.cumsum(
        b / torch.cat([torch.ones_like(a[:, :1]), torch.cumprod(a, 1)[:, :-1]], 1), 1)), "wrong cumulative product"),
    (lambda a, b, h0: torch.cat([torch.ones_like(a[:, :1]), torch.cumprod(a, 1)[:, :-1]], 1) * h0.unsqueeze(1)
     + torch.cumprod(a, 1) * torch.cumsum(b / torch.cumprod(a, 1), 1), "Off by one in h_0: h_1 = a_1 h_0"),
    (lambda a, b, h0: torch.cat([h0.unsqueeze(1), scan_cumprod(a, b, h0)[:, :-1]], 1), "starts with h_0"),
    (lambda a, b, h0: torch.cat([h0.unsqueeze(1), scan_cumprod(a, b, h0)], 1), "return only h_1"),
    (lambda a, b, h0: scan_cumprod(a, b, torch.zeros_like(h0)), "h_0 is ignored"),
    (lambda a, b, h0: torch.cumsum(a, 1) * (h0.unsqueeze(1) + torch.cumsum(b / torch.cumsum(a, 1), 1)), "PRODUCT"),
    (lambda a, b, h0: scan_cumprod(a, b, h0)[:, -1], "every state"),
    (lambda a, b, h0: scan_cumprod(a.flip(1), b.flip(1), h0).flip(1), "backwards in time"),
    (lambda a, b, h0: a.cumprod_(1) * (h0.unsqueeze(1) + torch.cumsum(b / a, 1)), "in place"),
    (lambda a, b, h0: scan_cumprod(a, b, h0)[:, :30] if a.size(1) > 30 else scan_cumprod(a, b, h0), "1,000 steps"),
    (not_implemented, "not implemented"),
])
def test_linear_scan_names_the_mistake(answer, fragment):
    rejects(check_linear_scan, answer, fragment)


def test_linear_scan_underflow_is_explained():
    def underflowing(a, b, h0):
        A = torch.cumprod(a ** 400, dim=1)  # products of tiny numbers: 0, then b / 0 = inf
        return A * (h0.unsqueeze(1) + torch.cumsum(b / A, dim=1))
    rejects(check_linear_scan, underflowing, "inf or NaN", "underflows")


# --- exercise 2: the attention mask -----------------------------------------------------------------------
def mask_broadcast(lengths, steps, causal):
    positions = torch.arange(steps, device=lengths.device)
    mask = positions[None, None, :] < lengths[:, None, None]
    if causal:
        mask = mask & (positions[None, :, None] >= positions[None, None, :])
    return mask


def mask_tril(lengths, steps, causal):
    keys = torch.arange(steps, device=lengths.device).expand(len(lengths), steps) < lengths.unsqueeze(1)
    mask = keys.unsqueeze(1).repeat(1, steps, 1)
    if causal:
        mask = mask & torch.tril(torch.ones(steps, steps, dtype=torch.bool, device=lengths.device))
    return mask


def mask_where(lengths, steps, causal):
    i = torch.arange(steps, device=lengths.device).view(1, steps, 1)
    j = torch.arange(steps, device=lengths.device).view(1, 1, steps)
    allowed = torch.where(j < lengths.view(-1, 1, 1), True, False)
    return allowed & (j <= i) if causal else allowed.expand(-1, steps, -1)


def mask_float_then_bool(lengths, steps, causal):  # an additive -inf mask turned into booleans
    additive = torch.zeros(len(lengths), steps, steps, device=lengths.device)
    additive = additive.masked_fill(torch.arange(steps, device=lengths.device) >= lengths[:, None, None], float("-inf"))
    if causal:
        additive = additive + torch.full((steps, steps), float("-inf"), device=lengths.device).triu(1)
    return additive == 0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", [mask_broadcast, mask_tril, mask_where, mask_float_then_bool])
def test_attention_mask_accepts_right_answers(answer, seed, capsys):
    check_attention_mask(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def keys_and(causal_part):
    def answer(lengths, steps, causal):
        keys = mask_broadcast(lengths, steps, False)
        return keys & causal_part(steps) if causal else keys
    return answer


@pytest.mark.parametrize("answer, fragment", [
    (lambda l, s, c: ~mask_broadcast(l, s, c), "inverted"),
    (keys_and(lambda s: torch.ones(s, s, dtype=torch.bool).triu()), "wrong triangle"),
    (keys_and(lambda s: torch.ones(s, s, dtype=torch.bool).tril(-1)), "diagonal is missing"),
    (lambda l, s, c: mask_broadcast(l, s, False), "the future is visible"),
    (lambda l, s, c: mask_broadcast(l, s, True), "causal=False"),
    (lambda l, s, c: mask_broadcast(l, s, c).transpose(1, 2), "QUERY axis"),
    (lambda l, s, c: mask_broadcast(l, s, c) & mask_broadcast(l, s, c).transpose(1, 2), "padded queries"),
    (lambda l, s, c: torch.ones(len(l), s, s, dtype=torch.bool).tril() if c else torch.ones(len(l), s, s, dtype=torch.bool),
     "padded keys are not masked"),
    (lambda l, s, c: mask_broadcast(l, s, c).float(), "boolean"),
    (lambda l, s, c: mask_broadcast(l, s, c)[0], "Keep the batch"),
    (not_implemented, "not implemented"),
])
def test_attention_mask_names_the_mistake(answer, fragment):
    rejects(check_attention_mask, answer, fragment)


# --- exercise 3: the minGRU in parallel ----------------------------------------------------------------------
def min_gru_cumprod(x, h0, linear_z, linear_h):
    z = torch.sigmoid(linear_z(x))
    return scan_cumprod(1 - z, z * g(linear_h(x)), h0)


def min_gru_log_space(x, h0, linear_z, linear_h):  # Heinsen's scan, as course_utils.modern.MinGRU.scan
    k = linear_z(x)
    return torch.exp(log_space_scan(-F.softplus(k), -F.softplus(-k) + log_g(linear_h(x)), torch.log(h0)))


def min_gru_doubling(x, h0, linear_z, linear_h):
    z = linear_z(x).sigmoid()
    return scan_doubling(1.0 - z, z * g(linear_h(x)), h0)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("answer", [min_gru_cumprod, min_gru_log_space, min_gru_doubling])
def test_min_gru_accepts_right_answers(answer, seed, capsys):
    check_min_gru(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def min_gru_variant(swap=False, candidate=g, gate=torch.sigmoid, zero_h0=False):
    def answer(x, h0, linear_z, linear_h):
        z = gate(linear_z(x))
        a, b = (z, (1 - z) * candidate(linear_h(x))) if swap else (1 - z, z * candidate(linear_h(x)))
        return scan_cumprod(a, b, torch.zeros_like(h0) if zero_h0 else h0)
    return answer


def min_gru_loop(x, h0, linear_z, linear_h):
    z = torch.sigmoid(linear_z(x))
    return linear_recurrence_loop(1 - z, z * g(linear_h(x)), h0)


@pytest.mark.parametrize("answer, fragment", [
    (min_gru_variant(swap=True), "swapped"),
    (min_gru_variant(candidate=torch.tanh), "as in the GRU"),
    (min_gru_variant(candidate=lambda v: v), "without g"),
    (min_gru_variant(gate=lambda v: v), "no sigmoid"),
    (min_gru_variant(zero_h0=True), "h0 is ignored"),
    (lambda x, h0, lz, lh: torch.cat([h0.unsqueeze(1), min_gru_cumprod(x, h0, lz, lh)[:, :-1]], 1), "starts with h_0"),
    (lambda x, h0, lz, lh: min_gru_cumprod(x, h0, lz, lh)[:, -1], "(batch, time, hidden)"),
    (min_gru_loop, "loops over time"),
    (not_implemented, "not implemented"),
])
def test_min_gru_names_the_mistake(answer, fragment):
    rejects(check_min_gru, answer, fragment)


# --- devices, random state, fresh copies ------------------------------------------------------------------
def test_checkers_give_their_tensors_on_the_requested_device():
    assert devices_seen(check_linear_scan, lambda a, b, h0: (a, b, h0)) == {"meta"}
    assert devices_seen(check_attention_mask, lambda lengths, steps, causal: (lengths,)) == {"meta"}
    assert devices_seen(check_min_gru, lambda x, h0, lz, lh: (x, h0, lz.weight, lh.weight)) == {"meta"}


def test_checkers_keep_the_students_random_state():
    assert keeps_random_state(lambda: check_linear_scan(scan_cumprod))
    assert keeps_random_state(lambda: check_attention_mask(mask_tril))
    assert keeps_random_state(lambda: check_min_gru(min_gru_cumprod))


def test_fresh_checks_has_the_lesson_10_checkers(capsys):
    checks = fresh_checks(10)
    checks.check_linear_scan(scan_doubling)
    checks.check_attention_mask(mask_where, seed=5)
    checks.check_min_gru(min_gru_log_space, seed=5)
    assert capsys.readouterr().out.count("✅") == 3
