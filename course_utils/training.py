"""Training a sentiment classifier: seeds, devices, batches, the loops, checkpoints (lesson 6).

The loops are the ones every PyTorch project writes, kept short enough to read in one go:

* ``train_epoch``: for each batch, forward -> loss -> backward -> (clip) -> optimizer step;
* ``evaluate``: the same forward pass with ``torch.no_grad()`` and the model in ``eval()`` mode;
* ``fit``: a few epochs of both, printing loss and accuracy, keeping the weights of the epoch with
  the best *validation* accuracy and putting them back into the model at the end.

Everything runs on the CPU, or on a GPU when there is one, with no edits (``get_device``).

Two kinds of classifier go through the same loops; the shape of the logits tells which:

* one logit per review, (batch,): two classes (negative / positive), ``BCEWithLogitsLoss`` on
  labels 0.0 / 1.0, "positive" when the logit is above 0, probability ``sigmoid(logit)``;
* C logits per review, (batch, C): C classes (lesson 8: 8 star ratings), ``CrossEntropyLoss`` on
  class indices 0..C-1, the prediction is the class with the largest logit, probabilities
  ``softmax(logits)``.
"""

from __future__ import annotations

import copy
import random
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from .batching import BucketBatchSampler, collate_batch

Example = tuple[Sequence[int], int]  # (token ids, label)


def set_seed(seed: int = 0) -> None:
    """Seed Python, NumPy and PyTorch so that a run can be repeated."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device() -> torch.device:
    """The GPU when there is one, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _tf32_backends() -> list:
    """The settings that decide whether float32 maths on an NVIDIA GPU may use TF32.

    PyTorch 2.9 and later name them ``fp32_precision`` ("tf32" or "ieee"); older versions have
    the booleans ``allow_tf32``. Returned as ``(object, attribute, value meaning 'full float32')``.
    """
    cuda, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(cudnn, "rnn") and hasattr(cudnn.rnn, "fp32_precision"):
        return [(cuda, "fp32_precision", "ieee"), (cudnn.rnn, "fp32_precision", "ieee"),
                (cudnn.conv, "fp32_precision", "ieee")]
    return [(cuda, "allow_tf32", False), (cudnn, "allow_tf32", False)]


@contextmanager
def full_float32() -> Iterator[None]:
    """Inside this block, float32 maths on a GPU is done in full float32 (no TF32).

    On NVIDIA GPUs since Ampere (Colab's A100 and L4, for example) cuDNN's recurrent layers use
    TF32 by default: inputs rounded to 10 bits of mantissa, errors near 1e-3 instead of 1e-7. That
    is fine for training, but not for checking "my loop equals ``nn.LSTM``" to 1e-5. Checks of
    exactness run inside ``with full_float32():``; the settings are put back afterwards. On a CPU
    nothing changes (it never uses TF32).
    """
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in _tf32_backends()]
    try:
        for owner, name, exact in _tf32_backends():
            setattr(owner, name, exact)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


def truncate(ids: Sequence[int], max_len: Optional[int], head: float = 0.5) -> list[int]:
    """Shorten a review to ``max_len`` tokens, keeping its beginning *and* its end.

    ``head`` is the share of ``max_len`` taken from the beginning; the rest comes from the end,
    where reviewers often give their verdict. ``max_len=None`` keeps everything.
    """
    ids = list(ids)
    if max_len is None or len(ids) <= max_len:
        return ids
    n_head = int(round(max_len * head))
    return ids[:n_head] + ids[len(ids) - (max_len - n_head):]


def make_loader(
    examples: Sequence[Example], batch_size: int = 64, shuffle: bool = True, seed: int = 0
) -> torch.utils.data.DataLoader:
    """A DataLoader of length-bucketed batches ``(ids, labels, lengths)`` (see lesson 4)."""
    sampler = BucketBatchSampler([len(ids) for ids, _ in examples], batch_size, shuffle=shuffle, seed=seed)
    return torch.utils.data.DataLoader(list(examples), batch_sampler=sampler, collate_fn=collate_batch)


