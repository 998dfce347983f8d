"""Tests of the lesson 7 checkers: right answers (several ways) pass, typical mistakes are named."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from checker_testing import devices_seen, not_implemented, rejects
from course_utils.checks import fresh_checks
from course_utils.checks.lesson07 import (check_attention_context, check_decoder_step, check_greedy_decode,
                                          check_masked_attention_weights)
from course_utils.seq2seq import EOS_ID, PAD_ID, SOS_ID


# --- exercise 1: masked attention weights ---------------------------------------------------
def weights_fill(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)


def weights_where(scores, mask):
    return F.softmax(torch.where(mask, scores, torch.tensor(float("-inf"))), dim=-1)


def weights_renormalized(scores, mask):  # exp, zero the padding, divide by the sum: the same numbers
    e = torch.exp(scores - scores.max(dim=1, keepdim=True).values) * mask
    return e / e.sum(dim=1, keepdim=True)


def weights_large_negative(scores, mask):
    return torch.softmax(scores.masked_fill(~mask, -1e9), dim=1)


@pytest.mark.parametrize("answer", [weights_fill, weights_where, weights_renormalized, weights_large_negative])
def test_weights_right_answers_pass(answer):
    check_masked_attention_weights(answer)
    check_masked_attention_weights(answer, seed=3)


@pytest.mark.parametrize("answer, fragment", [
    (lambda s, m: torch.softmax(s.masked_fill(~m, float("-inf")), dim=0), "wrong dimension"),
    (lambda s, m: torch.softmax(s, dim=1) * m, "after the softmax"),
    (lambda s, m: torch.softmax(s, dim=1), "not masked"),
    (lambda s, m: torch.softmax(s.masked_fill(~m, 0.0), dim=1), "exp(0) = 1"),
    (lambda s, m: torch.softmax(s.masked_fill(m, float("-inf")), dim=1), "inverted"),
    (lambda s, m: torch.softmax(s.masked_fill(m, -1e9), dim=1), "inverted"),
    (lambda s, m: torch.softmax(s * m, dim=1), "scores * mask"),
    (lambda s, m: torch.softmax(s.masked_fill(~m, float("-inf")), dim=1).sum(1), "shape"),
    (lambda s, m: s.masked_fill_(~m, float("-inf")).softmax(1), "in place"),
    (lambda s, m: torch.log_softmax(s.masked_fill(~m, float("-inf")), dim=1), "log_softmax"),
    (lambda s, m: F.log_softmax(s.masked_fill(~m, -1e9), dim=-1), "log_softmax"),
    (not_implemented, "not implemented"),
])
def test_weights_mistakes_are_named(answer, fragment):
    rejects(check_masked_attention_weights, answer, fragment)


# --- exercise 2: the context vector ------------------------------------------------------------
def context_loop(query, keys, values, mask):
    d = query.size(-1)
    scores = (keys @ query.unsqueeze(2)).squeeze(2) / math.sqrt(d)
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    return (weights.unsqueeze(2) * values).sum(dim=1), weights


def context_einsum(query, keys, values, mask):
    scores = torch.einsum("bd,bsd->bs", query, keys) / query.shape[-1] ** 0.5
    weights = F.softmax(scores.masked_fill(~mask, -1e9), dim=-1)
    return torch.einsum("bs,bsv->bv", weights, values), weights


def context_sdpa(query, keys, values, mask):
    context = F.scaled_dot_product_attention(query.unsqueeze(1), keys, values, attn_mask=mask.unsqueeze(1)).squeeze(1)
    scores = (keys @ query.unsqueeze(2)).squeeze(2) / math.sqrt(query.size(-1))
    return context, torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)


@pytest.mark.parametrize("answer", [context_loop, context_einsum, context_sdpa])
def test_context_right_answers_pass(answer):
    check_attention_context(answer)
    check_attention_context(answer, seed=2)


def context_variant(scale=lambda d: math.sqrt(d), mask_mode="before", over="values", dim=1):
    def answer(query, keys, values, mask):
        scores = (keys @ query.unsqueeze(2)).squeeze(2) / scale(query.size(-1))
        if mask_mode == "before":
            weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=dim)
        elif mask_mode == "after":
            weights = torch.softmax(scores, dim=dim) * mask
        else:
            weights = torch.softmax(scores, dim=dim)
        source = values if over == "values" else keys
        return (weights.unsqueeze(2) * source).sum(dim=1), weights
    return answer


@pytest.mark.parametrize("answer, fragment", [
    (context_variant(scale=lambda d: 1.0), "not scaled"),
    (context_variant(scale=lambda d: d), "divided by d"),
    (context_variant(scale=lambda d: 1 / math.sqrt(d)), "multiplied by sqrt(d)"),
    (context_variant(mask_mode="none"), "not masked"),
    (context_variant(mask_mode="after"), "after the softmax"),
    (context_variant(dim=0), "over the batch"),
    (context_variant(over="keys"), "VALUES"),
    (lambda q, k, v, m: context_loop(q, k, v, m)[0], "pair"),
    (not_implemented, "not implemented"),
])
def test_context_mistakes_are_named(answer, fragment):
    rejects(check_attention_context, answer, fragment)


# --- exercise 3: one decoder step with attention ---------------------------------------------------
def step_plain(previous, state, encoder_states, mask, embedding, cell, combine, out):
    state = cell(embedding(previous), state)
    scores = (encoder_states @ state.unsqueeze(2)).squeeze(2) / math.sqrt(state.size(1))
    weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)
    context = (weights.unsqueeze(2) * encoder_states).sum(1)
    return out(torch.tanh(combine(torch.cat([state, context], dim=1)))), state, weights


def step_bmm(previous, state, encoder_states, mask, embedding, cell, combine, out):
    new_state = cell(embedding(previous), state)
    scores = torch.bmm(encoder_states, new_state.unsqueeze(2)).squeeze(2) / new_state.shape[-1] ** 0.5
    weights = F.softmax(scores.masked_fill(mask.logical_not(), -1e9), dim=-1)
    context = torch.bmm(weights.unsqueeze(1), encoder_states).squeeze(1)
    hidden = torch.tanh(combine(torch.cat((new_state, context), -1)))
    return out(hidden), new_state, weights


def step_course(previous, state, encoder_states, mask, embedding, cell, combine, out):
    from course_utils.attention import dot_product_attention
    state = cell(embedding(previous), state)
    context, weights = dot_product_attention(state, encoder_states, encoder_states, mask)
    return out(torch.tanh(combine(torch.cat([state, context], 1)))), state, weights


@pytest.mark.parametrize("answer", [step_plain, step_bmm, step_course])
def test_decoder_step_right_answers_pass(answer):
    check_decoder_step(answer)
    check_decoder_step(answer, seed=4)


def step_variant(query_old=False, swap=False, tanh=True, scale=True, mask_on=True, return_old=False):
    def answer(previous, state, encoder_states, mask, embedding, cell, combine, out):
        new = cell(embedding(previous), state)
        query = state if query_old else new
        scores = (encoder_states @ query.unsqueeze(2)).squeeze(2)
        if scale:
            scores = scores / math.sqrt(query.size(1))
        if mask_on:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        context = (weights.unsqueeze(2) * encoder_states).sum(1)
        hidden = combine(torch.cat([context, new] if swap else [new, context], dim=1))
        return out(torch.tanh(hidden) if tanh else hidden), (state if return_old else new), weights
    return answer


@pytest.mark.parametrize("answer, fragment", [
    (step_variant(query_old=True), "OLD state"),
    (step_variant(swap=True), "the state first"),
    (step_variant(tanh=False), "tanh"),
    (step_variant(scale=False), "not scaled"),
    (step_variant(mask_on=False), "not masked"),
    (step_variant(return_old=True), "new_state"),
    (lambda *args: step_plain(*args)[:2], "(logits, new_state, weights)"),
    (not_implemented, "not implemented"),
])
def test_decoder_step_mistakes_are_named(answer, fragment):
    rejects(check_decoder_step, answer, fragment)


def test_the_log_softmax_hint_does_not_blame_the_padding():
    message = rejects(check_masked_attention_weights, lambda s, m: torch.log_softmax(s.masked_fill(~m, float("-inf")), 1))
    assert "exactly 0" not in message and "probabilities" in message


def test_hints_do_not_print_the_answer_line():
    """A hint names the mistake; it does not hand out the line to copy."""
    answers = [lambda s, m: torch.softmax(s, dim=1) * m, lambda s, m: torch.softmax(s * 0, dim=1)]
    for answer in answers:
        message = rejects(check_masked_attention_weights, answer)
        assert "masked_fill(~mask" not in message and "float('-inf')" not in message, message
    weights_only = lambda q, k, v, m: (torch.zeros(q.size(0), v.size(-1)), context_loop(q, k, v, m)[1])  # noqa: E731
    message = rejects(check_attention_context, weights_only, "weights are right")
    assert "unsqueeze" not in message and ".sum(" not in message
    message = rejects(check_decoder_step, lambda p, s, e, m, emb, cell, comb, out: (
        out(s), cell(emb(p), s), torch.softmax(m.float(), 1)))
    assert "cat[" not in message and "cell(embedding" not in message


# --- exercise 4: greedy decoding ---------------------------------------------------------------
def greedy_list(model, inputs, lengths, steps):
    states, mask, state = model.encode(inputs, lengths)
    previous = torch.full((inputs.size(0),), SOS_ID, dtype=torch.long, device=inputs.device)
    ids = []
    for _ in range(steps):
        logits, state, _ = model.decode_step(previous, state, states, mask)
        previous = logits.argmax(dim=1)
        ids.append(previous)
    return torch.stack(ids, dim=1)


def greedy_preallocated(model, inputs, lengths, steps):
    states, mask, state = model.encode(inputs, lengths)
    ids = torch.zeros(inputs.size(0), steps, dtype=torch.long, device=inputs.device)
    token = torch.ones(inputs.size(0), dtype=torch.long, device=inputs.device) * SOS_ID
    for t in range(steps):
        logits, state, weights = model.decode_step(token, state, states, mask)
        token = torch.max(logits, dim=-1).indices
        ids[:, t] = token
    return ids


def greedy_cat_with_keys(model, inputs, lengths, steps):
    encoded, mask, hidden = model.encode(inputs, lengths)
    keys = model.attention_keys(encoded)
    out = torch.full((len(inputs), 1), SOS_ID, device=inputs.device)
    for _ in range(steps):
        logits, hidden, _ = model.decode_step(out[:, -1], hidden, encoded, mask, keys)
        out = torch.cat([out, logits.argmax(1, keepdim=True)], dim=1)
    return out[:, 1:]


@pytest.mark.parametrize("answer", [greedy_list, greedy_preallocated, greedy_cat_with_keys])
def test_greedy_right_answers_pass(answer):
    check_greedy_decode(answer)
    check_greedy_decode(answer, seed=3)


def greedy_variant(first=SOS_ID, feed_back=True, carry=True, dim=1, zeros=False, mask_on=True, shift=False,
                   sample=False):
    def answer(model, inputs, lengths, steps):
        states, mask, initial = model.encode(inputs, lengths)
        mask = mask if mask_on else torch.ones_like(mask)
        state = torch.zeros_like(initial) if zeros else initial
        previous = torch.full((inputs.size(0),), first, dtype=torch.long)
        ids = []
        for _ in range(steps):
            logits, new_state, _ = model.decode_step(previous, state, states, mask)
            if carry:
                state = new_state
            if sample:
                prediction = torch.multinomial(torch.softmax(logits / 5, dim=1), 1).squeeze(1)
            else:
                prediction = logits.argmax(dim=dim)
            ids.append(previous if shift else prediction)
            if feed_back:
                previous = prediction
        return torch.stack(ids, dim=1)
    return answer


@pytest.mark.parametrize("answer, fragment", [
    (greedy_variant(feed_back=False), "feed each step's prediction"),
    (greedy_variant(carry=False), "carry on with the state"),
    (greedy_variant(first=PAD_ID), "not <pad>"),
    (greedy_variant(first=EOS_ID), "not <eos>"),
    (greedy_variant(zeros=True), "starts from zeros"),
    (greedy_variant(mask_on=False), "mask"),
    (greedy_variant(shift=True), "record what each step predicts"),
    (greedy_variant(sample=True), "does not sample"),
    (lambda model, inputs, lengths, steps: greedy_list(model, inputs, lengths, steps).T, "dim=1"),
    (lambda model, inputs, lengths, steps: model.greedy(inputs, lengths, steps)[0], "write the loop"),
    (lambda model, inputs, lengths, steps: greedy_list(model, inputs, lengths, steps).float(), "whole numbers"),
    (lambda model, inputs, lengths, steps: (greedy_list(model, inputs, lengths, steps), None), "not a pair"),
    (not_implemented, "not implemented"),
])
def test_greedy_mistakes_are_named(answer, fragment):
    rejects(check_greedy_decode, answer, fragment)


def test_greedy_cases_tell_the_mistakes_apart():
    """On every case the checker draws, each mistake gives ids of its own, so it is caught and named."""
    from course_utils.checks.lesson07 import _greedy_case, _greedy_mistakes
    for seed in range(0, 100, 10):
        for trial in range(3):
            model, inputs, lengths, steps = _greedy_case(seed + trial)
            results = [model.greedy(inputs, lengths, steps)[0]]
            results += [compute() for compute, _ in _greedy_mistakes(model, inputs, lengths, steps)]
            assert all(not torch.equal(a, b) for i, a in enumerate(results) for b in results[:i]), seed + trial


def test_checkers_leave_the_random_state_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    check_masked_attention_weights(weights_fill)
    check_attention_context(context_loop)
    check_decoder_step(step_plain)
    check_greedy_decode(greedy_list)
    assert torch.equal(torch.rand(1), before)


def test_fresh_checks_finds_lesson_7():
    checks = fresh_checks(7)
    checks.check_masked_attention_weights(weights_fill)
    checks.check_attention_context(context_einsum)
    checks.check_decoder_step(step_bmm)
    checks.check_greedy_decode(greedy_preallocated)


# --- devices ---------------------------------------------------------------------------------
def test_checkers_give_the_student_tensors_on_the_requested_device():
    assert devices_seen(check_masked_attention_weights, lambda *args: args) == {"meta"}
    assert devices_seen(check_attention_context, lambda *args: args) == {"meta"}
    decoder_tensors = lambda previous, state, states, mask, embedding, cell, combine, out: [  # noqa: E731
        previous, state, states, mask, *embedding.parameters(), *cell.parameters(), *combine.parameters(),
        *out.parameters()]
    assert devices_seen(check_decoder_step, decoder_tensors) == {"meta"}
    assert devices_seen(check_greedy_decode, lambda model, inputs, lengths, steps: [
        inputs, lengths, *model.parameters()]) == {"meta"}


def test_a_result_on_another_device_is_named():
    rejects(lambda fn: check_masked_attention_weights(fn, device="meta"),
            lambda scores, mask: torch.zeros(scores.shape), "is on the cpu device, but its inputs were on meta")
