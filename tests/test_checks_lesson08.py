"""The checkers of lesson 8 (language models; course_utils/checks/lesson08.py) accept right answers
written in several ways and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
The device tests run the checkers with ``device="meta"``: the student's function must receive its
tensors (or model) there, so an answer that keeps to its inputs' device works on a GPU.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from checker_testing import devices_seen, keeps_random_state, not_implemented, rejects
from course_utils.checks import (
    check_perplexity_from_loss,
    check_perplexity_of_batches,
    check_sample_next_word,
    check_shift_for_next_word,
    check_temperature_probabilities,
    check_tbptt_step,
    fresh_checks,
)
from course_utils.checks.lesson08 import TinyLM

SEEDS = [0, 1, 5]  # 5: the hidden tests' seed


# ----------------------------------------------------------------------------------------------
# Exercise 1: shift_for_next_word
# ----------------------------------------------------------------------------------------------
def shift(batch):
    return batch[:, :-1], batch[:, 1:]


def shift_narrow(batch):  # narrow and contiguous copies
    steps = batch.size(1) - 1
    return batch.narrow(1, 0, steps).contiguous(), batch.narrow(1, 1, steps).clone()


def shift_rows(batch):  # row by row, as a list of lists would be handled
    inputs = torch.stack([row[:-1] for row in batch])
    targets = torch.stack([row[1:] for row in batch])
    return inputs, targets


@pytest.mark.parametrize("answer", [shift, shift_narrow, shift_rows, lambda b: [b[..., :-1], b[..., 1:]],
                                    lambda b: (b[:, :-1], b.roll(-1, dims=1)[:, :-1])])
def test_shift_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_shift_for_next_word(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("answer, fragment", [
    (lambda b: (b[:, :-1], b[:, :-1]), "targets equal the inputs"),
    (lambda b: (b[:, 1:], b[:, 1:]), "targets equal the inputs"),
    (lambda b: (b, b), "targets equal the inputs"),
    (lambda b: (b[:, 1:], b[:, :-1]), "wrong way"),
    (lambda b: (b[:-1], b[1:]), "along dim 0, the batch"),
    (lambda b: (b.t()[:-1], b.t()[1:]), "time-major"),
    (lambda b: (b[:-1, :-1], b[:-1, 1:]), "A sequence is missing"),
    (lambda b: (b[1:, :-1], b[1:, 1:]), "A sequence is missing"),
    (lambda b: (b[:, :-1], b[:, 1:-1]), "one step short"),
    (lambda b: (b[:, :-1].float(), b[:, 1:].float()), "int64"),
    (lambda b: b[:, 1:], "pair (inputs, targets)"),
    (not_implemented, "not implemented"),
])
def test_shift_mistakes_are_named(answer, fragment):
    rejects(check_shift_for_next_word, answer, fragment)


def test_shift_refuses_changing_the_batch_in_place():
    def in_place(batch):
        batch[:, 0] = 0
        return batch[:, :-1], batch[:, 1:]
    rejects(check_shift_for_next_word, in_place, "in place")


# ----------------------------------------------------------------------------------------------
# Exercise 2: perplexity
# ----------------------------------------------------------------------------------------------
def perplexity(total, n):
    return math.exp(total / n)


def perplexity_torch(total, n):  # tensors all the way, float64, then .item()
    return torch.exp(torch.as_tensor(total, dtype=torch.float64) / n).item()


def perplexity_numpy(total, n):
    return float(np.exp(float(total) / float(n)))


@pytest.mark.parametrize("answer", [perplexity, perplexity_torch, perplexity_numpy,
                                    lambda total, n: math.e ** (float(total) / int(n))])
def test_perplexity_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_perplexity_from_loss(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("answer, fragment", [
    (lambda total, n: math.exp(total), "exponential of the SUM"),
    (lambda total, n: torch.exp(torch.as_tensor(total, dtype=torch.float64)).item(), "exponential of the SUM"),
    (lambda total, n: 2 ** (total / n), "bits"),
    (lambda total, n: float(total / n), "mean loss per word"),
    (lambda total, n: math.exp(total) / n, "BEFORE the exponential"),
    (lambda total, n: math.exp(n / total) if total else 1.0, "upside down"),
    (lambda total, n: torch.exp(torch.as_tensor(total) / n), "returned a tensor"),
    (lambda total, n: (torch.as_tensor(total, dtype=torch.float64).requires_grad_() / n).exp(), "holds a graph"),
    (lambda total, n: str(math.exp(total / n)), "should return a float"),
    (not_implemented, "not implemented"),
])
def test_perplexity_mistakes_are_named(answer, fragment):
    rejects(check_perplexity_from_loss, answer, fragment)


def perplexity_of_batches(losses, words):
    return math.exp(sum(float(l) * w for l, w in zip(losses, words)) / sum(words))


def perplexity_of_batches_reusing(losses, words):  # the notebook's way: a total, then perplexity_from_loss
    total = sum(l * w for l, w in zip(losses, words))
    return perplexity(total, sum(words))


def perplexity_of_batches_tensor(losses, words):  # a weighted mean with tensors
    losses = torch.tensor([float(l) for l in losses], dtype=torch.float64)
    words = torch.tensor(words, dtype=torch.float64)
    return float(torch.exp((losses * words).sum() / words.sum()))


@pytest.mark.parametrize("answer", [perplexity_of_batches, perplexity_of_batches_reusing, perplexity_of_batches_tensor])
def test_perplexity_of_batches_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_perplexity_of_batches(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def total_by_batches(losses, words):  # math.exp overflows: the exponent is the total over the number of batches
    total = sum(float(l) * w for l, w in zip(losses, words))
    return math.exp(total / len(losses))


def torch_total_by_batches(losses, words):  # the same with torch: inf instead of an OverflowError
    total = sum(float(l) * w for l, w in zip(losses, words))
    return torch.exp(torch.tensor(total / len(losses))).item()


def exp_of_the_total(losses, words):
    return math.exp(sum(l * w for l, w in zip(losses, words)))


@pytest.mark.parametrize("answer, fragment", [
    (lambda ls, ws: math.exp(sum(float(l) for l in ls) / len(ls)), "divides by the number of batches"),
    (total_by_batches, "OverflowError"),
    (total_by_batches, "not by the number of batches"),
    (torch_total_by_batches, "divides by the number of batches"),
    (lambda ls, ws: math.exp(sum(float(l) for l in ls) / sum(ws)), "MEANS per word"),
    (lambda ls, ws: sum(math.exp(l) for l in ls) / len(ls), "perplexities"),
    (lambda ls, ws: sum(math.exp(l) * w for l, w in zip(ls, ws)) / sum(ws), "perplexities"),
    (lambda ls, ws: sum(float(l) * w for l, w in zip(ls, ws)) / sum(ws), "mean loss per word"),
    (lambda ls, ws: 2 ** (sum(float(l) * w for l, w in zip(ls, ws)) / sum(ws)), "bits"),
    (exp_of_the_total, "exponent must be the mean loss per WORD"),
    (not_implemented, "not implemented"),
])
def test_perplexity_of_batches_mistakes_are_named(answer, fragment):
    rejects(check_perplexity_of_batches, answer, fragment)


# ----------------------------------------------------------------------------------------------
# Exercise 3: tbptt_step
# ----------------------------------------------------------------------------------------------
def tbptt_step(model, inputs, targets, state, optimizer):
    if state is not None:
        state = tuple(s.detach() for s in state)
    logits, state = model(inputs, state)
    loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item(), state


def tbptt_step_module_loss(model, inputs, targets, state, optimizer):
    # nn.CrossEntropyLoss with the classes in dim 1, model.zero_grad, a detached state returned
    optimizer.zero_grad()
    if state is not None:
        h, c = state
        state = (h.detach(), c.detach())
    logits, (h, c) = model(inputs, state)
    loss = nn.CrossEntropyLoss()(logits.transpose(1, 2), targets)
    model.zero_grad(set_to_none=False)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), (h.detach(), c.detach())


def tbptt_step_nll(model, inputs, targets, state, optimizer):  # log_softmax + nll_loss, a list state
    state = None if state is None else [s.detach().clone() for s in state]
    logits, new_state = model(inputs, state)
    log_probabilities = torch.log_softmax(logits, dim=-1)
    loss = F.nll_loss(log_probabilities.view(-1, log_probabilities.shape[-1]), targets.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach().item(), list(new_state)


@pytest.mark.parametrize("answer", [tbptt_step, tbptt_step_module_loss, tbptt_step_nll])
def test_tbptt_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_tbptt_step(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def tbptt_variant(detach="in", zero_grad="before", step=True, loss_as="item", returned="new", reduction="mean",
                  use_state=True, flatten=True, retain_graph=False, none_check=True, view=False):
    def answer(model, inputs, targets, state, optimizer):
        carried = state
        if detach == "in" and (state is not None or not none_check):
            state = tuple(s.detach() for s in state)
        logits, new_state = model(inputs, state if use_state else None)
        if view:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))
        elif flatten:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)
        else:
            loss = F.cross_entropy(logits, targets)
        if zero_grad == "before":
            optimizer.zero_grad()
        loss.backward(retain_graph=retain_graph)
        if zero_grad == "after":
            optimizer.zero_grad()
        if step:
            optimizer.step()
        if detach == "out":
            new_state = tuple(s.detach() for s in new_state)
        value = {"item": loss.item(), "tensor": loss, "detached tensor": loss.detach()}[loss_as]
        if returned == "old":
            return value, None if carried is None else tuple(s.detach() for s in carried)
        return value, new_state
    return answer


@pytest.mark.parametrize("answer, fragments", [
    (tbptt_variant(detach="none"), ["backward through the graph a second time", "Detach the state carried in"]),
    (tbptt_variant(detach="none", retain_graph=True), ["previous chunk", "Detach the state carried in"]),
    (tbptt_variant(detach="out"), ["gradient reached", "Detach the state carried in"]),
    (tbptt_variant(zero_grad="never"), ["zero_grad", "gradients of earlier chunks"]),
    (tbptt_variant(zero_grad="after"), ["weights did not change", "zero_grad() BEFORE"]),
    (tbptt_variant(step=False), ["weights did not change", "optimizer.step()"]),
    (tbptt_variant(returned="old"), ["GIVEN", "new state"]),
    (tbptt_variant(loss_as="tensor"), ["tensor that still holds the graph", "loss.item()"]),
    (tbptt_variant(loss_as="detached tensor"), ["as a tensor", "loss.item()"]),
    (tbptt_variant(reduction="sum"), ["SUM", "mean per word"]),
    (tbptt_variant(use_state=False), ["started from zeros", "model(inputs, state)"]),
    (tbptt_variant(flatten=False), ["classes in dim 1"]),
    (tbptt_variant(view=True), ["not contiguous", ".reshape(-1)"]),
    (tbptt_variant(none_check=False), ["None", "not None"]),
    (lambda *args: tbptt_step(*args)[0], ["pair (loss, new_state)"]),
    (not_implemented, ["not implemented"]),
])
def test_tbptt_mistakes_are_named(answer, fragments):
    rejects(check_tbptt_step, answer, *fragments)


def tbptt_step_clipped(clip="norm", zero_grad=True):
    """Held out in issue 20: lesson 8's own step, which clips the gradient between backward and step."""
    def answer(model, inputs, targets, state, optimizer):
        if state is not None:
            state = tuple(s.detach() for s in state)
        logits, state = model(inputs, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if clip == "norm":
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.25)
        else:
            torch.nn.utils.clip_grad_value_(model.parameters(), 0.01)
        optimizer.step()
        return loss.item(), state
    return answer