def _progress(iterable, desc: str, enabled: bool):
    """``iterable`` with a progress bar that disappears when done (none when not ``enabled``).

    tqdm is handed an *iterator*: given the loader itself, ``tqdm.auto`` starts an extra pass over
    it, which moves a shuffling sampler on by one epoch, so the batches would no longer be those
    of a plain ``for`` loop over the same loader.
    """
    if not enabled:
        return iterable
    return tqdm(iter(iterable), total=len(iterable), desc=desc, leave=False, mininterval=1.0)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The loss of a batch: ``BCEWithLogitsLoss`` for one logit per review, ``CrossEntropyLoss`` for C.

    ``logits`` (batch,) with float labels 0.0 / 1.0, or ``logits`` (batch, C) with class indices
    0..C-1 (``collate_batch`` gives float labels; they are turned into the integer indices that
    ``CrossEntropyLoss`` wants). ``reduction="sum"`` adds the reviews' losses up instead of averaging.
    """
    if logits.dim() == 1:
        return nn.BCEWithLogitsLoss(reduction=reduction)(logits, labels)
    return nn.CrossEntropyLoss(reduction=reduction)(logits, labels.long())


def count_correct(logits: torch.Tensor, labels: torch.Tensor) -> int:
    """How many reviews of the batch are classified right.

    One logit: "positive" when it is above 0 (sigmoid above 0.5). C logits: the class with the
    largest logit (``argmax``).
    """
    if logits.dim() == 1:
        return ((logits > 0).float() == labels).sum().item()
    return (logits.argmax(dim=1) == labels.long()).sum().item()


def probabilities_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """``sigmoid``: P(positive) (batch,) from one logit; ``softmax``: a distribution (batch, C) from C."""
    if logits.dim() == 1:
        return torch.sigmoid(logits)
    return torch.softmax(logits, dim=1)


def train_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    device: Optional[torch.device] = None,
    scheduler=None,
    clip: Optional[float] = None,
    progress: bool = True,
) -> tuple[float, float]:
    """One pass over the training batches; returns (mean loss, accuracy) over its reviews.

    ``scheduler`` (if any) is stepped after every batch; ``clip`` caps the gradient norm, which
    keeps one exploding gradient (lesson 1) from undoing the training so far. The loss is
    ``classification_loss``: binary cross-entropy for one logit, cross-entropy for C classes.
    """
    device = device or next(model.parameters()).device
    model.train()
    total_loss, correct, count = 0.0, 0, 0
    for ids, labels, lengths in _progress(loader, "train", progress):
        ids, labels = ids.to(device), labels.to(device)
        logits = model(ids, lengths)
        loss = classification_loss(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            nn.utils.clip_grad_norm_(model.parameters(), clip)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total_loss += loss.item() * len(labels)
        correct += count_correct(logits, labels)
        count += len(labels)
    return total_loss / count, correct / count


@torch.no_grad()
def evaluate(
    model: nn.Module, loader, device: Optional[torch.device] = None, progress: bool = True
) -> tuple[float, float]:
    """Mean loss and accuracy on a data set, without training (dropout off, no gradients)."""
    device = device or next(model.parameters()).device
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for ids, labels, lengths in _progress(loader, "evaluate", progress):
        ids, labels = ids.to(device), labels.to(device)
        logits = model(ids, lengths)
        total_loss += classification_loss(logits, labels, reduction="sum").item()
        correct += count_correct(logits, labels)
        count += len(labels)
    return total_loss / count, correct / count


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, examples: Sequence[Example], batch_size: int = 256, progress: bool = True
) -> torch.Tensor:
    """The model's probabilities for every example, in the order of ``examples``.

    A one-logit model gives P(positive), shape (N,); a C-class model gives each review's
    distribution over the classes, shape (N, C), every row summing to 1. Batches are bucketed
    by length inside, and each batch's results are written back at its examples' places.
    """
    device = next(model.parameters()).device
    model.eval()
    sampler = BucketBatchSampler([len(ids) for ids, _ in examples], batch_size, shuffle=False)
    probabilities = None
    for indices in _progress(sampler, "predict", progress):
        ids, _, lengths = collate_batch([examples[i] for i in indices])
        batch = probabilities_from_logits(model(ids.to(device), lengths)).float().cpu()
        if probabilities is None:  # the first batch tells the shape: (N,) or (N, C)
            probabilities = torch.empty((len(examples), *batch.shape[1:]))
        probabilities[indices] = batch
    return probabilities if probabilities is not None else torch.empty(0)


def accuracy_of(probabilities: torch.Tensor, labels: Sequence[float]) -> float:
    """The share of right answers when P(positive) > 0.5 is read as "positive".

    For probabilities (N, C) of C classes, the predicted class is the most probable one
    (``argmax``) and ``labels`` are class indices.
    """
    if probabilities.dim() == 2:
        labels = torch.as_tensor(labels, dtype=torch.long)
        return (probabilities.argmax(dim=1) == labels).float().mean().item()
    labels = torch.as_tensor(labels, dtype=torch.float)
    return ((probabilities > 0.5).float() == labels).float().mean().item()


@dataclass
class History:
    """What ``fit`` measured, one entry per epoch."""

    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)  # training time of each epoch (evaluation not included)
    reviews_per_second: list = field(default_factory=list)
    best_epoch: int = 0  # 1-based: the epoch whose weights the model holds after fit()

    @property
    def best_val_acc(self) -> Optional[float]:
        """The validation accuracy of the kept epoch (``None`` when there was no validation)."""
        return self.val_acc[self.best_epoch - 1] if self.val_acc else None

    def to_dict(self) -> dict:
        return asdict(self)


def make_scheduler(optimizer: torch.optim.Optimizer, schedule: Optional[str], lr: float, total_steps: int):
    """``None``: constant learning rate. ``"onecycle"``: a short warm-up to ``lr``, then a cosine
    decay to nearly zero. ``"linear"``: a straight-line decay from ``lr`` to zero."""
    if schedule is None:
        return None
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=total_steps, pct_start=0.1)
    if schedule == "linear":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: max(0.0, 1 - step / total_steps))
    raise ValueError(f"schedule must be None, 'onecycle' or 'linear', got {schedule!r}.")


def fit(
    model: nn.Module,
    train_loader,
    valid_loader,  # None: no validation, the last epoch is kept (see below)
    epochs: int = 3,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    clip: Optional[float] = None,
    schedule: Optional[str] = None,
    checkpoint: Optional[Union[str, Path]] = None,
    checkpoint_extra: Optional[dict] = None,
    device: Optional[torch.device] = None,
    progress: bool = True,
    log: Optional[Callable[[str], None]] = print,
) -> History:
    """Train with Adam for ``epochs`` epochs; keep and restore the best epoch by validation accuracy.

    After every epoch the validation accuracy is measured; when it is the best so far, a copy of
    the weights is kept (and saved to ``checkpoint`` if given, with ``checkpoint_extra``). At the
    end the model gets those weights back, so it is the best model seen, not the last one.
    ``valid_loader=None`` is for the very end of a project, when validation has already chosen the
    recipe and its number of epochs: nothing is measured and the last epoch is kept.
    ``log`` receives one line per epoch (``None``: silent).
    """
    device = device or get_device()
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = make_scheduler(optimizer, schedule, lr, epochs * len(train_loader))
    history = History()
    best_state = None
    n_train = sum(len(batch) for batch in train_loader.batch_sampler)
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        train_loss, train_acc = train_epoch(model, train_loader, optimizer, device, scheduler, clip, progress)
        seconds = time.perf_counter() - start
        for name, value in zip(
            ("train_loss", "train_acc", "seconds", "reviews_per_second"),
            (train_loss, train_acc, seconds, n_train / seconds),
        ):
            getattr(history, name).append(value)
        if valid_loader is None:
            val_loss = val_acc = None
            improved = True  # nothing to choose with: keep the latest epoch
        else:
            val_loss, val_acc = evaluate(model, valid_loader, device, progress)
            history.val_loss.append(val_loss)
            history.val_acc.append(val_acc)
            improved = best_state is None or val_acc > history.best_val_acc
        if improved:
            history.best_epoch = epoch
            best_state = copy.deepcopy(model.state_dict())
            if checkpoint is not None:
                save_checkpoint(checkpoint, model, {**(checkpoint_extra or {}), "epoch": epoch, "val_acc": val_acc})
        if log is not None:
            valid = "no validation" if val_acc is None else f"valid loss {val_loss:.4f} acc {val_acc:.4f}"
            log(
                f"epoch {epoch}/{epochs}: train loss {train_loss:.4f} acc {train_acc:.4f} | {valid} | {seconds:.1f} s"
                + (" *best*" if improved and val_acc is not None else "")
            )
    model.load_state_dict(best_state)
    return history


def save_checkpoint(path: Union[str, Path], model: nn.Module, extra: Optional[dict] = None) -> Path:
    """Save the weights, the model's config (to rebuild it) and anything in ``extra``.

    The file is written under a temporary name and renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = model.config.to_dict() if hasattr(model, "config") else None
    payload = {"state_dict": model.state_dict(), "config": config, **(extra or {})}
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def load_checkpoint(path: Union[str, Path], device: Optional[torch.device] = None):
    """Rebuild a ``SentimentClassifier`` saved by ``save_checkpoint``; returns (model, checkpoint dict)."""
    from .models import ModelConfig, SentimentClassifier

    checkpoint = torch.load(path, map_location=device or "cpu", weights_only=True)
    model = SentimentClassifier(ModelConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device or "cpu").eval()
    return model, checkpoint
