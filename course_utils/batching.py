"""Variable-length batches: padding, length bucketing, and recurrent layers on padded batches.

Lesson 4 shows the three ways to feed reviews of different lengths to a recurrent layer:

* **padded**: pad every review of a random batch to the longest one. Simple, but the layer reads
  padding, which changes the final state and wastes time;
* **packed**: ``pack_padded_sequence`` tells the layer each true length. Correct, but slow for
  long sequences: PyTorch issue 149194 reports both passes many times slower than on the padded
  batch, on GPU and CPU; on the CPU of lesson 4 the backward pass loses most;
* **bucketed + padded** (the course's way): batch reviews of similar length together so there is
  little padding, run the layer on the padded batch, and read each review's state at its own
  last step. For a bidirectional layer, each review is reversed *within its own length* for the
  backward direction. This gives exactly the packed results and is much faster on a CPU.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from .text import PAD_INDEX


def collate_batch(
    batch: Sequence[tuple[Sequence[int], int]], pad_index: int = PAD_INDEX
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Turn a list of ``(token_ids, label)`` into ``(ids, labels, lengths)``.

    ``ids`` is (batch, longest) and right-padded with ``pad_index``; ``labels`` is float (for
    ``BCEWithLogitsLoss``); ``lengths`` is int64 on the CPU, as ``pack_padded_sequence`` wants.
    Class indices 0..C-1 of a many-class task (lesson 8) are exact as floats too:
    ``training.classification_loss`` turns them back into the integers ``CrossEntropyLoss`` wants.
    """
    if len(batch) == 0:
        raise ValueError("collate_batch() got an empty batch.")
    sequences = [torch.as_tensor(ids, dtype=torch.long) for ids, _ in batch]
    if any(len(s) == 0 for s in sequences):
        raise ValueError("collate_batch() got an empty sequence: every review needs at least one token.")
    ids = pad_sequence(sequences, batch_first=True, padding_value=pad_index)
    labels = torch.tensor([float(label) for _, label in batch])
    lengths = torch.tensor([len(s) for s in sequences], dtype=torch.long)
    return ids, labels, lengths


class BucketBatchSampler(torch.utils.data.Sampler):
    """Yield batches of indices whose sequences have similar lengths.

    Each epoch: shuffle all indices, cut them into pools of ``batch_size * pool_batches``, sort
    each pool by length, cut it into batches, and shuffle the order of the batches. Every index
    appears exactly once per epoch; the same ``seed`` gives the same batches on every run.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
    ):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.pool_size = batch_size * pool_batches
        self.generator = torch.Generator().manual_seed(seed)

    def _batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if self.shuffle:
            order = torch.randperm(n, generator=self.generator).tolist()
        else:
            order = list(range(n))
        batches = []
        for start in range(0, n, self.pool_size):
            pool = sorted(order[start : start + self.pool_size], key=lambda i: self.lengths[i])
            batches += [pool[i : i + self.batch_size] for i in range(0, len(pool), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=self.generator)]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        full_pools, rest = divmod(len(self.lengths), self.pool_size)
        per_pool = -(-self.pool_size // self.batch_size)
        return full_pools * per_pool + -(-rest // self.batch_size)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(batch, max_len) boolean mask, True at real tokens and False at padding."""
    positions = torch.arange(max_len, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def last_real_output(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """From a (batch, time, features) output, take each sequence's output at its true last step."""
    index = (lengths.to(output.device) - 1).view(-1, 1, 1).expand(-1, 1, output.size(2))
    return output.gather(1, index).squeeze(1)


def reverse_within_length(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of a right-padded (batch, time, ...) tensor within its own length.

    ``[a, b, c, pad, pad]`` with length 3 becomes ``[c, b, a, pad, pad]``: the padding stays at
    the end, so a recurrent layer reading the result meets the real tokens first. Applying it
    twice gives back the input.
    """
    batch, time = x.shape[:2]
    steps = torch.arange(time, device=x.device).expand(batch, time)
    lengths = lengths.to(x.device).unsqueeze(1)
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    index = index.view(batch, time, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


def masked_mean(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Mean over time of a (batch, time, features) tensor, counting real steps only."""
    mask = padding_mask(lengths.to(output.device), output.size(1)).unsqueeze(2)
    return (output * mask).sum(1) / mask.sum(1)


def masked_max(output: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Max over time of a (batch, time, features) tensor, ignoring padded steps."""
    mask = padding_mask(lengths.to(output.device), output.size(1)).unsqueeze(2)
    return output.masked_fill(~mask, float("-inf")).amax(1)


_CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


class PaddedRNN(nn.Module):
    """A recurrent layer that reads right-padded batches and gives the results of packing.

    It holds one single-layer, one-direction ``nn.RNN``/``nn.LSTM``/``nn.GRU`` per layer and
    direction. The forward direction reads the padded batch as it is: padding comes after the
    real steps, so it cannot change them. The backward direction reads each sequence reversed
    within its own length, so it starts at the true last token instead of at the padding.

    ``forward(x, lengths)`` returns ``(output, h_n)`` shaped like a packed ``nn.LSTM`` with
    ``batch_first=True`` would after ``pad_packed_sequence``: output (batch, time, directions *
    hidden) with zeros at padded steps, and h_n (layers * directions, batch, hidden).

    ``CELLS`` names the layer classes a subclass may use instead (lesson 10's ``PaddedMinGRU``):
    built as ``CELLS[cell](input_size, hidden_size, batch_first=True)``, returning ``(output, h_n)``.
    """

    CELLS = _CELLS

    def __init__(
        self,
        cell: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
    ):
        super().__init__()
        if cell not in self.CELLS:
            raise ValueError(f"cell must be one of {sorted(self.CELLS)}, got {cell!r}.")
        self.cell = cell
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.dropout = nn.Dropout(dropout)  # between layers, as nn.LSTM(dropout=...) does
        layer_class = self.CELLS[cell]
        self.layers = nn.ModuleList()
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * self.num_directions
            self.layers.append(
                nn.ModuleList(
                    layer_class(layer_input, hidden_size, batch_first=True)
                    for _ in range(self.num_directions)
                )
            )

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = padding_mask(lengths.to(x.device), x.size(1)).unsqueeze(2)
        final_states = []
        for layer, directions in enumerate(self.layers):
            if layer > 0:
                x = self.dropout(x)
            outputs = []
            for direction, rnn in enumerate(directions):
                inputs = x if direction == 0 else reverse_within_length(x, lengths)
                out, _ = rnn(inputs)
                final_states.append(last_real_output(out, lengths))
                if direction == 1:
                    out = reverse_within_length(out, lengths)
                outputs.append(out)
            x = torch.cat(outputs, dim=2) * mask  # zeros at padded steps, as packing gives
        return x, torch.stack(final_states)

    @torch.no_grad()
    def copy_weights_from(self, rnn: nn.RNNBase) -> None:
        """Copy the weights of a PyTorch ``nn.RNN``/``nn.LSTM``/``nn.GRU`` with the same sizes.

        Used to prove that this layer computes what the packed PyTorch layer computes.
        """
        for layer, directions in enumerate(self.layers):
            for direction, single in enumerate(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction == 1 else "")
                for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                    getattr(single, f"{name}_l0").copy_(getattr(rnn, name + suffix))
