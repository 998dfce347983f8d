"""A word-level LSTM language model on review text: streams, truncated BPTT, perplexity, generation (lesson 8).

A language model reads text one word at a time and, after every word, gives a probability to
every word that could come next. Trained on plain text (no labels), it learns what reviews look
like; its embedding and LSTM weights can then start a sentiment classifier (``copy_into_classifier``,
lesson 9).

The pieces, in the order lesson 8 builds them::

    reviews -> token lists -> make_stream      one long 1-D tensor of ids, <eos> after each review
            -> batchify                        (batch, steps): batch parallel rows of the stream
            -> next_word_batch                 inputs data[:, s:s+bptt], targets shifted by one word
            -> LanguageModel.loss              mean cross-entropy per word, in nats
            -> tbptt_step / train_lm           truncated backpropagation through time, state carried
            -> evaluate_lm, perplexity         exp(mean loss): "as unsure as a uniform choice among N words"
            -> unigram/bigram_perplexity       what counting gets, scored on the same words (scored_pairs)
            -> generate                        sample the next word again and again (temperature, top-k)

The vocabulary is the classifier's own (``course_utils.splits.prepare_imdb``: the 20,000 training
reviews of the fixed split, min_freq 5) with ``<eos>`` at id 2 (``lm_vocab``: a frequent token
needs a small id for the adaptive softmax); embedding rows are copied into a classifier word by
word. The language model trains on the text of those 20,000 reviews and of the 50,000 unlabeled
ones, never on the test split. ``LMRecipe`` says how a model is trained (``LESSON8`` is lesson
8's); ``load_or_train`` gives lesson 9 lesson 8's model, or trains it when it is missing.

Command line (errors are one line on stderr)::

    python -m course_utils.lm train --minutes 10          # saves data/checkpoints/lm.pt, as lesson 8 does
    python -m course_utils.lm generate "this movie is" --temperature 0.8 --top-k 40
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import torch
from torch import nn
from tqdm.auto import tqdm

from .data import IMDBDataError, default_data_dir, load_unlabeled
from .text import EOS_TOKEN, PAD_INDEX, UNK_INDEX, Vocab, tokenize, tokenize_all
from .cli import OneLineParser, positive_float, positive_int
from .splits import ImdbData, prepare_imdb
from .training import get_device, make_scheduler, set_seed

OUTPUTS = ("full", "tied", "adaptive")

State = tuple[torch.Tensor, torch.Tensor]  # an LSTM's (h, c), each (num_layers, batch, hidden)


# --------------------------------------------------------------------------------------------
# Text as one long stream of ids
# --------------------------------------------------------------------------------------------


def lm_vocab(vocab: Vocab, max_size: Optional[int] = None) -> Vocab:
    """The language model's vocabulary: ``<pad>``, ``<unk>``, ``<eos>`` (end of review), then ``vocab``'s words.

    ``vocab`` is a classifier's (``Vocab.build``: the most frequent words first), so the words keep
    their order. ``<eos>`` goes in front, at id 2: it ends every review (70,000 times in the
    training text, more often than all but a few dozen words), and the adaptive softmax
    (``LMConfig``) treats small ids as the frequent ones: appended last, ``<eos>`` would sit in
    its rarest cluster. ``max_size`` keeps only the ``max_size`` first ids (the rarer words become
    ``<unk>``): a smaller output layer, at the price of more ``<unk>`` in the text.

    Every word's id is one more than in ``vocab``: ``copy_into_classifier`` copies embedding rows
    word by word, so a classifier on ``vocab`` can still take the language model's rows.
    """
    if EOS_TOKEN in vocab:
        raise ValueError(f"This vocabulary already holds {EOS_TOKEN!r}: it is a language model's vocabulary already.")
    if max_size is not None and max_size < 4:
        raise ValueError(f"max_size must leave room for <pad>, <unk>, {EOS_TOKEN} and a word, got {max_size}.")
    tokens = [*vocab.itos[:2], EOS_TOKEN, *vocab.itos[2:]]
    return Vocab(tokens[:max_size])


def eos_index(vocab: Vocab) -> int:
    """The id of ``<eos>``; a clear error for a vocabulary without it (a classifier's)."""
    if EOS_TOKEN not in vocab:
        raise ValueError(f"The vocabulary has no {EOS_TOKEN!r}: make a language model's vocabulary with lm_vocab(vocab).")
    return vocab.stoi[EOS_TOKEN]


def stream_from_ids(id_lists: Sequence[Sequence[int]], eos_id: int, backward: bool = False) -> torch.Tensor:
    """Concatenate reviews given as id lists into one 1-D LongTensor, ``eos_id`` after each one.

    ``backward=True`` reverses each review first (not the order of the reviews): a backward
    language model reads every review from its last word to its first.
    """
    if len(id_lists) == 0:
        raise ValueError("There are no reviews to make a stream from.")
    parts = []
    for ids in id_lists:
        ids = list(ids)
        if backward:
            ids.reverse()
        parts.append(torch.tensor(ids + [eos_id], dtype=torch.long))
    return torch.cat(parts)


def make_stream(token_lists: Sequence[Sequence[str]], vocab: Vocab, backward: bool = False) -> torch.Tensor:
    """Every review's token ids followed by the ``<eos>`` id, all concatenated: a 1-D LongTensor.

    >>> vocab = lm_vocab(Vocab(["<pad>", "<unk>", "good", "film", "bad"]))  # <eos> 2, good 3, film 4, bad 5
    >>> make_stream([["good", "film"], ["bad"]], vocab)                    # good film <eos> bad <eos>
    tensor([3, 4, 2, 5, 2])

    A language model does not need reviews of equal length: it reads the stream as one long text,
    and ``<eos>`` tells it where a review ends (after ``<eos>`` it learns how reviews begin).
    Unknown words become ``<unk>``. ``backward=True`` reverses each review (see ``stream_from_ids``).
    """
    eos = eos_index(vocab)
    if len(token_lists) == 0:
        raise ValueError("make_stream() got no reviews: give it a list of token lists.")
    if isinstance(token_lists[0], str):
        raise ValueError("make_stream() expects a list of token lists (e.g. [tokenize(text) for text in texts]), "
                         "not a list of strings.")
    return stream_from_ids([vocab.encode(tokens) for tokens in token_lists], eos, backward)


def batchify(stream: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D stream into ``batch_size`` parallel rows: a (batch_size, steps) tensor.

    Row 0 is the first ``steps`` ids of the stream, row 1 the next ``steps``, and so on; the
    remainder (fewer than ``batch_size`` ids) is dropped. Training then walks along the rows
    from left to right, so each row is a continuous text and the LSTM state of row b at the end
    of one chunk is the right state to start row b's next chunk with (as in PyTorch's
    word_language_model example, which is time-first; here batch-first, as the course's models).
    """
    if stream.dim() != 1:
        raise ValueError(f"batchify() expects a 1-D stream, got a tensor of shape {tuple(stream.shape)}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    steps = stream.numel() // batch_size
    if steps < 2:
        raise ValueError(f"A stream of {stream.numel()} ids is too short for {batch_size} rows: each row needs "
                         "at least 2 ids (one input, one target). Use a smaller batch_size or more text.")
    return stream[: batch_size * steps].view(batch_size, steps)


def next_word_batch(data: torch.Tensor, start: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The chunk ``data[:, start:start + bptt]`` and its targets, the same words shifted by one.

    ``targets[:, t]`` is the word after ``inputs[:, t]``: inside the chunk it equals
    ``inputs[:, t + 1]``, and the last target is the first word after the chunk. The last chunk
    of the data is shorter, because its last word has no next word to predict.
    """
    if bptt < 1:
        raise ValueError(f"bptt must be at least 1, got {bptt}.")
    length = min(bptt, data.size(1) - 1 - start)
    if start < 0 or length < 1:
        raise ValueError(f"start must be between 0 and {data.size(1) - 2} (each input needs a next word), got {start}.")
    inputs = data[:, start : start + length]
    targets = data[:, start + 1 : start + 1 + length]
    return inputs, targets


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------


@dataclass
class LMConfig:
    """Every choice that defines a ``LanguageModel``; saved with checkpoints to rebuild it.

    ``output`` is how the hidden state becomes a distribution over the vocabulary:

    * ``"full"``: one ``nn.Linear(hidden, vocab)``: a score for every word, then a softmax;
    * ``"tied"``: the same, but its weight matrix *is* the embedding matrix (a word's input and
      output vectors are shared; a ``Linear(hidden, embedding_dim)`` projection comes first when
      the sizes differ): millions of parameters fewer, often a better model;
    * ``"adaptive"``: ``nn.AdaptiveLogSoftmaxWithLoss``: the ``cutoffs[0]`` most frequent words
      and one entry per cluster of rarer words get a full score; a rare word's probability is
      P(its cluster) * P(the word | the cluster), computed with a smaller hidden vector. Most
      words of a text are frequent, so most of the time only the small head is computed.

    Cutoffs at or above the vocabulary size are clipped to ``vocab_size - 1``. ``dropout`` is
    applied between stacked LSTM layers and to the LSTM's output; ``embedding_dropout`` to the
    embedded words.
    """

    vocab_size: int
    embedding_dim: int = 100
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.0
    embedding_dropout: float = 0.0
    output: str = "adaptive"
    cutoffs: tuple[int, ...] = (2000, 10000)

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}.")
        if self.vocab_size < 2 or self.embedding_dim < 1 or self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("vocab_size must be at least 2 and every size at least 1.")
        for name in ("dropout", "embedding_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}.")
        self.cutoffs = tuple(int(c) for c in self.cutoffs)  # a list read back from a checkpoint -> tuple
        if not self.cutoffs or any(c < 1 for c in self.cutoffs) or list(self.cutoffs) != sorted(set(self.cutoffs)):
            raise ValueError(f"cutoffs must be increasing positive integers, e.g. (2000, 10000), got {self.cutoffs}.")
        if self.output == "adaptive":
            clusters = len(self.clipped_cutoffs())
            if self.hidden_size // 4**clusters < 1:
                raise ValueError(f"With {clusters} clusters the adaptive softmax gives the rarest cluster "
                                 f"hidden_size // 4**{clusters} = 0 features: use hidden_size >= {4**clusters} "
                                 "or fewer cutoffs.")

    def clipped_cutoffs(self) -> list[int]:
        """The cutoffs the adaptive softmax uses: each at most ``vocab_size - 1``, without repeats."""
        return sorted({min(c, self.vocab_size - 1) for c in self.cutoffs})

    def to_dict(self) -> dict:
        config = asdict(self)
        config["cutoffs"] = list(self.cutoffs)
        return config


class LanguageModel(nn.Module):
    """Embedding -> LSTM -> output layer: after each word, a distribution over the next word.

    The submodules ``embedding`` (``nn.Embedding``, ``padding_idx=0``) and ``rnn`` (``nn.LSTM``,
    ``batch_first=True``) have the sizes of a ``SentimentClassifier``'s, so a trained language
    model can hand them over (``copy_into_classifier``). Streams never hold ``<pad>``; the
    padding row is there only so the shapes match.

    * ``forward(ids, state)`` -> ``(hidden, state)``: hidden (batch, time, hidden_size);
    * ``loss(ids, targets, state)`` -> ``(mean cross-entropy per target word in nats, state)``;
    * ``log_probs(hidden)`` -> log-probabilities of every word, (..., vocab_size).
    """

    def __init__(self, config: LMConfig):
        super().__init__()
        self.config = c = config
        self.embedding = nn.Embedding(c.vocab_size, c.embedding_dim, padding_idx=PAD_INDEX)
        self.embedding_dropout = nn.Dropout(c.embedding_dropout)
        # nn.LSTM's dropout acts only between layers (and warns when there is a single layer).
        self.rnn = nn.LSTM(c.embedding_dim, c.hidden_size, c.num_layers, batch_first=True,
                           dropout=c.dropout if c.num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(c.dropout)
        self.projection: Optional[nn.Linear] = None
        self.decoder: Optional[nn.Linear] = None
        self.adaptive: Optional[nn.AdaptiveLogSoftmaxWithLoss] = None
        if c.output == "full":
            self.decoder = nn.Linear(c.hidden_size, c.vocab_size)
        elif c.output == "tied":
            if c.hidden_size != c.embedding_dim:
                self.projection = nn.Linear(c.hidden_size, c.embedding_dim)
            self.decoder = nn.Linear(c.embedding_dim, c.vocab_size)
            self.decoder.weight = self.embedding.weight  # one matrix, used twice: input and output
        else:
            self.adaptive = nn.AdaptiveLogSoftmaxWithLoss(c.hidden_size, c.vocab_size, c.clipped_cutoffs(),
                                                          div_value=4.0, head_bias=True)

    def init_state(self, batch_size: int) -> State:
        """Zeros for (h, c): the state at the start of a text."""
        weight = self.embedding.weight
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(self, ids: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        """ids (batch, time) -> (hidden (batch, time, hidden_size), new state). ``state=None``: zeros."""
        embedded = self.embedding_dropout(self.embedding(ids))
        hidden, state = self.rnn(embedded, state)
        return self.dropout(hidden), state

    def _logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Scores of every word for the full and tied output layers."""
        if self.projection is not None:
            hidden = self.projection(hidden)
        return self.decoder(hidden)

    def log_probs(self, hidden: torch.Tensor) -> torch.Tensor:
        """The log-probability of every word of the vocabulary: (..., hidden_size) -> (..., vocab_size).

        For the adaptive softmax this computes every cluster (slow, but the full distribution is
        what generation and the comparison of output layers need); training uses ``loss``.
        """
        if self.adaptive is None:
            return torch.log_softmax(self._logits(hidden), dim=-1)
        flat = self.adaptive.log_prob(hidden.reshape(-1, hidden.size(-1)))
        return flat.view(*hidden.shape[:-1], self.config.vocab_size)

    def loss(self, ids: torch.Tensor, targets: torch.Tensor, state: Optional[State] = None) -> tuple[torch.Tensor, State]:
        """Mean cross-entropy (nats) of predicting ``targets`` (batch, time) after ``ids``; and the new state.

        Equals ``-log_probs(hidden).gather(-1, targets)`` averaged over every target word, but the
        adaptive softmax computes only the clusters the targets fall into.
        """
        hidden, state = self(ids, state)
        flat_hidden = hidden.reshape(-1, hidden.size(-1))
        flat_targets = targets.reshape(-1)
        if self.adaptive is not None:
            return self.adaptive(flat_hidden, flat_targets).loss, state
        return nn.functional.cross_entropy(self._logits(flat_hidden), flat_targets), state


def build_lm(vocab_size: int, **options) -> LanguageModel:
    """Shortcut: ``build_lm(len(vocab), hidden_size=128, output="tied")``."""
    return LanguageModel(LMConfig(vocab_size=vocab_size, **options))


# --------------------------------------------------------------------------------------------
# Training: truncated backpropagation through time
# --------------------------------------------------------------------------------------------


def detach_state(state: Optional[State]) -> Optional[State]:
    """The same (h, c) values, cut loose from the computation graph that made them."""
    if state is None:
        return None
    return tuple(s.detach() for s in state)


def tbptt_step(
    model: LanguageModel,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    state: Optional[State],
    optimizer: torch.optim.Optimizer,
    clip: Optional[float] = 0.25,
) -> tuple[float, State]:
    """One step of truncated backpropagation through time; returns (loss, new state).

    The state carried in from the previous chunk is **detached** first. Its *values* still tell
    the LSTM what came before (so the model reads the rows as one continuous text), but the graph
    behind them is cut: backward() stops at the start of this chunk. Without the detach, the
    graph of chunk n would reach back through every earlier chunk: backward() would try to go
    through chunk n-1 again, whose graph the previous backward() has already freed (PyTorch
    raises "Trying to backward through the graph a second time"); and if it were kept, memory
    and time per step would grow with the length of the whole text. Gradients therefore flow
    over at most ``inputs.size(1)`` steps (the bptt length).

    Then the usual step: forward, loss, zero_grad, backward, clip the gradient norm (an LSTM's
    gradients can still explode, lesson 1), optimizer step. The returned state is still attached
    to this chunk's graph; the next call detaches it.
    """
    state = detach_state(state)
    loss, state = model.loss(inputs, targets, state)
    optimizer.zero_grad()
    loss.backward()
    if clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item(), state


@torch.no_grad()
def evaluate_lm(model: LanguageModel, data: torch.Tensor, bptt: int = 64) -> float:
    """Mean loss per predicted word (nats) over the whole of ``data`` (batch, steps).

    No gradients, dropout off (``eval()``), and the state carried from chunk to chunk, so every
    word is predicted with all the text before it in its row, as in training. Each chunk's mean
    is weighted by its number of words (the last chunk is shorter).
    """
    model.eval()
    device = next(model.parameters()).device
    total, count, state = 0.0, 0, None
    for start in range(0, data.size(1) - 1, bptt):
        inputs, targets = next_word_batch(data, start, bptt)
        loss, state = model.loss(inputs.to(device), targets.to(device), state)
        total += loss.item() * targets.numel()
        count += targets.numel()
    return total / count


def perplexity(loss: float) -> float:
    """exp(mean loss in nats): the model is as unsure as a uniform choice among that many words.

    A model that gives every word of a vocabulary of N words the same probability 1/N has loss
    log N, so perplexity N; a model that is always certain and right has perplexity 1.
    """
    return math.exp(loss) if loss < 700 else math.inf  # math.exp overflows above ~709


@dataclass
class LMHistory:
    """What ``train_lm`` measured."""

    tokens: int = 0  # target words trained on
    seconds: float = 0.0  # training time; validation and on_time callbacks are not counted
    train_loss: list = field(default_factory=list)  # mean loss of each logged interval
    train_tokens: list = field(default_factory=list)  # tokens trained at the end of each interval
    valid_loss: list = field(default_factory=list)  # after each epoch, and when training stopped early
    valid_tokens: list = field(default_factory=list)  # tokens trained at each validation
    epochs: int = 0  # complete passes over the training data
    stopped_early: bool = False  # max_seconds ran out

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "tokens_per_second": self.tokens_per_second}


def _chunk_starts(data: torch.Tensor, bptt: int, progress: bool, desc: str):
    starts = range(0, data.size(1) - 1, bptt)
    if not progress:
        return starts
    return tqdm(starts, desc=desc, leave=False, mininterval=1.0)


def train_lm(
    model: LanguageModel,
    train_data: torch.Tensor,
    valid_data: Optional[torch.Tensor] = None,
    bptt: int = 64,
    lr: float = 3e-3,
    clip: Optional[float] = 0.25,
    epochs: Optional[int] = 1,
    max_seconds: Optional[float] = None,
    log: Optional[Callable[[str], None]] = print,
    on_time: Optional[Callable[[LanguageModel, float], None]] = None,
    progress: bool = False,
    device: Optional[torch.device] = None,
    log_every: int = 200,
    weight_decay: float = 0.0,
    schedule: Optional[str] = None,
) -> LMHistory:
    """Train with truncated BPTT on batchified data (``batchify``); returns an ``LMHistory``.

    Each epoch walks the rows from left to right in chunks of ``bptt`` words (``tbptt_step``),
    carrying the LSTM state from chunk to chunk; the state starts at zeros at every epoch.
    ``epochs=None`` keeps cycling over the data until ``max_seconds`` is spent; with
    ``max_seconds`` the clock is checked between chunks, so training stops within one chunk
    of it. ``valid_data`` is evaluated (``evaluate_lm``) after every epoch, and once more when
    the time ran out mid-epoch (with ``epochs=None``: only at the end).

    ``log`` gets a line every ``log_every`` chunks (the mean training loss since the last line)
    and after each validation; ``on_time(model, seconds_so_far)`` is called after every chunk,
    e.g. to keep snapshots of the weights after 1, 2, 5 minutes (its own time is not counted).
    Optimizer: AdamW with ``lr`` and ``weight_decay``; ``schedule="onecycle"`` (lesson 6's
    ``training.make_scheduler``: a short warm-up to ``lr``, then a decay to nearly zero, stepped
    after every chunk over all the chunks of ``epochs`` epochs) instead of a constant rate. The
    model is trained on ``device`` (default: where it is) and left in ``eval()`` mode.
    """
    if epochs is None and max_seconds is None:
        raise ValueError("train_lm() needs epochs or max_seconds (or both), else it would never stop.")
    if schedule is not None and epochs is None:
        raise ValueError("A schedule needs to know how many chunks there will be: give epochs.")
    if epochs is not None and epochs < 1:
        raise ValueError(f"epochs must be at least 1 (or None with max_seconds), got {epochs}.")
    if train_data.dim() != 2 or train_data.size(1) < 2:
        raise ValueError("train_data must be (batch, steps) with steps >= 2: make it with batchify(stream, batch_size).")
    device = device or next(model.parameters()).device
    model.to(device)
    train_data = train_data.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    chunks_per_epoch = len(range(0, train_data.size(1) - 1, bptt))
    scheduler = make_scheduler(optimizer, schedule, lr, (epochs or 1) * chunks_per_epoch)
    history = LMHistory()
    interval_loss, interval_tokens, chunks = 0.0, 0, 0

    def validate() -> None:
        if valid_data is None:
            return
        loss = evaluate_lm(model, valid_data, bptt)
        history.valid_loss.append(loss)
        history.valid_tokens.append(history.tokens)
        if log is not None:
            log(f"{history.tokens:,} tokens, {history.seconds:.0f} s: valid loss {loss:.3f} ppl {perplexity(loss):.1f}")

    epoch = 0
    while epochs is None or epoch < epochs:
        model.train()
        state = None  # zeros: each epoch starts at the beginning of every row
        starts = _chunk_starts(train_data, bptt, progress, f"epoch {epoch + 1}")
        for start in starts:
            began = time.perf_counter()
            inputs, targets = next_word_batch(train_data, start, bptt)
            loss, state = tbptt_step(model, inputs, targets, state, optimizer, clip)
            if scheduler is not None:
                scheduler.step()
            history.seconds += time.perf_counter() - began
            history.tokens += targets.numel()
            interval_loss += loss * targets.numel()
            interval_tokens += targets.numel()
            chunks += 1
            if chunks % log_every == 0:
                history.train_loss.append(interval_loss / interval_tokens)
                history.train_tokens.append(history.tokens)
                interval_loss, interval_tokens = 0.0, 0
                if log is not None:
                    log(f"{history.tokens:,} tokens, {history.seconds:.0f} s: train loss {history.train_loss[-1]:.3f} "
                        f"ppl {perplexity(history.train_loss[-1]):.1f} ({history.tokens_per_second:,.0f} tokens/s)")
            if on_time is not None:
                on_time(model, history.seconds)
                model.train()  # in case the callback evaluated the model
            if max_seconds is not None and history.seconds >= max_seconds:
                history.stopped_early = True
                break
        if progress:
            starts.close()  # the bar disappears, also when max_seconds stopped the epoch
        if history.stopped_early:
            break
        epoch += 1
        history.epochs = epoch
        if epochs is not None:
            validate()
    if interval_tokens > 0:  # the last, partial interval
        history.train_loss.append(interval_loss / interval_tokens)
        history.train_tokens.append(history.tokens)
    if history.stopped_early or epochs is None:
        validate()
    model.eval()
    return history


# --------------------------------------------------------------------------------------------
# Baselines: counting words
# --------------------------------------------------------------------------------------------


def _check_streams(train_stream: torch.Tensor, eval_stream: torch.Tensor, vocab_size: int) -> None:
    if train_stream.dim() != 1 or eval_stream.dim() not in (1, 2):
        raise ValueError("The baselines count a 1-D training stream (make_stream) and score a 1-D stream or "
                         "batchified rows (batchify).")
    if train_stream.numel() < 2 or eval_stream.size(-1) < 2:
        raise ValueError("Each stream needs at least 2 ids (the first word is never predicted, a pair needs two words).")
    for stream in (train_stream, eval_stream):
        if stream.numel() and (stream.min() < 0 or stream.max() >= vocab_size):
            raise ValueError(f"The streams hold ids outside 0 .. {vocab_size - 1}: is vocab_size right?")


def scored_pairs(eval_data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(previous word, word) of every word a model predicts in ``eval_data``, as two 1-D tensors.

    A 1-D stream: every word but the first. Batchified rows (batch, steps), as ``evaluate_lm``
    reads them: every word but the first of each row. So the baselines can be scored on exactly
    the words the language model is scored on.
    """
    if eval_data.dim() == 1:
        return eval_data[:-1], eval_data[1:]
    return eval_data[:, :-1].reshape(-1), eval_data[:, 1:].reshape(-1)


def unigram_probabilities(train_stream: torch.Tensor, vocab_size: int, smoothing: float = 1.0) -> torch.Tensor:
    """P(w) = (count(w) + k) / (N + k * V): add-k smoothed word frequencies (float64, sums to 1).

    ``k = smoothing`` is added to every count, so a word never seen in training keeps a small
    probability instead of 0 (which would make the perplexity infinite).
    """
    if smoothing <= 0:
        raise ValueError(f"smoothing must be > 0 (0 gives unseen words probability 0), got {smoothing}.")
    counts = torch.bincount(train_stream.cpu(), minlength=vocab_size).double()
    return (counts + smoothing) / (counts.sum() + smoothing * vocab_size)


def unigram_perplexity(
    train_stream: torch.Tensor, eval_stream: torch.Tensor, vocab_size: int, smoothing: float = 1.0
) -> float:
    """Perplexity of the add-k unigram model (``unigram_probabilities``) on ``eval_stream``.

    The unigram ignores the words before: it always predicts the same distribution. The words
    scored are those of ``scored_pairs`` (``eval_stream[1:]`` for a stream; every word but the
    first of each row for batchified rows, as ``evaluate_lm`` scores them), the same ones the
    bigram model predicts, so every model is measured on exactly the same words.
    """
    _check_streams(train_stream, eval_stream, vocab_size)
    p = unigram_probabilities(train_stream, vocab_size, smoothing)
    _, words = scored_pairs(eval_stream.cpu())
    return perplexity(-p[words].log().mean().item())


def bigram_perplexity(
    train_stream: torch.Tensor,
    eval_stream: torch.Tensor,
    vocab_size: int,
    mix: float = 0.7,
    smoothing: float = 1.0,
) -> float:
    """Perplexity on ``eval_stream`` (its ``scored_pairs``) of a bigram model interpolated with the unigram::

        P(w | v) = mix * count(v, w) / count(v)  +  (1 - mix) * P_unigram(w)

    ``count(v, w)`` is how often w follows v in ``train_stream``, ``count(v)`` how often v is
    followed by anything; ``P_unigram`` is the add-k unigram (``unigram_probabilities``). The
    unigram share keeps a probability for pairs never seen in training. A previous word never
    seen in training (count(v) = 0) has no bigram estimate: P(w | v) = P_unigram(w).

    The pair counts are not stored in a V x V table (30,000^2 numbers): each pair (v, w) becomes
    one number v * V + w, and ``torch.unique`` counts those; ``searchsorted`` finds them again.
    """
    _check_streams(train_stream, eval_stream, vocab_size)
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"mix must be between 0 and 1, got {mix}.")
    train, evaluated = train_stream.cpu().long(), eval_stream.cpu().long()
    p_unigram = unigram_probabilities(train, vocab_size, smoothing)
    pair_keys, pair_counts = torch.unique(train[:-1] * vocab_size + train[1:], return_counts=True)
    previous_counts = torch.bincount(train[:-1], minlength=vocab_size).double()

    previous, word = scored_pairs(evaluated)
    keys = previous * vocab_size + word
    position = torch.searchsorted(pair_keys, keys).clamp(max=len(pair_keys) - 1)  # where each pair would be
    found = pair_keys[position] == keys
    pair = torch.where(found, pair_counts[position].double(), 0.0)  # count(v, w), 0 for unseen pairs
    seen = previous_counts[previous] > 0
    p_bigram = torch.where(seen, pair / previous_counts[previous].clamp(min=1), 0.0)
    p = torch.where(seen, mix * p_bigram + (1 - mix) * p_unigram[word], p_unigram[word])
    return perplexity(-p.log().mean().item())


# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------


def next_word_probabilities(
    log_probs_or_logits: torch.Tensor, temperature: float = 1.0, top_k: Optional[int] = None
) -> torch.Tensor:
    """Turn scores over the vocabulary (last dimension) into the distribution to sample from.

    * ``temperature`` divides the scores *before* the softmax: below 1 it sharpens the
      distribution (towards always the most likely word), above 1 it flattens it (towards a
      uniform choice). Log-probabilities and logits give the same result: they differ by a
      constant, which the softmax removes.
    * ``top_k`` keeps only the k most likely words and renormalises: no rare, odd word can be
      drawn. ``top_k=1`` is greedy decoding.
    """
    check_sampling(temperature, top_k)
    scores = log_probs_or_logits / temperature
    if top_k is not None and top_k < scores.size(-1):
        kth_best = scores.topk(top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth_best, float("-inf"))
    return torch.softmax(scores, dim=-1)


def check_sampling(temperature: float, top_k: Optional[int]) -> None:
    """Raise a clear ``ValueError`` for a temperature <= 0 or a top_k < 1."""
    if not isinstance(temperature, (int, float)) or not temperature > 0 or math.isinf(temperature):
        raise ValueError(f"temperature must be a number > 0 (1.0 samples from the model as it is), got {temperature!r}.")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be None or an integer >= 1, got {top_k!r}.")


_NO_SPACE_BEFORE = {",", ".", "!", "?", ";", ":", ")", "]", "%", "...", "'", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}


def detokenize(tokens: Sequence[str]) -> str:
    """Join tokens with spaces, but with no space before closing punctuation (``, . ! ? ) 's n't``...).

    The course's tokenizer keeps no punctuation, so for its tokens this is mostly a plain join;
    the rule matters for tokenizers that split "don't" into "do" + "n't" or keep commas.
    """
    text = ""
    for token in tokens:
        if text and token not in _NO_SPACE_BEFORE:
            text += " "
        text += token
    return text


def prompt_ids(prompt: str, vocab: Vocab) -> list[int]:
    """Tokenize a prompt and look its words up; a clear ``ValueError`` when there is nothing to go on."""
    if not isinstance(prompt, str):
        raise ValueError(f"The prompt must be a string, got {type(prompt).__name__}.")
    if not prompt.strip():
        raise ValueError("The prompt is empty: give the model a few words to continue, e.g. 'this movie is'.")
    ids = vocab.encode(tokenize(prompt))
    if not any(i != UNK_INDEX for i in ids):
        raise ValueError(f"None of the words of {prompt[:40]!r} is in the vocabulary: start with common words.")
    return ids


@torch.no_grad()
def generate(
    model: LanguageModel,
    vocab: Vocab,
    prompt: str,
    words: int = 40,
    temperature: float = 1.0,
    top_k: Optional[int] = None,
    greedy: bool = False,
    seed: int = 0,
    ban_unknown: bool = True,
    show_end: bool = False,
) -> str:
    """Continue ``prompt`` by up to ``words`` words; returns only the continuation, as text.

    The prompt is tokenized as in training (unknown words become ``<unk>``) and read by the
    model. Then, again and again: take the distribution of the next word, draw one word from it
    (``greedy=True``: take the most likely one), and feed it back in. ``<pad>`` is never drawn,
    nor ``<unk>`` when ``ban_unknown``; drawing ``<eos>`` ends the review early, and
    ``show_end=True`` then writes ``<eos>`` as the last word, so the reader can tell a review the
    model ended from one cut at ``words`` (an empty continuation is then ``"<eos>"``: the model
    ended the review at once).

    Draws use their own ``torch.Generator`` seeded with ``seed`` (on the CPU): the same seed gives
    the same text on every run, and the global random state is left alone.
    """
    check_sampling(temperature, top_k)
    if not isinstance(words, int) or words < 1:
        raise ValueError(f"words must be an integer >= 1, got {words!r}.")
    eos = eos_index(vocab)
    ids = prompt_ids(prompt, vocab)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed)
    banned = [PAD_INDEX] + ([UNK_INDEX] if ban_unknown else [])

    hidden, state = model(torch.tensor([ids], device=device))
    continuation: list[str] = []
    for _ in range(words):
        scores = model.log_probs(hidden[0, -1]).cpu()
        scores[banned] = float("-inf")
        if greedy:
            next_id = int(scores.argmax())
        else:
            probabilities = next_word_probabilities(scores, temperature, top_k)
            next_id = int(torch.multinomial(probabilities, 1, generator=generator))
        if next_id == eos:
            if show_end:
                continuation.append(EOS_TOKEN)
            break
        continuation.append(vocab.itos[next_id])
        hidden, state = model(torch.tensor([[next_id]], device=device), state)
    model.train(was_training)
    return detokenize(continuation)


# --------------------------------------------------------------------------------------------
# Checkpoints, and handing the weights to a classifier
# --------------------------------------------------------------------------------------------


class LMCheckpointError(RuntimeError):
    """A language-model checkpoint is missing or cannot be read; the message says what to do."""


_RESERVED = ("format", "config", "state_dict", "vocab")
_FORMAT = "course_utils.lm/1"


def default_lm_path(backward: bool = False) -> Path:
    """``data/checkpoints/lm.pt`` (``lm-backward.pt`` for a backward model)."""
    return default_data_dir() / "checkpoints" / ("lm-backward.pt" if backward else "lm.pt")


def save_lm(path: Union[str, Path], model: LanguageModel, vocab: Vocab, extra: Optional[dict] = None) -> Path:
    """Save the config (to rebuild the model), the weights, the vocabulary and ``extra``.

    ``extra`` holds anything worth keeping with the weights, e.g. ``{"pretraining_seconds": 600,
    "valid_perplexity": 180.3}``. The file is written under a temporary name and then renamed,
    so a crash never leaves half a checkpoint.
    """
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"The vocabulary has {len(vocab)} words but the model {model.config.vocab_size}.")
    clashes = [key for key in (extra or {}) if key in _RESERVED]
    if clashes:
        raise ValueError(f"extra cannot use the keys {clashes}: save_lm() writes them itself.")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": _FORMAT, "config": model.config.to_dict(), "state_dict": model.state_dict(),
               "vocab": list(vocab.itos), **(extra or {})}
    partial = path.with_suffix(path.suffix + ".partial")
    torch.save(payload, partial)
    partial.replace(path)
    return path