@pytest.mark.parametrize("answer, fragments", [
    (tbptt_step_clipped("norm"), ["clips the gradient", "clip_grad_norm_", "without clipping"]),
    (tbptt_step_clipped("value"), ["clips the gradient", "clip_grad_value_", "without clipping"]),
    (tbptt_step_clipped("norm", zero_grad=False), ["zero_grad", "gradients of earlier chunks"]),
])
def test_tbptt_gradient_clipping_is_named_not_mistaken_for_zero_grad(answer, fragments):
    message = rejects(check_tbptt_step, answer, *fragments)
    if "clips" in message:
        assert "zero_grad() before" not in message


def test_stale_state_is_named_as_the_given_state():
    """Also once a state is carried (not only the None of the stream's start)."""
    def stale_after_the_start(model, inputs, targets, state, optimizer):
        loss, new_state = tbptt_step(model, inputs, targets, state, optimizer)
        return loss, new_state if state is None else tuple(s.detach() for s in state)
    rejects(check_tbptt_step, stale_after_the_start, "state you were GIVEN", "chunk 2")


def test_tiny_lm_predicts_every_step():
    model = TinyLM(vocab_size=11, embedding_dim=3, hidden_size=4)
    logits, (h, c) = model(torch.randint(11, (2, 5)))
    assert logits.shape == (2, 5, 11) and h.shape == c.shape == (1, 2, 4)


