"""An encoder-decoder that translates dates written by people into ISO dates (lesson 7).

The task: ``"tuesday, november 3, 2026"``, ``"3/11/26"``, ``"the 3rd of nov 2026"``... ->
``"2026-11-03"``. It is small enough to train in a minute on a CPU, the input and output have
different lengths, and a person can see which input characters each output character comes
from: the alignment that attention should learn.

* ``date_data`` generates the examples: train, validation and test use **disjoint sets of days**,
  and a ``long`` test set holds inputs longer than any training input.
* ``CharVocab`` turns text into character ids (``<pad>`` = 0, ``<sos>``, ``<eos>``).
* ``Seq2Seq``: a bidirectional GRU encoder; a GRU-cell decoder that, at each step, reads the
  previous character and (optionally) attends over the encoder's states, with scaled dot-product
  or additive scores.
* ``train_seq2seq`` (teacher forcing or not), ``exact_match`` and ``translate`` (greedy decoding).
  They run where the model is: move it to the GPU (``model.to("cuda")``) and they use the GPU.
"""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .attention import AdditiveAttention, dot_product_attention
from .batching import PaddedRNN, padding_mask

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september",
          "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST_DAY, LAST_DAY = datetime.date(1950, 1, 1), datetime.date(2049, 12, 31)
TRAIN_MAX_LEN = 20  # training inputs have at most 20 characters
LONG_MIN_LEN = 23   # the ``long`` test set: at least 23 characters, longer than any training input
OUTPUT_LEN = 10     # "YYYY-MM-DD"


def _ordinal(day: int) -> str:
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


# Each format writes a date the way a person might. Numbers are day/month/year (European order);
# a two-digit year yy means 20yy when yy < 50, else 19yy (the data covers 1950-2049).
FORMATS: dict[str, Callable[[datetime.date], str]] = {
    "d mon yyyy": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "dd month yyyy": lambda d: f"{d.day:02d} {MONTHS[d.month - 1]} {d.year}",
    "month d, yyyy": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "mon d, yyyy": lambda d: f"{MONTHS[d.month - 1][:3]} {d.day}, {d.year}",
    "dd/mm/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "d.m.yyyy": lambda d: f"{d.day}.{d.month}.{d.year}",
    "yyyy-m-d": lambda d: f"{d.year}-{d.month}-{d.day}",
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",
    "d-mon-yy": lambda d: f"{d.day}-{MONTHS[d.month - 1][:3]}-{d.year % 100:02d}",
    "wkd d mon yyyy": lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "weekday, month d, yyyy": lambda d: f"{WEEKDAYS[d.weekday()]}, {MONTHS[d.month - 1]} {d.day}, {d.year}",
    "the dth of month yyyy": lambda d: f"the {_ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
}

Example = tuple[str, str]  # (human date, ISO date)


@dataclass
class DateData:
    """Generated (text, ISO) pairs. ``train``/``valid``/``test`` come from disjoint sets of days;
    ``long`` uses the test days, with inputs longer than every training input."""

    train: list[Example]
    valid: list[Example]
    test: list[Example]
    long: list[Example]

    def __repr__(self) -> str:
        sizes = ", ".join(f"{name}={len(getattr(self, name)):,}" for name in ("train", "valid", "test", "long"))
        return f"DateData({sizes})"


def _examples(days: Sequence[datetime.date], n: int, rng: random.Random, min_len: int, max_len: int) -> list[Example]:
    """``n`` examples on days drawn from ``days``, each in a random format whose text fits the lengths."""
    examples = []
    while len(examples) < n:
        day = rng.choice(days)
        text = FORMATS[rng.choice(list(FORMATS))](day)
        if min_len <= len(text) <= max_len:
            examples.append((text, day.isoformat()))
    return examples


def date_data(n_train: int = 10_000, n_valid: int = 1_000, n_test: int = 1_000, n_long: int = 500,
              seed: int = 0) -> DateData:
    """Generate the four sets; the days 1950-2049 are shuffled (fixed ``seed``) and split 80/10/10."""
    rng = random.Random(seed)
    days = [FIRST_DAY + datetime.timedelta(days=i) for i in range((LAST_DAY - FIRST_DAY).days + 1)]
    rng.shuffle(days)
    n_valid_days = len(days) // 10
    valid_days, test_days, train_days = days[:n_valid_days], days[n_valid_days:2 * n_valid_days], days[2 * n_valid_days:]
    return DateData(
        train=_examples(train_days, n_train, rng, 1, TRAIN_MAX_LEN),
        valid=_examples(valid_days, n_valid, rng, 1, TRAIN_MAX_LEN),
        test=_examples(test_days, n_test, rng, 1, TRAIN_MAX_LEN),
        long=_examples(test_days, n_long, rng, LONG_MIN_LEN, 100),
    )


PAD, SOS, EOS = "<pad>", "<sos>", "<eos>"
PAD_ID, SOS_ID, EOS_ID = 0, 1, 2


