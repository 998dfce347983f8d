"""The checkers of lesson 6 (training on IMDb; course_utils/checks/lesson06.py) accept right answers
written in several ways and reject the usual wrong ones.

Each broken implementation below is a mistake students make; the test asserts that the checker
raises ``AssertionError`` AND that its message names the mistake (the hint the student reads).
The device tests run the checkers with ``device="meta"``: the student's function must receive its
model (or tensors) there, so an answer that uses the notebook's ``device`` works on a GPU.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from checker_testing import not_implemented, rejects
from course_utils.checks import (
    check_accuracy,
    check_confusion_matrix,
    check_fit_best,
    check_predict_sentiment,
    check_train_step,
)
from course_utils.predict import text_to_ids
from course_utils.text import tokenize
from course_utils.training import accuracy_of

SEEDS = [0, 1, 2, 3, 5]  # 5: the hidden tests' seed


def device_of(model):
    return next(model.parameters()).device


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


def train_step_functional(model, ids, labels, lengths, optimizer):  # functional loss, model.zero_grad, .to(device)
    model.train()
    model.zero_grad(set_to_none=True)
    device = device_of(model)
    logits = model(ids.to(device), lengths)
    loss = nn.functional.binary_cross_entropy_with_logits(logits, labels.to(device))
    loss.backward()
    optimizer.step()
    return float(loss.detach())


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


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("fn", [train_step, train_step_bce, train_step_functional])
def test_train_step_accepts_right_answers(fn, seed, capsys):
    check_train_step(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("fn, fragments", [
    (not_implemented, ["not implemented"]),
    (step_without("zero_grad"), ["zero_grad"]),
    (step_without("step"), ["optimizer.step()"]),
    (step_without("train"), ["model.train()"]),
    (step_without("logits"), ["sigmoid(logits)"]),
    (step_without("item"), ["loss.item()"]),
    (step_train_too_late, ["model.train() BEFORE"]),
])
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


def accuracy_float32_tensor(model, loader):  # the example: a float32 0-d tensor
    model.eval()
    device = device_of(model)
    with torch.no_grad():
        hits = [((model(ids.to(device), n) > 0).float() == y.to(device)).float() for ids, y, n in loader]
    return torch.cat(hits).mean()


def accuracy_with_accuracy_of(model, loader):  # the course's accuracy_of: float32, then .item()
    model.eval()
    with torch.no_grad():
        probabilities = torch.cat([torch.sigmoid(model(ids, n)) for ids, _, n in loader])
    return accuracy_of(probabilities, torch.cat([y for _, y, _ in loader]))


def accuracy_over_the_dataset(model, loader):  # held out in issue 20: divides by len(loader.dataset)
    model.eval()
    correct = 0
    with torch.no_grad():
        for ids, labels, lengths in loader:
            correct += ((torch.sigmoid(model(ids, lengths)) > 0.5) == labels.bool()).sum().item()
    return correct / len(loader.dataset)


@pytest.mark.parametrize("fn", [accuracy, accuracy_float32_tensor, accuracy_with_accuracy_of,
                                lambda model, loader: accuracy_float32_tensor(model, loader).item(),
                                accuracy_over_the_dataset])
def test_accuracy_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_accuracy(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


def accuracy_variant(skip):
    def broken(model, loader):
        if skip != "eval":
            model.eval()
        values, total = [], 0
        with torch.set_grad_enabled(skip == "no_grad"):
            for ids, labels, lengths in loader:
                threshold = 0.5 if skip == "threshold" else 0.0
                right = ((model(ids, lengths) > threshold).float() == labels).float()
                values.append(right.mean().item() if skip in ("per_batch", "last") else right.sum().item())
                total += len(labels)
        if skip == "per_batch":
            return sum(values) / len(values)
        if skip == "last":
            return values[-1]
        result = sum(values) / total
        if skip == "percent":
            return 100 * result
        if skip == "per_loader_len":
            return sum(values) / len(loader)
        return [result] if skip == "list" else result
    return broken


@pytest.mark.parametrize("fn, fragments", [
    (not_implemented, ["not implemented"]),
    (accuracy_variant("eval"), ["model.eval()"]),
    (accuracy_variant("no_grad"), ["torch.no_grad()"]),
    (accuracy_variant("threshold"), ["on logits it is 0"]),
    (accuracy_variant("per_batch"), ["per-batch accuracies"]),
    (accuracy_variant("percent"), ["not a percentage"]),
    (accuracy_variant("last"), ["last batch only"]),
    (accuracy_variant("list"), ["should return a number"]),
    (accuracy_variant("per_loader_len"), ["len(loader), the number of BATCHES", "len(loader.dataset)"]),
])
def test_accuracy_rejects_mistakes(fn, fragments):
    rejects(check_accuracy, fn, *fragments)


def test_accuracy_names_a_batch_left_on_the_cpu():
    rejects(lambda fn: check_accuracy(fn, device="meta"), accuracy, "move ids (and labels) to the model's device")


# ----------------------------------------------------------------------------------------------
# fit_best
# ----------------------------------------------------------------------------------------------
def fit_best(model, train_epoch, valid_accuracy, epochs):
    history, best_accuracy, best_state = [], None, None
    for _ in range(epochs):
        train_epoch(model)
        model.eval()
        history.append(valid_accuracy(model))
        if best_accuracy is None or history[-1] > best_accuracy:
            best_accuracy, best_state = history[-1], copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return history


def fit_best_clones(model, train_epoch, valid_accuracy, epochs):  # CPU clones of each tensor
    history, best = [], -1.0
    for _ in range(epochs):
        train_epoch(model)
        model.eval()
        accuracy = valid_accuracy(model)
        history.append(accuracy)
        if accuracy > best:
            best = accuracy
            kept = {name: tensor.detach().cpu().clone() for name, tensor in model.state_dict().items()}
    model.load_state_dict(kept)
    return history


def fit_best_model_copy(model, train_epoch, valid_accuracy, epochs):  # a copy of the whole model, a tuple
    history, best_model = [], None
    for _ in range(epochs):
        train_epoch(model)
        model.eval()
        history.append(torch.tensor(valid_accuracy(model)))
        if best_model is None or history[-1] > max(history[:-1]):
            best_model = copy.deepcopy(model)
    model.load_state_dict(best_model.state_dict())
    return tuple(history)


@pytest.mark.parametrize("fn", [fit_best, fit_best_clones, fit_best_model_copy])
def test_fit_best_accepts_right_answers(fn, capsys):
    for seed in SEEDS[:3]:
        check_fit_best(fn, seed=seed)
    assert "fit_best keeps a copy" in capsys.readouterr().out


def fit_variant(mistake):
    def broken(model, train_epoch, valid_accuracy, epochs):
        history, train_history, best, best_state = [], [], None, None
        for _ in range(epochs):
            train_history.append(train_epoch(model))
            if mistake != "no_eval":
                model.eval()
            history.append(valid_accuracy(model))
            score = train_history[-1] if mistake == "train_accuracy" else history[-1]
            better = best is None or (score >= best if mistake == "ties" else score > best)
            if better:
                best = score
                best_state = model.state_dict() if mistake == "reference" else copy.deepcopy(model.state_dict())
        if mistake != "no_restore":
            model.load_state_dict(best_state)
        return train_history if mistake == "returns_train" else history
    return broken


@pytest.mark.parametrize("fn, fragments", [
    (fit_variant("no_restore"), ["LAST epoch", "load_state_dict"]),
    (fit_variant("reference"), ["model.state_dict() itself", "copy.deepcopy"]),
    (fit_variant("train_accuracy"), ["best TRAINING epoch"]),
    (fit_variant("no_eval"), ["model.eval()"]),
    (fit_variant("ties"), ["tie", "earlier"]),
    (fit_variant("returns_train"), ["TRAINING accuracies"]),
    (lambda model, train_epoch, valid_accuracy, epochs: fit_best(model, train_epoch, valid_accuracy, epochs - 1),
     ["called train_epoch"]),
    (lambda model, train_epoch, valid_accuracy, epochs: fit_best(model, train_epoch, valid_accuracy, epochs)[-1],
     ["list of the"]),
    (not_implemented, ["not implemented"]),
])
def test_fit_best_rejects_mistakes(fn, fragments):
    rejects(lambda f: check_fit_best(f, seed=1), fn, *fragments)


# ----------------------------------------------------------------------------------------------
# predict_sentiment
# ----------------------------------------------------------------------------------------------
def predict_sentiment(text, model, vocab):
    if not isinstance(text, str):
        raise TypeError(f"expected a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("empty text")
    ids = vocab.encode(tokenize(text))
    if not ids:
        raise ValueError("no words in the text")
    model.eval()
    with torch.no_grad():
        return torch.sigmoid(model(torch.tensor([ids]), torch.tensor([len(ids)]))).item()


def predict_with_text_to_ids(text, model, vocab):  # the course's own input check
    ids = text_to_ids(text, vocab)
    model.eval()
    device = device_of(model)
    with torch.no_grad():
        logit = model(torch.tensor([ids], device=device), torch.tensor([len(ids)]))
    return float(torch.sigmoid(logit))


def predict_as_tensor(text, model, vocab):  # other ways to build the batch and the probability
    if type(text) is not str:
        raise TypeError("text must be a str")
    tokens = tokenize(text)
    if len(tokens) == 0:
        raise ValueError("no words")
    ids = torch.as_tensor(vocab.encode(tokens)).unsqueeze(0)
    model.eval()
    with torch.inference_mode():
        return nn.functional.sigmoid(model(ids.to(device_of(model)), torch.tensor([ids.size(1)]))).squeeze().item()


@pytest.mark.parametrize("seed", SEEDS[:3])
@pytest.mark.parametrize("fn", [predict_sentiment, predict_with_text_to_ids, predict_as_tensor])
def test_predict_sentiment_accepts_right_answers(fn, seed, capsys):
    check_predict_sentiment(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


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
        if mistake not in ("no_words", "split", "empty") and not ids:
            raise ValueError("no words")
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


@pytest.mark.parametrize("fn, fragments", [
    (not_implemented, ["not implemented"]),
    (predict_variant("type"), ["TypeError", "isinstance"]),
    (predict_variant("empty"), ["ValueError", "text.strip()"]),
    (predict_variant("no_words"), ["'!!!'", "no word at all", "token list is empty"]),
    (predict_variant("unknown"), ["raised ValueError: I only know some words"]),
    (predict_variant("logit"), ["torch.sigmoid"]),
    (predict_variant("tensor"), ["Python float"]),
    (predict_variant("eval"), ["model.eval()"]),
    (predict_variant("split"), ["Tokenize"]),
])
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
    return matrix.to(probabilities.device)


def confusion_bincount(probabilities, labels):  # vectorised, right too
    return torch.bincount(2 * labels + (probabilities > 0.5).long(), minlength=4).view(2, 2)


def confusion_sums(probabilities, labels):  # whole-number floats, from boolean masks
    predicted, true = probabilities > 0.5, labels == 1
    return torch.stack([torch.stack([(~true & ~predicted).sum(), (~true & predicted).sum()]),
                        torch.stack([(true & ~predicted).sum(), (true & predicted).sum()])]).float()


@pytest.mark.parametrize("fn", [confusion_matrix, confusion_bincount, confusion_sums])
def test_confusion_matrix_accepts_right_answers(fn, capsys):
    for seed in SEEDS:
        check_confusion_matrix(fn, seed=seed)
    assert "✅" in capsys.readouterr().out


@pytest.mark.parametrize("fn, fragments", [
    (not_implemented, ["not implemented"]),
    (lambda p, y: confusion_matrix(p, y).T, ["transposed"]),
    (lambda p, y: confusion_matrix(p, y).flip(0).flip(1), ["Index 0 is negative"]),
    (lambda p, y: confusion_matrix(p, y).float() / len(y), ["fractions"]),
    (lambda p, y: confusion_matrix(torch.ones_like(p) * (p > 0).float(), y), ["probability > 0.5"]),
    (lambda p, y: confusion_matrix(p, y)[:1], ["shape"]),
    (lambda p, y: confusion_matrix(p[1:], y[1:]), ["add up to"]),
])
def test_confusion_matrix_rejects_mistakes(fn, fragments):
    rejects(check_confusion_matrix, fn, *fragments)


# ----------------------------------------------------------------------------------------------
# Devices: the student's function gets its model and tensors on the requested device
# ----------------------------------------------------------------------------------------------
def spy(seen):
    def record(*args):
        for arg in args:
            if isinstance(arg, nn.Module):
                seen.append(("model", device_of(arg).type))
            elif isinstance(arg, torch.Tensor):
                seen.append(("tensor", arg.device.type))
        raise RuntimeError("spy")
    return record


@pytest.mark.parametrize("checker, expected", [
    (check_train_step, [("model", "meta"), ("tensor", "meta"), ("tensor", "meta"), ("tensor", "cpu")]),
    (check_accuracy, [("model", "meta")]),        # the loader's batches stay on the CPU, as a DataLoader's
    (check_fit_best, [("model", "meta")]),
    (check_predict_sentiment, [("model", "meta")]),
    (check_confusion_matrix, [("tensor", "meta"), ("tensor", "meta")]),
])
def test_checkers_follow_the_requested_device(checker, expected):
    seen = []
    with pytest.raises(AssertionError, match="spy"):
        checker(spy(seen), device="meta")
    assert seen == expected


def test_checkers_leave_the_global_random_state_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    check_train_step(train_step)
    check_accuracy(accuracy)
    check_predict_sentiment(predict_sentiment)
    check_confusion_matrix(confusion_matrix)
    assert torch.equal(torch.rand(3), expected)
