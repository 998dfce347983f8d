"""The checkers of lesson 6 (training on IMDb; course_utils/checks/lesson06.py) accept the right
answers and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_accuracy,
    check_confusion_matrix,
    check_predict_sentiment,
    check_train_step,
)
from course_utils.text import tokenize




SEEDS = [0, 1, 7]


# ----------------------------------------------------------------------------------------------
# train_step
# ----------------------------------------------------------------------------------------------
def train_step(model, ids, labels, lengths, optimizer):
    model.train()
    loss = nn.BCEWithLogitsLoss()(model(ids, lengths), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def train_step_bce(model, ids, labels, lengths, optimizer):  # right too: BCELoss on probabilities
    model.train()
    optimizer.zero_grad()
    loss = nn.BCELoss()(torch.sigmoid(model(ids, lengths)), labels)
    loss.backward()
    optimizer.step()
    return float(loss.item())


def step_without(skip):
    def broken(model, ids, labels, lengths, optimizer):
        if skip != "train":
            model.train()
        logits = model(ids, lengths)
        loss = nn.BCEWithLogitsLoss()(torch.sigmoid(logits) if skip == "logits" else logits, labels)
        if skip != "zero_grad":
            optimizer.zero_grad()
        loss.backward()
        if skip != "step":
            optimizer.step()
        return loss if skip == "item" else loss.item()
    return broken


def step_train_too_late(model, ids, labels, lengths, optimizer):
    loss = nn.BCEWithLogitsLoss()(model(ids, lengths), labels)
    model.train()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [train_step, train_step_bce])
def test_train_step_accepts_right_answers(fn, seed, capsys):
    check_train_step(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (step_without("zero_grad"), ["zero_grad"]),
        (step_without("step"), ["optimizer.step()"]),
        (step_without("train"), ["model.train()"]),
        (step_without("logits"), ["sigmoid(logits)"]),
        (step_without("item"), ["loss.item()"]),
        (step_train_too_late, ["model.train() BEFORE"]),
    ],
)
def test_train_step_rejects_mistakes(fn, fragments):
    rejects(check_train_step, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# accuracy
# ----------------------------------------------------------------------------------------------
def accuracy(model, loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for ids, labels, lengths in loader:
            correct += ((model(ids, lengths) > 0).float() == labels).sum().item()
            total += len(labels)
    return correct / total


def accuracy_variant(skip):
    def broken(model, loader):
        if skip != "eval":
            model.eval()
        values, total = [], 0
        with torch.set_grad_enabled(skip == "no_grad"):
            for ids, labels, lengths in loader:
                threshold = 0.5 if skip == "threshold" else 0.0
                right = ((model(ids, lengths) > threshold).float() == labels).float()
                values.append(right.mean().item() if skip == "per_batch" else right.sum().item())
                total += len(labels)
        if skip == "per_batch":
            return sum(values) / len(values)
        result = sum(values) / total
        if skip == "percent":
            return 100 * result
        return torch.tensor(result) if skip == "tensor" else result
    return broken


def test_accuracy_accepts_the_right_answer(capsys):
    for seed in SEEDS:
        check_accuracy(accuracy, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (accuracy_variant("eval"), ["model.eval()"]),
        (accuracy_variant("no_grad"), ["torch.no_grad()"]),
        (accuracy_variant("threshold"), ["on logits it is 0"]),
        (accuracy_variant("per_batch"), ["per-batch accuracies"]),
        (accuracy_variant("percent"), ["not a percentage"]),
        (accuracy_variant("tensor"), ["Python float"]),
    ],
)
def test_accuracy_rejects_mistakes(fn, fragments):
    rejects(check_accuracy, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# predict_sentiment
# ----------------------------------------------------------------------------------------------
def predict_sentiment(text, model, vocab):
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty text")
    ids = vocab.encode(tokenize(text))
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(torch.tensor([ids]), torch.tensor([len(ids)]))).item()


def predict_variant(mistake):
    def broken(text, model, vocab):
        if mistake != "type" and not isinstance(text, str):
            raise TypeError("not a string")
        if mistake != "empty" and not text.strip():
            raise ValueError("empty")
        if mistake == "split":
            ids = [vocab.stoi[t] for t in text.lower().split() if t in vocab.stoi]
        else:
            ids = vocab.encode(tokenize(text))
        if mistake == "unknown" and all(i == 1 for i in ids):
            raise ValueError("I only know some words")
        if mistake != "eval":
            model.eval()
        with torch.no_grad():
            logit = model(torch.tensor([ids]), torch.tensor([len(ids)]))
        if mistake == "logit":
            return logit.item()
        if mistake == "tensor":
            return torch.sigmoid(logit)
        return torch.sigmoid(logit).item()
    return broken


@pytest.mark.parametrize("seed", SEEDS)
def test_predict_sentiment_accepts_the_right_answer(seed, capsys):
    check_predict_sentiment(predict_sentiment, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (predict_variant("type"), ["TypeError", "isinstance"]),
        (predict_variant("empty"), ["ValueError"]),
        (predict_variant("unknown"), ["unknown words is valid"]),
        (predict_variant("logit"), ["torch.sigmoid"]),
        (predict_variant("tensor"), ["Python float"]),
        (predict_variant("eval"), ["model.eval()"]),
        (predict_variant("split"), ["Tokenize"]),
    ],
)
def test_predict_sentiment_rejects_mistakes(fn, fragments):
    rejects(check_predict_sentiment, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# confusion matrix
# ----------------------------------------------------------------------------------------------
def confusion_matrix(probabilities, labels):
    predicted = (probabilities > 0.5).long()
    matrix = torch.zeros(2, 2, dtype=torch.long)
    for true, guess in zip(labels.tolist(), predicted.tolist()):
        matrix[true, guess] += 1
    return matrix


def confusion_bincount(probabilities, labels):  # vectorized, right too
    return torch.bincount(2 * labels + (probabilities > 0.5).long(), minlength=4).view(2, 2)


@pytest.mark.parametrize("fn", [confusion_matrix, confusion_bincount])
def test_confusion_matrix_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_confusion_matrix(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (lambda p, y: confusion_matrix(p, y).T, ["transposed"]),
        (lambda p, y: confusion_matrix(p, y).flip(0).flip(1), ["Index 0 is negative"]),
        (lambda p, y: confusion_matrix(p, y).float() / len(y), ["fractions"]),
        (lambda p, y: confusion_matrix(torch.ones_like(p) * (p > 0).float(), y), ["probability > 0.5"]),
        (lambda p, y: confusion_matrix(p, y)[:1], ["shape"]),
        (lambda p, y: confusion_matrix(p[1:], y[1:]), ["add up to"]),
    ],
)
def test_confusion_matrix_rejects_mistakes(fn, fragments):
    rejects(check_confusion_matrix, fn, *fragments)