# ----------------------------------------------------------------------------------------------
# Exercise 4: temperature_probabilities
# ----------------------------------------------------------------------------------------------
def temperature_probabilities(logits, temperature):
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return torch.softmax(logits / temperature, dim=-1)


def temperature_power(logits, temperature):  # softmax(l) ** (1 / T), renormalised: the same distribution
    if not temperature > 0:
        raise ValueError("temperature <= 0")
    p = F.softmax(logits, dim=-1) ** (1.0 / temperature)
    return p / p.sum(dim=-1, keepdim=True)


def temperature_by_hand(logits, temperature):
    if temperature <= 0:
        raise ValueError("temperature must be positive")
    scaled = logits / temperature
    e = torch.exp(scaled - scaled.max(dim=-1, keepdim=True).values)
    return e / e.sum(dim=-1, keepdim=True)


@pytest.mark.parametrize("answer", [temperature_probabilities, temperature_power, temperature_by_hand])
def test_temperature_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_temperature_probabilities(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def temperature_variant(formula, validate=True):
    def answer(logits, temperature):
        if validate and temperature <= 0:
            raise ValueError("temperature must be > 0")
        return formula(logits, temperature)
    return answer


def after_softmax_renormalised(logits, t):
    p = torch.softmax(logits, dim=-1) / t
    return p / p.sum(dim=-1, keepdim=True)


def divides_in_place(logits, t):
    if t <= 0:
        raise ValueError("T")
    logits /= t
    return torch.softmax(logits, dim=-1)


@pytest.mark.parametrize("answer, fragments", [
    (temperature_variant(after_softmax_renormalised), ["no effect", "sharpen"]),
    (temperature_variant(lambda l, t: torch.softmax(l, dim=-1)), ["no effect"]),
    (temperature_variant(lambda l, t: torch.softmax(l, dim=-1) / t), ["does not sum to 1"]),
    (temperature_variant(lambda l, t: torch.softmax(l * t, dim=-1)), ["multiplied by T"]),
    (temperature_variant(lambda l, t: torch.log_softmax(l / t, dim=-1)), ["log-probabilities"]),
    (temperature_variant(lambda l, t: torch.exp(l / t)), ["not normalised"]),
    (temperature_variant(lambda l, t: torch.softmax(l / t, dim=0)), ["dim 0"]),
    (temperature_variant(lambda l, t: torch.softmax(l / t, dim=-1), validate=False), ["ValueError"]),
    (temperature_variant(lambda l, t: torch.softmax(l / abs(t), dim=-1) if t else 1 / 0, validate=False),
     ["ValueError", "ZeroDivisionError"]),
    (divides_in_place, ["in place"]),
    (temperature_variant(lambda l, t: torch.softmax(l / t, dim=-1).max(dim=-1).values), ["shape"]),
    (not_implemented, ["not implemented"]),
])
def test_temperature_mistakes_are_named(answer, fragments):
    rejects(check_temperature_probabilities, answer, *fragments)


# ----------------------------------------------------------------------------------------------
# Exercise 5: sample_next_word
# ----------------------------------------------------------------------------------------------
def sample_next_word(logits, temperature, generator):
    probabilities = temperature_probabilities(logits, temperature)
    return torch.multinomial(probabilities, 1, generator=generator).item()


def sample_unnormalised(logits, temperature, generator):  # multinomial normalises weights itself
    weights = torch.exp((logits - logits.max()) / temperature)
    return int(torch.multinomial(weights.unsqueeze(0), num_samples=1, generator=generator)[0, 0])


def sample_with_replacement(logits, temperature, generator):
    probabilities = F.softmax(logits / temperature, dim=0)
    return torch.multinomial(probabilities, 1, replacement=True, generator=generator).item()


@pytest.mark.parametrize("answer", [sample_next_word, sample_unnormalised, sample_with_replacement])
def test_sample_right_answers_pass(answer, capsys):
    for seed in SEEDS:
        check_sample_next_word(answer, seed=seed)
    assert "✅" in capsys.readouterr().out


def sample_own_generator(logits, temperature, generator):
    """Held out in issue 20: a fixed generator of its own, made at every call (was told "greedy")."""
    g = torch.Generator().manual_seed(0)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1, generator=g).item()