def _missing_message(path: Path) -> str:
    return (f"There is no language model at {path}: train one with `python -m course_utils.lm train --minutes 10` "
            "or by running lesson 8.")


def load_lm(path: Union[str, Path, None] = None, device: Optional[torch.device] = None) -> tuple[LanguageModel, Vocab, dict]:
    """Rebuild a model saved by ``save_lm``: returns (model in eval mode, vocab, the checkpoint dict).

    ``path=None`` reads ``default_lm_path()``. A missing, unreadable or foreign file raises
    ``LMCheckpointError`` with one sentence that says what to do.
    """
    path = Path(path) if path is not None else default_lm_path()
    if not path.is_file():
        raise LMCheckpointError(_missing_message(path))
    try:
        checkpoint = torch.load(path, map_location=device or "cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many kinds of errors for a damaged file
        raise LMCheckpointError(f"{path} cannot be read as a checkpoint ({type(exc).__name__}): "
                                "delete it and train the language model again.") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != _FORMAT:
        raise LMCheckpointError(f"{path} is not a language-model checkpoint of course_utils.lm "
                                "(a classifier's checkpoint?): give the path of one saved by save_lm().")
    model = LanguageModel(LMConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.to(device or "cpu").eval()
    return model, Vocab(checkpoint["vocab"]), checkpoint


@torch.no_grad()
def copy_into_classifier(
    lm: LanguageModel,
    classifier: nn.Module,
    lm_vocabulary: Vocab,
    classifier_vocabulary: Vocab,
    direction: int = 0,
    rnn: bool = True,
) -> None:
    """Start a ``SentimentClassifier`` from a language model's embedding and first LSTM layer.

    * embedding: each word of ``classifier_vocabulary`` gets the language model's row of the same
      word (the ids differ: ``lm_vocab`` puts ``<eos>`` at id 2). A word the language model does
      not know (``lm_vocab(..., max_size=...)`` dropped it) gets its ``<unk>`` row: that is how
      the language model read it. The ``<pad>`` row is set to zeros;
    * LSTM (``rnn=True``): the language model's layer 0 goes into the classifier's layer 0 of
      ``direction`` (0: forward, 1: backward, ``classifier.rnn.layers[0][direction]``). A backward
      layer reads each review from its end, so give it the weights of a *backward* language model
      (``make_stream(..., backward=True)``). Layers above 0 and the head stay as they are.
      ``rnn=False`` copies the embedding only (word vectors learned by the language model).

    Anything that does not match (sizes, cell, vocabularies) raises a ``ValueError`` that names it.
    """
    config = getattr(classifier, "config", None)
    if config is None or not hasattr(classifier, "rnn") or not hasattr(classifier.rnn, "layers"):
        raise ValueError("copy_into_classifier() expects a course_utils.models.SentimentClassifier.")
    if rnn and config.cell != "lstm":
        raise ValueError(f"The classifier's cell is {config.cell!r}: only an 'lstm' classifier can take LSTM weights.")
    if direction not in (0, 1):
        raise ValueError(f"direction must be 0 (forward) or 1 (backward), got {direction!r}.")
    if direction == 1 and not config.bidirectional:
        raise ValueError("direction=1 is the backward layer, but the classifier is not bidirectional.")
    if classifier.embedding.embedding_dim != lm.config.embedding_dim:
        raise ValueError(f"Embedding sizes differ: the language model has {lm.config.embedding_dim}, "
                         f"the classifier {classifier.embedding.embedding_dim}.")
    if rnn and config.hidden_size != lm.config.hidden_size:
        raise ValueError(f"Hidden sizes differ: the language model has {lm.config.hidden_size}, "
                         f"the classifier {config.hidden_size}.")
    if len(lm_vocabulary) != lm.config.vocab_size or EOS_TOKEN not in lm_vocabulary:
        raise ValueError(f"lm_vocabulary ({len(lm_vocabulary)} words) is not the language model's "
                         f"({lm.config.vocab_size} words, with {EOS_TOKEN!r}).")
    if len(classifier_vocabulary) != classifier.embedding.num_embeddings:
        raise ValueError(f"classifier_vocabulary has {len(classifier_vocabulary)} words, the classifier's embedding "
                         f"{classifier.embedding.num_embeddings} rows: give the vocabulary it was built with.")
    rows = torch.tensor([lm_vocabulary[word] for word in classifier_vocabulary.itos])  # unknown words -> <unk>
    classifier.embedding.weight.copy_(lm.embedding.weight[rows.to(lm.embedding.weight.device)])
    classifier.embedding.weight[PAD_INDEX].zero_()  # <pad> stays a zero vector, as nn.Embedding made it
    if rnn:
        target = classifier.rnn.layers[0][direction]
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            getattr(target, name).copy_(getattr(lm.rnn, name))


# --------------------------------------------------------------------------------------------
# The IMDb text for the language model
# --------------------------------------------------------------------------------------------


@dataclass
class LMData:
    """The streams a language model trains and validates on, and its vocabulary."""

    vocab: Vocab  # the classifier's vocabulary + <eos>
    train: torch.Tensor  # 1-D: the training reviews of the fixed split + the unlabeled reviews
    valid: torch.Tensor  # 1-D: the validation reviews of the fixed split
    train_reviews: int
    valid_reviews: int
    backward: bool = False

    def __repr__(self) -> str:
        return (f"LMData(train={self.train_reviews:,} reviews / {self.train.numel():,} tokens, "
                f"valid={self.valid_reviews:,} reviews / {self.valid.numel():,} tokens, vocab={len(self.vocab):,}, "
                f"backward={self.backward})")


def prepare_lm_data(
    limit: Optional[int] = None, folder: Optional[Path] = None, backward: bool = False, seed: int = 0,
    data: Optional[ImdbData] = None, max_size: Optional[int] = None,
) -> LMData:
    """The language model's text: the classifier's training reviews + the unlabeled ones; never test.

    ``course_utils.splits.prepare_imdb`` is called as the classifier calls it, so the split and the
    vocabulary are exactly the classifier's (pass ``data`` when you have it already: it must come
    from ``prepare_imdb`` with the same ``limit``, ``folder`` and ``seed``). The test reviews it
    also returns are not used: a model that has read the test reviews would make the test
    accuracy of every classifier it starts an overestimate. ``limit`` keeps that many reviews of
    each split and of the unlabeled ones; ``folder`` reads a (tiny) aclImdb-shaped folder instead
    of the full data set. The vocabulary is ``lm_vocab(data.vocab, max_size)``.
    """
    if data is None:
        data = prepare_imdb(limit=limit, folder=folder, seed=seed)
    vocab = lm_vocab(data.vocab, max_size)
    to_lm = [vocab[word] for word in data.vocab.itos]  # a classifier id -> the same word's id here
    cache_dir = default_data_dir() / "cache" if (limit is None and folder is None) else None
    unlabeled = load_unlabeled(folder=folder)[:limit]
    unlabeled_ids = [vocab.encode(tokens) for tokens in tokenize_all(unlabeled, cache_dir=cache_dir)]
    labeled_ids = [ids for ids, _ in data.train]
    # Compared by identity, not by text: IMDb has a few hundred test reviews whose exact text was
    # also posted in train/ or train/unsup/; those are training reviews and stay.
    test_lists = {id(ids) for ids, _ in data.test}
    assert not any(id(ids) in test_lists for ids in labeled_ids), "test reviews must never train the language model"
    eos = eos_index(vocab)
    labeled_ids = [[to_lm[i] for i in ids] for ids in labeled_ids]
    valid_ids = [[to_lm[i] for i in ids] for ids, _ in data.valid]
    return LMData(
        vocab=vocab,
        train=stream_from_ids(labeled_ids + unlabeled_ids, eos, backward),
        valid=stream_from_ids(valid_ids, eos, backward),
        train_reviews=len(labeled_ids) + len(unlabeled_ids),
        valid_reviews=len(data.valid),
        backward=backward,
    )


# --------------------------------------------------------------------------------------------
# Recipes: how the course's language models are trained
# --------------------------------------------------------------------------------------------


@dataclass
class LMRecipe:
    """How one of the course's language models is trained: its sizes, its batches, its schedule, how much text.

    ``words`` is the number of target words to train on (``None``: one pass over the training
    stream). A fixed number of words, not of seconds, gives the same model on every machine.
    With ``schedule="onecycle"`` the learning rate rises to ``lr`` and decays to nearly zero over
    exactly those words (``train_lm``).
    """

    embedding_dim: int = 100
    hidden_size: int = 64
    batch_size: int = 64
    bptt: int = 64
    lr: float = 3e-3
    schedule: Optional[str] = None
    words: Optional[int] = None
    clip: float = 0.25

    def rows(self, stream: torch.Tensor) -> torch.Tensor:
        """The part of ``stream`` this recipe trains on, cut into ``batch_size`` rows (``batchify``)."""
        rows = batchify(stream, max(1, min(self.batch_size, stream.numel() // 4)))  # tiny streams: fewer rows
        if self.words is not None:
            rows = rows[:, : self.words // rows.size(0) + 1]  # + 1: the last target word
        return rows


#: Lesson 8's language model: the sizes of lesson 6's best classifier, a one-cycle rate, a fixed number of words
#: (the first part of each of the 64 rows), chosen on the validation words so that it beats the bigram.
LESSON8 = LMRecipe(embedding_dim=100, hidden_size=64, batch_size=64, bptt=64, lr=2e-2, schedule="onecycle",
                   words=10_000_000)
#: Lesson 9's backward language model: lesson 8's recipe on the reviews read from their end.
LESSON9_BACKWARD = LESSON8


def load_or_train(
    recipe: LMRecipe,
    lm_data: LMData,
    path: Optional[Path] = None,
    seed: int = 0,
    device: Optional[torch.device] = None,
    log: Optional[Callable[[str], None]] = print,
) -> tuple[LanguageModel, dict]:
    """The language model ``recipe`` trains on ``lm_data``: read from ``path`` if it is there, else trained and saved.

    A saved model is used only if it was trained with this recipe, vocabulary and direction
    (another one, e.g. from ``python -m course_utils.lm train``, is trained over). ``path=None``
    is ``default_lm_path(lm_data.backward)``: lesson 8 saves its model there, lesson 9 reads it.
    Returns the model (in eval mode, on ``device``) and its checkpoint's extra values
    (``valid_perplexity``, ``pretraining_seconds``, ``trained_now``...).
    """
    path = Path(path) if path is not None else default_lm_path(lm_data.backward)
    if path.is_file():
        model, vocab, saved = load_lm(path, device)
        if (saved.get("recipe") == asdict(recipe) and vocab.itos == lm_data.vocab.itos
                and bool(saved.get("backward", False)) == lm_data.backward):
            return model, {**{k: v for k, v in saved.items() if k not in _RESERVED}, "trained_now": False}
    model, history = train_recipe(recipe, lm_data, seed, device, log)
    extra = {"recipe": asdict(recipe), "backward": lm_data.backward, "pretraining_seconds": history.seconds,
             "pretraining_tokens": history.tokens, "valid_perplexity": perplexity(history.valid_loss[-1])}
    save_lm(path, model, lm_data.vocab, extra=extra)
    return model, {**extra, "trained_now": True}


def train_recipe(
    recipe: LMRecipe,
    lm_data: LMData,
    seed: int = 0,
    device: Optional[torch.device] = None,
    log: Optional[Callable[[str], None]] = print,
    progress: bool = False,
) -> tuple[LanguageModel, LMHistory]:
    """A new language model trained with ``recipe`` on ``lm_data`` (validated once, at the end)."""
    set_seed(seed)
    model = build_lm(len(lm_data.vocab), embedding_dim=recipe.embedding_dim, hidden_size=recipe.hidden_size)
    rows = recipe.rows(lm_data.train)
    history = train_lm(model, rows, batchify(lm_data.valid, _rows(lm_data.valid)), bptt=recipe.bptt, lr=recipe.lr,
                       clip=recipe.clip, epochs=1, schedule=recipe.schedule, log=log, progress=progress,
                       device=device, log_every=max(1, rows.size(1) // recipe.bptt // 4))
    return model, history


def pretrain(
    data: ImdbData,
    recipe: LMRecipe,
    backward: bool = False,
    limit: Optional[int] = None,
    folder: Optional[Path] = None,
    seed: int = 0,
    log: Optional[Callable[[str], None]] = print,
    progress: bool = False,
    device: Optional[torch.device] = None,
) -> tuple[LanguageModel, LMData, LMHistory]:
    """Train a new language model with ``recipe`` on ``data``'s training reviews + the unlabeled ones.

    ``data`` is a classifier's (``prepare_imdb`` with the same ``limit``, ``folder`` and ``seed``);
    ``backward=True`` reads every review from its end (``prepare_lm_data(backward=True)``).
    Returns the model, its data (vocabulary and streams) and its ``LMHistory``.
    """
    lm_data = prepare_lm_data(limit=limit, folder=folder, seed=seed, data=data, backward=backward)
    model, history = train_recipe(recipe, lm_data, seed, device, log, progress)
    return model, lm_data, history


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

PROG = "python -m course_utils.lm"
BATCH_SIZE, BPTT, LR, CLIP = 64, 64, 3e-3, 0.25


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description="Train the course's LSTM language model on IMDb text, or let it write.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{generate,train}",
                                     parser_class=OneLineParser)

    gen = commands.add_parser("generate", help="continue a prompt with a trained language model")
    gen.add_argument("prompt", help="the first words, e.g. 'this movie is'")
    gen.add_argument("--words", type=positive_int, default=40, metavar="N", help="at most N words (default 40)")
    gen.add_argument("--temperature", type=positive_float, default=1.0, metavar="T",
                     help="> 0; below 1 is safer, above 1 wilder (default 1.0)")
    gen.add_argument("--top-k", type=positive_int, metavar="K", help="draw only among the K most likely words")
    gen.add_argument("--greedy", action="store_true", help="always take the most likely word")
    gen.add_argument("--seed", type=int, default=0, metavar="N", help="random seed of the draws (default 0)")
    gen.add_argument("--checkpoint", type=Path, metavar="PATH", help="the model (default data/checkpoints/lm.pt)")

    train = commands.add_parser("train", help="train (or go on training) the language model for some minutes")
    train.add_argument("--minutes", type=positive_float, default=10.0, metavar="M",
                       help="minutes of training (default 10; loading the data and validating come on top)")
    train.add_argument("--checkpoint", type=Path, metavar="PATH",
                       help="where to save (default data/checkpoints/lm.pt, or lm-backward.pt with --backward)")
    train.add_argument("--resume", action="store_true", help="go on training the model saved at --checkpoint")
    train.add_argument("--backward", action="store_true", help="a backward model: each review read from its end")
    train.add_argument("--limit", type=positive_int, metavar="N", help="use at most N reviews of each split (quick runs)")
    train.add_argument("--imdb-folder", type=Path, metavar="PATH", help="an aclImdb-shaped folder instead of the full data")
    train.add_argument("--embedding-dim", type=positive_int, default=100, metavar="N",
                       help="embedding size (default 100; a classifier it starts must have the same)")
    train.add_argument("--hidden-size", type=positive_int, default=64, metavar="N",
                       help="LSTM size (default 64, as the course's best classifier, which it can then start: "
                            "python -m course_utils.train --model pretrained --lm PATH)")
    train.add_argument("--seed", type=int, default=0, metavar="N", help="random seed (default 0)")
    train.add_argument("--json", action="store_true", help="print one JSON object with the results on stdout")
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _rows(stream: torch.Tensor) -> int:
    """BATCH_SIZE rows, or fewer for a stream too short to give each row a few words (tiny runs)."""
    return max(1, min(BATCH_SIZE, stream.numel() // 4))


def train_for(model: LanguageModel, lm_data: LMData, minutes: float, log: Optional[Callable[[str], None]] = print,
              progress: bool = False, device: Optional[torch.device] = None) -> LMHistory:
    """Train ``model`` on ``lm_data`` for ``minutes`` with the command line's settings; validate once at the end."""
    return train_lm(model, batchify(lm_data.train, _rows(lm_data.train)), batchify(lm_data.valid, _rows(lm_data.valid)),
                    bptt=BPTT, lr=LR, clip=CLIP, epochs=None, max_seconds=minutes * 60, log=log,
                    progress=progress, device=device)


def _generate_command(args: argparse.Namespace) -> int:
    model, vocab, _ = load_lm(args.checkpoint)
    text = generate(model, vocab, args.prompt, words=args.words, temperature=args.temperature,
                    top_k=args.top_k, greedy=args.greedy, seed=args.seed)
    print(f"{args.prompt.strip()} {text}".rstrip())
    return 0


def _train_command(args: argparse.Namespace) -> int:
    def log(message: str) -> None:  # progress goes to stderr when stdout carries JSON
        print(message, file=sys.stderr if args.json else sys.stdout, flush=True)

    if args.imdb_folder is not None and not (args.imdb_folder / "train").is_dir():
        raise ValueError(f"{args.imdb_folder} is not an aclImdb folder (it has no train/ folder).")
    path = args.checkpoint or default_lm_path(args.backward)
    if args.resume:
        model, vocab, checkpoint = load_lm(path)  # before the data: a missing file fails at once
    began = time.perf_counter()
    data = prepare_lm_data(limit=args.limit, folder=args.imdb_folder, backward=args.backward, seed=args.seed)
    log(f"data: {data} ({time.perf_counter() - began:.1f} s)")
    before = {"pretraining_seconds": 0.0, "pretraining_tokens": 0}
    if args.resume:
        if vocab.itos != data.vocab.itos:
            raise ValueError(f"{path} was trained with another vocabulary (other data or --limit): "
                             "resume with the same data, or train a new model without --resume.")
        if bool(checkpoint.get("backward", False)) != args.backward:
            raise ValueError(f"{path} is a {'backward' if checkpoint.get('backward') else 'forward'} model: "
                             "resume it with the same direction (--backward or not).")
        before = {key: checkpoint.get(key, value) for key, value in before.items()}
    else:
        set_seed(args.seed)
        model = build_lm(len(data.vocab), embedding_dim=args.embedding_dim, hidden_size=args.hidden_size)
    device = get_device()
    history = train_for(model, data, args.minutes, log, progress=not args.no_progress, device=device)
    valid_loss = history.valid_loss[-1]
    summary = {
        "train_perplexity": round(perplexity(history.train_loss[-1]), 2),  # the last logged interval
        "valid_perplexity": round(perplexity(valid_loss), 2),
        "tokens": history.tokens,
        "seconds": round(history.seconds, 2),
        "tokens_per_second": round(history.tokens_per_second, 1),
        "pretraining_seconds": round(before["pretraining_seconds"] + history.seconds, 2),
        "pretraining_tokens": before["pretraining_tokens"] + history.tokens,
        "vocab_size": len(data.vocab),
        "train_reviews": data.train_reviews,
        "backward": args.backward,
        "device": str(device),
        "checkpoint": str(path),
    }
    save_lm(path, model, data.vocab, extra={
        "backward": args.backward,
        "pretraining_seconds": before["pretraining_seconds"] + history.seconds,
        "pretraining_tokens": before["pretraining_tokens"] + history.tokens,
        "valid_loss": valid_loss,
        "valid_perplexity": perplexity(valid_loss),
    })
    log(f"saved {path}: valid perplexity {summary['valid_perplexity']}, "
        f"{summary['pretraining_seconds']:.0f} s of training in all")
    if args.json:
        print(json.dumps(summary))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; errors are one line on stderr and a non-zero exit code."""
    args = make_parser().parse_args(argv)
    try:
        if args.command == "generate":
            return _generate_command(args)
        return _train_command(args)
    except (ValueError, LMCheckpointError, IMDBDataError) as exc:
        print(f"{PROG} {args.command}: error: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, (LMCheckpointError, IMDBDataError)) else 2


if __name__ == "__main__":
    sys.exit(main())