class CharVocab:
    """Characters <-> ids: ``<pad>`` = 0, ``<sos>`` = 1 (starts decoding), ``<eos>`` = 2 (ends it)."""

    def __init__(self, alphabet: str = " ,-./0123456789abcdefghijklmnopqrstuvwxyz"):
        self.itos = [PAD, SOS, EOS] + list(alphabet)
        self.stoi = {s: i for i, s in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The ids of a (lower-cased) date; a clear ``ValueError`` for empty text or unknown characters."""
        if not isinstance(text, str):
            raise TypeError(f"expected a string, got {type(text).__name__}.")
        text = text.strip().lower()
        if not text:
            raise ValueError("got an empty text: write a date, e.g. '3 nov 2026'.")
        unknown = sorted({c for c in text if c not in self.stoi or len(c) != 1 or c in (PAD, SOS, EOS)})
        if unknown:
            raise ValueError(f"unknown character(s) {''.join(unknown)!r}: a date may use only letters a-z, "
                             "digits, spaces and , - . /")
        return [self.stoi[c] for c in text]

    def decode(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, stopping at the first ``<eos>``."""
        chars = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, SOS_ID):
                chars.append(self.itos[i])
        return "".join(chars)


def encode_inputs(texts: Sequence[str], vocab: CharVocab,
                  device: Optional[torch.device] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded input ids (batch, time) and their lengths (batch,), on ``device`` (default: the CPU)."""
    inputs = [torch.tensor(vocab.encode(text)) for text in texts]
    lengths = torch.tensor([len(x) for x in inputs])
    return pad_sequence(inputs, batch_first=True, padding_value=PAD_ID).to(device), lengths.to(device)


def make_batch(examples: Sequence[Example], vocab: CharVocab,
               device: Optional[torch.device] = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inputs and lengths (``encode_inputs``) and targets (batch, 11): the ISO date + <eos>, on ``device``."""
    inputs, lengths = encode_inputs([text for text, _ in examples], vocab, device)
    targets = torch.tensor([vocab.encode(iso) + [EOS_ID] for _, iso in examples], device=device)
    return inputs, lengths, targets


def device_of(model: nn.Module) -> torch.device:
    """The device a model's weights are on: where its inputs must go."""
    return next(model.parameters()).device


ATTENTIONS = ("dot", "additive", None)  # the decoder's kinds of attention (None: without attention)


class Seq2Seq(nn.Module):
    """Encoder-decoder for character sequences, with or without attention.

    Encoder: embedding -> bidirectional GRU (``PaddedRNN``) -> states (batch, time, 2 * hidden)
    and its final forward + backward states, which start the decoder.
    Decoder step (``decode_step``): the previous character's embedding -> ``GRUCell`` -> state s.
    Without attention (``attention=None``) the state alone predicts the next character: everything
    about the input must pass through the fixed-size state. With attention the state is also a
    query over the encoder's states: ``context = attention(s, states)``, and ``tanh(W [s; context])``
    predicts the next character. ``attention="dot"`` scores with scaled dot products,
    ``"additive"`` with ``AdditiveAttention`` (Bahdanau et al. 2015).
    """

    def __init__(self, vocab_size: int, embedding_dim: int = 32, hidden_size: int = 64,
                 attention: Optional[str] = "dot"):
        super().__init__()
        if attention not in ATTENTIONS:
            raise ValueError(f"attention must be 'dot', 'additive' or None, got {attention!r}.")
        self.attention = attention
        size = 2 * hidden_size  # the decoder's state has the size of the encoder's two directions together
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=PAD_ID)
        self.encoder = PaddedRNN("gru", embedding_dim, hidden_size, bidirectional=True)
        self.decoder = nn.GRUCell(embedding_dim, size)
        self.additive = AdditiveAttention(size, size, hidden_size) if attention == "additive" else None
        self.combine = nn.Linear(2 * size, size) if attention else None
        self.out = nn.Linear(size, vocab_size)

    def encode(self, inputs: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(states (batch, time, 2h), mask (batch, time), the decoder's first state (batch, 2h))."""
        states, h_n = self.encoder(self.embedding(inputs), lengths)
        mask = padding_mask(lengths.to(inputs.device), inputs.size(1))
        return states, mask, torch.cat([h_n[0], h_n[1]], dim=1)

    def attention_keys(self, states: torch.Tensor) -> torch.Tensor:
        """What each decoder step compares its query with: the encoder's states themselves (dot
        product), or their projection ``W_k h`` (additive), computed once per input."""
        return self.additive.project_keys(states) if self.attention == "additive" else states

    def decode_step(self, previous: torch.Tensor, state: torch.Tensor, states: torch.Tensor,
                    mask: torch.Tensor, keys: Optional[torch.Tensor] = None,
                    ) -> tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]:
        """One step: previous ids (batch,) -> (logits (batch, vocab), new state, attention weights or None).

        ``keys`` is ``attention_keys(states)``, computed once by the caller (``None``: here).
        """
        state = self.decoder(self.embedding(previous), state)
        if not self.attention:
            return self.out(state), state, None
        keys = self.attention_keys(states) if keys is None else keys
        if self.attention == "additive":
            context, weights = self.additive(state, keys, states, mask)
        else:
            context, weights = dot_product_attention(state, keys, states, mask)
        return self.out(torch.tanh(self.combine(torch.cat([state, context], dim=1)))), state, weights

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor,
                teacher_forcing: bool = True) -> torch.Tensor:
        """Logits (batch, steps, vocab) for ``targets`` (batch, steps).

        With teacher forcing, step t reads the *true* character t - 1; without, it reads the model's
        own previous guess (its argmax), as at test time.
        """
        states, mask, state = self.encode(inputs, lengths)
        keys = self.attention_keys(states)  # once per input (additive attention projects them)
        previous = torch.full((inputs.size(0),), SOS_ID, dtype=torch.long, device=inputs.device)
        logits = []
        for t in range(targets.size(1)):
            step_logits, state, _ = self.decode_step(previous, state, states, mask, keys)
            logits.append(step_logits)
            previous = targets[:, t] if teacher_forcing else step_logits.argmax(dim=1)
        return torch.stack(logits, dim=1)

    @torch.no_grad()
    def greedy(self, inputs: torch.Tensor, lengths: torch.Tensor,
               steps: int = OUTPUT_LEN + 1) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Greedy decoding: each step feeds back its most likely character.

        Returns ids (batch, steps) and the attention weights (batch, steps, time), or None without attention.
        """
        states, mask, state = self.encode(inputs, lengths)
        keys = self.attention_keys(states)  # once per input (additive attention projects them)
        previous = torch.full((inputs.size(0),), SOS_ID, dtype=torch.long, device=inputs.device)
        ids, weights = [], []
        for _ in range(steps):
            logits, state, step_weights = self.decode_step(previous, state, states, mask, keys)
            previous = logits.argmax(dim=1)
            ids.append(previous)
            weights.append(step_weights)
        return torch.stack(ids, dim=1), (torch.stack(weights, dim=1) if self.attention else None)


def train_seq2seq(model: Seq2Seq, examples: Sequence[Example], vocab: CharVocab, epochs: int = 6,
                  batch_size: int = 64, lr: float = 3e-3, teacher_forcing: bool = True, seed: int = 0,
                  log: Optional[Callable[[str], None]] = print,
                  after_epoch: Optional[Callable[[int], None]] = None) -> list[float]:
    """Adam with a one-cycle schedule, cross-entropy over every output character; returns the loss of each epoch.

    The batches go to the model's device (``model.to("cuda")`` trains on the GPU).
    ``after_epoch(epoch)`` (if given) is called after each epoch, e.g. to measure the exact match so far.
    """
    device = device_of(model)
    rng = random.Random(seed)
    order = list(range(len(examples)))
    batches_per_epoch = (len(order) + batch_size - 1) // batch_size
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * batches_per_epoch,
                                                    pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    losses = []
    for epoch in range(1, epochs + 1):
        model.train()
        rng.shuffle(order)
        start, total = time.perf_counter(), 0.0
        for first in range(0, len(order), batch_size):
            inputs, lengths, targets = make_batch([examples[i] for i in order[first:first + batch_size]], vocab, device)
            logits = model(inputs, lengths, targets, teacher_forcing=teacher_forcing)
            loss = loss_fn(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            total += loss.item()
        losses.append(total / batches_per_epoch)
        if log is not None:
            log(f"epoch {epoch}/{epochs}: loss {losses[-1]:.4f} ({time.perf_counter() - start:.1f} s)")
        if after_epoch is not None:
            after_epoch(epoch)
    return losses


@torch.no_grad()
def predict_dates(model: Seq2Seq, texts: Sequence[str], vocab: CharVocab, batch_size: int = 500) -> list[str]:
    """Greedy translations of ``texts`` (computed on the model's device)."""
    model.eval()
    predictions = []
    for first in range(0, len(texts), batch_size):
        inputs, lengths = encode_inputs(texts[first:first + batch_size], vocab, device_of(model))
        ids, _ = model.greedy(inputs, lengths)
        predictions += [vocab.decode(row) for row in ids.tolist()]
    return predictions


def exact_match(model: Seq2Seq, examples: Sequence[Example], vocab: CharVocab) -> float:
    """The share of examples whose whole translation is right (one wrong digit makes it wrong)."""
    predictions = predict_dates(model, [text for text, _ in examples], vocab)
    return sum(p == iso for p, (_, iso) in zip(predictions, examples)) / len(examples)


def translate(model: Seq2Seq, text: str, vocab: CharVocab) -> str:
    """Translate one date, e.g. ``translate(model, "3 nov 2026", vocab) -> "2026-11-03"``."""
    return predict_dates(model, [text], vocab)[0]