def sample_reseeding_the_global_stream(logits, temperature, generator):
    torch.manual_seed(42)
    return torch.multinomial(torch.softmax(logits / temperature, dim=-1), 1).item()


def sample_variant(probabilities=lambda l, t: torch.softmax(l / t, dim=-1), use_generator=True, as_int=True):
    def answer(logits, temperature, generator):
        drawn = torch.multinomial(probabilities(logits, temperature), 1,
                                  generator=generator if use_generator else None)
        return drawn.item() if as_int else drawn
    return answer


@pytest.mark.parametrize("answer, fragments", [
    (sample_variant(use_generator=False), ["generator is not used"]),
    (lambda l, t, g: torch.distributions.Categorical(logits=l / t).sample().item(), ["generator is not used"]),
    (sample_variant(probabilities=lambda l, t: torch.softmax(l, dim=-1)), ["no effect"]),
    (sample_variant(probabilities=after_softmax_renormalised), ["no effect"]),
    (sample_variant(probabilities=lambda l, t: torch.softmax(l * t, dim=-1)), ["multiplied by T"]),
    (lambda l, t, g: int(l.argmax()), ["greedy"]),
    (lambda l, t, g: int(torch.argmax(torch.softmax(l / t, dim=0))), ["greedy"]),
    (sample_own_generator, ["do not change when the seed", "generator of its own", "the `generator` you are given"]),
    (sample_reseeding_the_global_stream, ["do not change when the seed", "torch.manual_seed"]),
    (sample_variant(as_int=False), ["tensor of shape (1,)", ".item()"]),
    (lambda l, t, g: float(sample_next_word(l, t, g)), ["should return an int"]),
    (lambda l, t, g: len(l), ["not the index of a word"]),
    (not_implemented, ["not implemented"]),
])
def test_sample_mistakes_are_named(answer, fragments):
    rejects(check_sample_next_word, answer, *fragments)


