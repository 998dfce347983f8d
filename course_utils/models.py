"""The course's sentiment classifier: embedding -> recurrent layer -> pooling -> head (lesson 5).

One configurable class covers every model of lessons 5 and 6::

    ids (batch, time)                       token ids, right-padded with <pad> = 0
      -> Embedding        (batch, time, embedding_dim)
      -> Dropout          (same shape: single numbers of the embeddings are zeroed at random)
      -> PaddedRNN        output (batch, time, directions * hidden), h_n (layers * directions, batch, hidden)
      -> pooling          (batch, features): the last state, the mean / max of the output over time, or several
      -> Dropout + head   (batch,) one logit; sigmoid(logit) is the probability of "positive"
                          or (batch, C) with num_classes = C > 1: softmax(logits) is a distribution over C classes

The recurrent layer is ``course_utils.batching.PaddedRNN``: it reads right-padded, length-bucketed
batches and gives exactly the results of ``pack_padded_sequence``, much faster on a CPU.
Lesson 10 adds two encoders with the same interface (``course_utils.modern``): ``cell="mingru"``,
a recurrence trained with a parallel scan, and ``cell="transformer"``, self-attention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Optional

import torch
from torch import nn

from .attention import AttentionPooling
from .batching import PaddedRNN, masked_max, masked_mean, padding_mask
from .modern import PaddedMinGRU, PaddedTransformer
from .text import PAD_INDEX, UNK_INDEX

CELLS = ("rnn", "lstm", "gru")
ENCODERS = CELLS + ("mingru", "transformer")  # lesson 10: a parallel-scan recurrence and self-attention
POOLINGS = ("last", "mean", "max", "max+mean", "last+max+mean", "attention-pool")


def last_layer_state(h_n: torch.Tensor, num_directions: int) -> torch.Tensor:
    """The final state of the top layer, both directions concatenated: (batch, directions * hidden).

    ``h_n`` is (layers * directions, batch, hidden), ordered layer by layer and, inside a layer,
    forward then backward. So the top layer's forward state is ``h_n[-2]`` and its backward state
    ``h_n[-1]`` when bidirectional; ``h_n[-1]`` alone otherwise. The forward state has read the
    whole review (it equals ``output[i, length - 1, :hidden]``); the backward state has read it from
    the end back to the first token (it equals ``output[i, 0, hidden:]``).
    """
    if num_directions == 1:
        return h_n[-1]
    return torch.cat([h_n[-2], h_n[-1]], dim=1)


def pool(output: torch.Tensor, h_n: torch.Tensor, lengths: torch.Tensor, pooling: str, num_directions: int) -> torch.Tensor:
    """Turn the recurrent layer's results into one vector per review, ignoring padding.

    ``last``: the final states (see ``last_layer_state``); ``mean`` / ``max``: the mean / max of
    the output over the real time steps. A name with ``+`` concatenates its parts in that order:
    ``max+mean``, or ``last+max+mean`` (the "concat pooling" of ULMFiT: the final states sum the
    review up in order, the max keeps the strongest signal anywhere, the mean the overall tone).
    ``attention-pool`` has learned weights, so it is not here: see ``SentimentClassifier.features``.
    """
    if pooling not in POOLINGS or pooling == "attention-pool":
        raise ValueError(f"pooling must be one of {POOLINGS[:-1]}, got {pooling!r}.")
    parts = []
    for part in pooling.split("+"):
        if part == "last":
            parts.append(last_layer_state(h_n, num_directions))
        elif part == "mean":
            parts.append(masked_mean(output, lengths))
        else:
            parts.append(masked_max(output, lengths))
    return torch.cat(parts, dim=1)


@dataclass
class ModelConfig:
    """Every choice that defines a ``SentimentClassifier``; saved with checkpoints to rebuild it.

    ``head_hidden`` adds a hidden layer to the head (Linear -> ReLU -> Linear), as the classic
    tutorials do; ``None`` gives a single Linear layer. ``dropout`` is applied between stacked
    recurrent layers and before the head; ``embedding_dropout`` to the embedded tokens;
    ``word_dropout`` replaces that fraction of the words by ``<unk>`` while training.

    ``num_classes`` is the number of outputs of the head. 1 (the default): one logit per review
    for two classes, trained with ``BCEWithLogitsLoss`` (lessons 5-7). C > 1: C logits per review,
    one per class, trained with ``CrossEntropyLoss`` (lesson 8: the 8 star ratings).

    ``cell="transformer"`` (lesson 10) is a Transformer encoder of ``num_layers`` layers whose
    width is ``embedding_dim``, with ``num_heads`` attention heads and a feed-forward layer of
    ``hidden_size``; ``dropout`` is also its dropout inside the layers. ``cell="mingru"`` is the
    minGRU, used as the other recurrent cells are.
    """

    vocab_size: int
    embedding_dim: int = 100
    hidden_size: int = 128
    cell: str = "lstm"
    num_layers: int = 1
    bidirectional: bool = False
    pooling: str = "last"
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    word_dropout: float = 0.0
    head_hidden: Optional[int] = None
    num_classes: int = 1  # added in lesson 8; checkpoints saved without it load as 1
    num_heads: int = 4  # added in lesson 10: attention heads of a Transformer (cell="transformer")

    def __post_init__(self) -> None:
        if self.cell not in ENCODERS:
            raise ValueError(f"cell must be one of {ENCODERS}, got {self.cell!r}.")
        if self.cell == "transformer":
            if "last" in self.pooling.split("+"):
                raise ValueError("a Transformer has no final state: pool with 'mean', 'max', 'max+mean' or "
                                 "'attention-pool'.")
            if self.bidirectional or self.embedding_dim % max(self.num_heads, 1):
                raise ValueError("a Transformer reads both ways already (bidirectional=False), and its width, "
                                 f"embedding_dim={self.embedding_dim}, must be a multiple of num_heads={self.num_heads}.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}.")
        if self.vocab_size < 2 or self.embedding_dim < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("vocab_size must be at least 2 and every size at least 1.")
        if self.num_classes < 1:
            raise ValueError(f"num_classes must be at least 1 (1 = one logit for two classes), got {self.num_classes}.")
        for name in ("dropout", "embedding_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")

    def to_dict(self) -> dict:
        return asdict(self)


class SentimentClassifier(nn.Module):
    """Embedding -> (Bi)RNN / LSTM / GRU -> pooling -> head, giving one logit per review.

    ``forward(ids, lengths)`` takes right-padded ids (batch, time) and the true lengths (batch,)
    and returns logits (batch,). ``torch.sigmoid(logits)`` is the probability of "positive".
    With ``num_classes=C`` > 1 it returns logits (batch, C) instead, and
    ``torch.softmax(logits, dim=1)`` gives each review's probability of each class.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        self.num_directions = 2 if c.bidirectional else 1
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=PAD_INDEX)
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        self.rnn = _encoder(c)
        width = c.embedding_dim if c.cell == "transformer" else c.hidden_size * self.num_directions
        features = width * len(c.pooling.split("+"))
        # pooling="attention-pool": one learned query attends over the real steps (lesson 7)
        self.attention = AttentionPooling(features) if c.pooling == "attention-pool" else None
        self.dropout = nn.Dropout(c.dropout)
        if c.head_hidden is None:
            self.head = nn.Linear(features, c.num_classes)
        else:
            self.head = nn.Sequential(nn.Linear(features, c.head_hidden), nn.ReLU(),
                                      nn.Linear(c.head_hidden, c.num_classes))

    def encode(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embedding + recurrent layer: (output, h_n) as ``PaddedRNN`` returns them."""
        if self.training and self.config.word_dropout > 0:
            dropped = torch.rand(ids.shape, device=ids.device) < self.config.word_dropout
            ids = ids.masked_fill(dropped & (ids != PAD_INDEX), UNK_INDEX)
        embedded = self.embedding_dropout(self.embedding(ids))
        return self.rnn(embedded, lengths)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One vector per review (batch, features): what the head classifies."""
        output, h_n = self.encode(ids, lengths)
        if self.attention is not None:
            return self.attention(output, padding_mask(lengths.to(output.device), output.size(1)))[0]
        return pool(output, h_n, lengths, self.config.pooling, self.num_directions)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.dropout(self.features(ids, lengths)))  # (batch, num_classes)
        return self._one_logit_as_vector(logits)

    def _one_logit_as_vector(self, logits: torch.Tensor) -> torch.Tensor:
        """(batch, 1) -> (batch,) for a two-class model, as ``BCEWithLogitsLoss`` wants; (batch, C) unchanged."""
        return logits.squeeze(1) if self.config.num_classes == 1 else logits

    @torch.no_grad()
    def prefix_logits(self, ids: torch.Tensor) -> torch.Tensor:
        """The logit after each prefix of ONE review ``ids`` (time,): what the model would say
        if the review stopped after word 1, 2, ..., n. Returns (time,), or (time, C) with
        ``num_classes=C`` > 1. Call ``model.eval()`` first.

        A one-direction model reads left to right, so its output at step t *is* the state of the
        prefix ending at t: one pass gives every prefix (a running mean / max for those poolings).
        A bidirectional model's backward direction starts at the end of the text, so each prefix
        needs its own pass: the prefixes are batched (cost grows with the square of the length).
        So does a Transformer's (lesson 10): every position attends to the whole text.
        """
        ids = ids.view(-1)
        n = ids.numel()
        if n == 0:
            raise ValueError("prefix_logits() needs at least one token.")
        if self.num_directions == 1 and self.attention is None and self.config.cell != "transformer":
            output, _ = self.encode(ids.unsqueeze(0), torch.tensor([n]))
            output = output[0]  # (time, hidden): output[t] is the top layer's state after t + 1 tokens
            steps = torch.arange(1, n + 1, device=output.device, dtype=output.dtype).unsqueeze(1)
            running = {  # each pooling over the first t + 1 steps, for every t at once
                "last": output,
                "mean": output.cumsum(0) / steps,
                "max": output.cummax(0).values,
            }
            pooled = torch.cat([running[part] for part in self.config.pooling.split("+")], dim=1)
            return self._one_logit_as_vector(self.head(pooled))
        logits = []
        for start in range(1, n + 1, 64):  # 64 prefixes at a time keeps memory small
            lengths = torch.arange(start, min(start + 64, n + 1))
            batch = ids[: lengths[-1]].unsqueeze(0).expand(len(lengths), -1)
            logits.append(self(batch * padding_mask(lengths.to(ids.device), batch.size(1)), lengths))
        return torch.cat(logits)


def _encoder(c: ModelConfig) -> nn.Module:
    """The layer that reads the embedded review: ``(x, lengths) -> (output, h_n)`` for every cell."""
    if c.cell == "transformer":
        return PaddedTransformer(c.embedding_dim, c.num_heads, c.hidden_size, c.num_layers, c.dropout)
    if c.cell == "mingru":
        return PaddedMinGRU(c.embedding_dim, c.hidden_size, c.num_layers, c.bidirectional, c.dropout)
    return PaddedRNN(c.cell, c.embedding_dim, c.hidden_size, c.num_layers, c.bidirectional, c.dropout)


def build_model(vocab_size: int, **options) -> SentimentClassifier:
    """Shortcut: ``build_model(len(vocab), cell="gru", bidirectional=True, pooling="max")``."""
    return SentimentClassifier(ModelConfig(vocab_size=vocab_size, **options))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable numbers in the model."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
