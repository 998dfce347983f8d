"""The checkers of lessons 5 and 6 accept right answers and reject the usual wrong ones.

Each broken implementation is a mistake students make; the test asserts that the checker raises
``AssertionError`` and that its message contains the hint the student needs.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from course_utils.batching import PaddedRNN, masked_max, masked_mean, padding_mask
from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_accuracy,
    check_bidirectional_final_state,
    check_bigru_classifier,
    check_confusion_matrix,
    check_masked_max,
    check_predict_sentiment,
    check_train_step,
)
from course_utils.text import PAD_INDEX, tokenize




SEEDS = [0, 1, 7]


# ----------------------------------------------------------------------------------------------
# final state of a bidirectional layer
# ----------------------------------------------------------------------------------------------
def final_state(h_n):
    return torch.cat([h_n[-2], h_n[-1]], dim=1)


def final_state_view(h_n):  # another right answer
    layers_directions, batch, hidden = h_n.shape
    top = h_n.view(layers_directions // 2, 2, batch, hidden)[-1]
    return torch.cat([top[0], top[1]], dim=1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [final_state, final_state_view])
def test_final_state_accepts_right_answers(fn, seed, capsys):
    check_bidirectional_final_state(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (lambda h_n: h_n[-1], ["one direction only"]),
        (lambda h_n: torch.cat([h_n[-1], h_n[-2]], dim=1), ["swapped"]),
        (lambda h_n: torch.cat([h_n[0], h_n[1]], dim=1), ["FIRST layer"]),
        (lambda h_n: torch.cat([h_n[-2], h_n[-1]], dim=0), ["dim 0", "dim=1"]),
        (lambda h_n: torch.stack([h_n[-2], h_n[-1]]), ["don't stack"]),
        (lambda h_n: h_n[-2:].reshape(h_n.size(1), -1), ["reshape/view mixes"]),
        (lambda h_n: h_n[-2] + h_n[-1], ["one direction only"]),  # same shape as one direction
    ],
)
def test_final_state_rejects_mistakes(fn, fragments):
    rejects(check_bidirectional_final_state, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# masked max
# ----------------------------------------------------------------------------------------------
def max_pool(output, lengths):
    mask = torch.arange(output.size(1)).unsqueeze(0) < lengths.unsqueeze(1)
    return output.masked_fill(~mask.unsqueeze(2), float("-inf")).max(dim=1).values


def max_pool_loop(output, lengths):  # a slow but right answer
    return torch.stack([output[i, :n].max(0).values for i, n in enumerate(lengths.tolist())])


def max_pool_in_place(output, lengths):
    mask = padding_mask(lengths, output.size(1)).unsqueeze(2)
    output.masked_fill_(~mask, float("-inf"))
    return output.amax(1)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fn", [max_pool, max_pool_loop, masked_max])
def test_masked_max_accepts_right_answers(fn, seed, capsys):
    check_masked_max(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "fn, fragments",
    [
        (not_implemented, ["not implemented"]),
        (lambda output, lengths: output.max(dim=1).values, ["padded steps took part", "-inf"]),
        (lambda output, lengths: output.max(dim=1), ["(values, indices)"]),
        (lambda output, lengths: (output * padding_mask(lengths, output.size(1)).unsqueeze(2)).amax(1),
         ["multiplying by the mask"]),
        (lambda output, lengths: output.masked_fill(~padding_mask(lengths, output.size(1)).unsqueeze(2), 0.0).amax(1),
         ["filling with 0"]),
        (lambda output, lengths: output.masked_fill(~padding_mask(lengths + 1, output.size(1)).unsqueeze(2),
                                                    float("-inf")).amax(1), ["off by one"]),
        (lambda output, lengths: output.amax(2), ["TIME dimension"]),
        (max_pool_in_place, ["in place"]),
        (lambda output, lengths: masked_mean(output, lengths), ["wrong values"]),
    ],
)
def test_masked_max_rejects_mistakes(fn, fragments):
    rejects(check_masked_max, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# BiGRU classifier
# ----------------------------------------------------------------------------------------------
def make_classifier(pool=None, squeeze=True, sigmoid=False):
    """A BiGRUClassifier whose forward uses ``pool(output, lengths)`` (default: the right max+mean)."""

    class BiGRUClassifier(nn.Module):
        def __init__(self, vocab_size, embedding_dim, hidden_size):
            super().__init__()
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_INDEX)
            self.rnn = PaddedRNN("gru", embedding_dim, hidden_size, bidirectional=True)
            self.head = nn.Linear(4 * hidden_size, 1)

        def forward(self, ids, lengths):
            output, _ = self.rnn(self.embedding(ids), lengths)
            pooled = (pool or (lambda o, n: torch.cat([masked_max(o, n), masked_mean(o, n)], dim=1)))(output, lengths)
            logits = self.head(pooled)
            logits = logits.squeeze(1) if squeeze else logits
            return torch.sigmoid(logits) if sigmoid else logits

    return BiGRUClassifier


class WrongLayers(nn.Module):
    def __init__(self, vocab_size, embedding_dim, hidden_size):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.rnn = nn.GRU(embedding_dim, hidden_size, bidirectional=True, batch_first=True)
        self.head = nn.Linear(4 * hidden_size, 1)

    def forward(self, ids, lengths):
        output, _ = self.rnn(self.embedding(ids))
        return self.head(torch.cat([output.amax(1), output.mean(1)], 1)).squeeze(1)


@pytest.mark.parametrize("seed", SEEDS)
def test_bigru_classifier_accepts_the_right_answer(seed, capsys):
    check_bigru_classifier(make_classifier(), seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize(
    "cls, fragments",
    [
        (make_classifier(squeeze=False), ["Squeeze"]),
        (make_classifier(sigmoid=True), ["LOGITS"]),
        (make_classifier(pool=lambda o, n: torch.cat([masked_mean(o, n), masked_max(o, n)], 1)), ["wrong order"]),
        (make_classifier(pool=lambda o, n: torch.cat([o.amax(1), masked_mean(o, n)], 1)), ["max includes the padded"]),
        (make_classifier(pool=lambda o, n: torch.cat([masked_max(o, n), o.mean(1)], 1)), ["padded length"]),
        (make_classifier(pool=lambda o, n: torch.cat([o.amax(1), o.mean(1)], 1)), ["Both poolings"]),
        (WrongLayers, ["keep the __init__ as given"]),
        (make_classifier(pool=lambda o, n: not_implemented()), ["not implemented"]),
    ],
)
def test_bigru_classifier_rejects_mistakes(cls, fragments):
    rejects(check_bigru_classifier, cls, *fragments)


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