def test_sample_checker_is_deterministic():
    """A wrong answer gets the same message every time: the draws are seeded, never luck."""
    wrong = sample_variant(probabilities=lambda l, t: torch.softmax(l * t, dim=-1))
    assert rejects(check_sample_next_word, wrong) == rejects(check_sample_next_word, wrong)


# ----------------------------------------------------------------------------------------------
# All checkers
# ----------------------------------------------------------------------------------------------
def test_checkers_build_inputs_on_the_requested_device():
    assert devices_seen(check_shift_for_next_word, lambda batch: [batch]) == {"meta"}
    assert devices_seen(check_temperature_probabilities, lambda logits, t: [logits]) == {"meta"}
    assert devices_seen(check_tbptt_step, lambda model, x, y, state, opt: [x, y, *model.parameters()]) == {"meta"}


def test_checkers_leave_the_random_state_alone():
    assert keeps_random_state(lambda: check_shift_for_next_word(shift))
    assert keeps_random_state(lambda: check_perplexity_from_loss(perplexity))
    assert keeps_random_state(lambda: check_perplexity_of_batches(perplexity_of_batches))
    assert keeps_random_state(lambda: check_tbptt_step(tbptt_step))
    assert keeps_random_state(lambda: check_temperature_probabilities(temperature_probabilities))
    assert keeps_random_state(lambda: check_sample_next_word(sample_next_word))
    # an answer that draws from the global stream does not move the student's stream either
    assert keeps_random_state(lambda: rejects(check_sample_next_word, sample_variant(use_generator=False)))


def test_fresh_checks_finds_lesson_8():
    checks = fresh_checks(8)
    checks.check_shift_for_next_word(shift_narrow)
    checks.check_perplexity_from_loss(perplexity_torch)
    checks.check_perplexity_of_batches(perplexity_of_batches_reusing)
    checks.check_tbptt_step(tbptt_step_module_loss)
    checks.check_temperature_probabilities(temperature_power)
    checks.check_sample_next_word(sample_unnormalised)
