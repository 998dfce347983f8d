"""RNNs today (lesson 10): a Transformer encoder, and the minGRU, a recurrence that trains in parallel.

An LSTM must read a review one step after the other: its gates read h_{t-1}, so step t cannot
start before step t-1 is done. Two ways out of that sequential bottleneck, both written out in
lesson 10 and kept here:

* **self-attention** (``PaddedTransformer``): every position reads every other position at once,
  so a sequence is one batch of matrix products; the price is a (time x time) matrix of scores.
* **a linear recurrence** (``MinGRU``, Feng et al. 2024, "Were RNNs All We Needed?"): the gates
  read the *input only*, never h_{t-1}::

      z_t = sigmoid(W_z x_t + b_z)              update gate, from x_t alone
      h~_t = g(W_h x_t + b_h)                   candidate, from x_t alone
      h_t = (1 - z_t) * h_{t-1} + z_t * h~_t    = a_t * h_{t-1} + b_t

  so h_t = a_t h_{t-1} + b_t with a_t, b_t known in advance for every step, and all the h_t come
  out of two cumulative operations over time (a *parallel scan*, ``log_space_scan``, computed in
  logarithms as Heinsen 2023 does, so that a product of 800 gates does not underflow).

Both read right-padded batches and return ``(output, h_n)`` as ``batching.PaddedRNN`` does, so
``models.SentimentClassifier`` uses them as its encoder (``cell="mingru"`` or ``"transformer"``).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .batching import PaddedRNN, last_real_output, padding_mask

Tensor = torch.Tensor


# ------------------------------------------------------------------------------------------------
# The Transformer encoder
# ------------------------------------------------------------------------------------------------
def sinusoidal_positions(length: int, dim: int, device=None, dtype: torch.dtype = torch.float32) -> Tensor:
    """The sinusoidal position code of "Attention is all you need": (length, dim).

    Position p gets ``sin(p / 10000^(2i/dim))`` in column 2i and ``cos(...)`` in column 2i + 1:
    waves of many wavelengths, so that every position has its own pattern and nearby positions
    have similar ones. Self-attention alone does not know the order of the words; adding this
    code to the embeddings tells it.
    """
    positions = torch.arange(length, device=device, dtype=torch.float64).unsqueeze(1)
    frequencies = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float64) * (-math.log(10000.0) / dim))
    code = torch.zeros(length, dim, device=device, dtype=torch.float64)
    code[:, 0::2] = torch.sin(positions * frequencies)
    code[:, 1::2] = torch.cos(positions * frequencies[: dim // 2])
    return code.to(dtype)


class PaddedTransformer(nn.Module):
    """A Transformer encoder that reads right-padded batches: ``forward(x, lengths) -> (output, h_n)``.

    The positions are added to ``x`` (batch, time, d_model), then ``num_layers`` layers of
    ``nn.TransformerEncoderLayer`` (self-attention with ``num_heads`` heads, then a feed-forward
    layer of width ``feedforward``; layer norm first, as most Transformers since GPT-2 do;
    dropout on each part's output, none on the attention weights) read
    it with a *padding mask*: no position attends to padding. Output (batch, time, d_model), zeros
    at padded steps; ``h_n`` (1, batch, d_model) is the output at each review's last real token,
    for the same interface as ``PaddedRNN`` (a Transformer has no final state: pool with the mean
    or the max instead).
    """

    def __init__(self, d_model: int, num_heads: int, feedforward: int, num_layers: int = 1, dropout: float = 0.0):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be a multiple of num_heads ({num_heads}).")
        layer = nn.TransformerEncoderLayer(d_model, num_heads, feedforward, dropout, batch_first=True, norm_first=True)
        # No dropout on the attention weights (dropout stays on the layers' outputs): with it, PyTorch
        # must build the whole (time x time) matrix of weights, and a CPU trains several times slower.
        layer.self_attn.dropout = 0.0
        # enable_nested_tensor=False: the nested-tensor shortcut does not apply to norm_first layers
        # (PyTorch would warn about it), and it would change nothing here.
        self.encoder = nn.TransformerEncoder(layer, num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False)
        self.d_model = d_model

    def forward(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        mask = padding_mask(lengths.to(x.device), x.size(1))  # True at real tokens
        x = x + sinusoidal_positions(x.size(1), self.d_model, x.device, x.dtype)
        output = self.encoder(x, src_key_padding_mask=~mask) * mask.unsqueeze(2)  # the mask says True = ignore
        return output, last_real_output(output, lengths).unsqueeze(0)


# ------------------------------------------------------------------------------------------------
# The minGRU and its parallel scan
# ------------------------------------------------------------------------------------------------
def linear_recurrence_loop(a: Tensor, b: Tensor, h0: Optional[Tensor] = None) -> Tensor:
    """h_t = a_t * h_{t-1} + b_t for t = 1..T, one step after the other; returns every h_t.

    ``a`` and ``b`` are (batch, time, hidden), ``h0`` (batch, hidden) or ``None`` (zeros).
    Output (batch, time, hidden): ``output[:, t]`` is the state after step t (h_0 is not in it).
    """
    h = torch.zeros_like(b[:, 0]) if h0 is None else h0
    states = []
    for a_t, b_t in zip(a.unbind(1), b.unbind(1)):  # unbind, not a[:, t]: its backward is one stack
        h = a_t * h + b_t
        states.append(h)
    return torch.stack(states, dim=1)


def log_space_scan(log_a: Tensor, log_b: Tensor, log_h0: Optional[Tensor] = None) -> Tensor:
    """log h_t for h_t = a_t * h_{t-1} + b_t, all t at once, from the logarithms of a, b (and h_0).

    Unrolled, h_t = A_t * (h_0 + sum_{k<=t} b_k / A_k) with A_t = a_1 * ... * a_t. In logarithms
    (Heinsen 2023): with a*_t = cumsum(log a), log h_t = a*_t + logcumsumexp(log b_k - a*_k).
    Two cumulative operations over time and no loop: each is a parallel prefix scan on a GPU.
    Working with logarithms keeps A_t from underflowing to 0 over hundreds of steps (a product of
    800 gates of 0.5 is 1e-241) and needs positive a, b and h_0 (``MinGRU`` makes them so).
    Shapes as ``linear_recurrence_loop``; ``log_h0`` (batch, hidden) or ``None`` for h_0 = 0.
    """
    a_star = torch.cumsum(log_a, dim=1)
    terms = log_b - a_star
    if log_h0 is not None:  # h_0 is one more term, before step 1, where a* = 0
        terms = torch.cat([log_h0.unsqueeze(1), terms], dim=1)
        return a_star + torch.logcumsumexp(terms, dim=1)[:, 1:]
    return a_star + torch.logcumsumexp(terms, dim=1)


def g(x: Tensor) -> Tensor:
    """The minGRU's activation for candidates: x + 0.5 for x >= 0, sigmoid(x) below: always > 0,
    continuous, and as x for large x (a candidate may be any positive size)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_g(x: Tensor) -> Tensor:
    """log g(x), computed without forming g(x) where it is tiny: -softplus(-x) = log sigmoid(x) below 0."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class MinGRU(nn.Module):
    """One minGRU layer (Feng et al. 2024): gates from the input only, so the states come from a scan.

    ``forward(x, h0=None)`` takes x (batch, time, input_size) and returns every state (batch, time,
    hidden_size): with ``scan`` (``log_space_scan``, every step at once) or ``loop`` (step by
    step, the definition); both give the same states. ``parallel`` chooses: ``True`` the scan,
    ``False`` the loop, ``None`` (the default) the scan on a GPU and the loop on a CPU, the faster
    of the two on each (lesson 10 measures it: a CPU has few cores to run the scan's extra work in
    parallel, and the loop's step has no matrix product, only two elementwise operations).
    ``step`` is one step, for generating text with a state of constant size. ``h0`` (batch,
    hidden) must be positive (zeros when ``None``). Like ``nn.GRU(batch_first=True)``, calling
    the layer returns ``(output, h_n)``: every state, and the last one as (1, batch, hidden).
    """

    def __init__(self, input_size: int, hidden_size: int, parallel: Optional[bool] = None, batch_first: bool = True):
        super().__init__()
        if not batch_first:
            raise ValueError("MinGRU reads (batch, time, features): batch_first=True only.")
        self.hidden_size = hidden_size
        self.parallel = parallel
        self.linear_z = nn.Linear(input_size, hidden_size)  # update gate z_t = sigmoid(k_t)
        self.linear_h = nn.Linear(input_size, hidden_size)  # candidate h~_t = g(W_h x_t + b_h)

    def coefficients(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(a, b) of h_t = a_t h_{t-1} + b_t: a = 1 - z, b = z * g(W_h x + b_h)."""
        z = torch.sigmoid(self.linear_z(x))
        return 1 - z, z * g(self.linear_h(x))

    def loop(self, x: Tensor, h0: Optional[Tensor] = None) -> Tensor:
        """Every state, step by step: h_t = (1 - z_t) * h_{t-1} + z_t * h~_t."""
        return linear_recurrence_loop(*self.coefficients(x), h0)

    def step(self, x_t: Tensor, h: Tensor) -> Tensor:
        """One step: the next state from the input x_t (batch, input_size) and the state h (batch, hidden)."""
        a, b = self.coefficients(x_t)
        return a * h + b

    def forward(self, x: Tensor, h0: Optional[Tensor] = None) -> tuple[Tensor, Tensor]:
        parallel = x.device.type != "cpu" if self.parallel is None else self.parallel
        output = self.scan(x, h0) if parallel else self.loop(x, h0)
        return output, output[:, -1].unsqueeze(0)

    def scan(self, x: Tensor, h0: Optional[Tensor] = None) -> Tensor:
        """Every state at once, in logarithms: log a = log(1 - z), log b = log z + log h~ (``log_space_scan``)."""
        k = self.linear_z(x)
        log_a = -F.softplus(k)                          # log(1 - sigmoid(k))
        log_b = -F.softplus(-k) + log_g(self.linear_h(x))  # log sigmoid(k) + log h~
        log_h0 = None if h0 is None else torch.log(h0)
        return torch.exp(log_space_scan(log_a, log_b, log_h0))


class PaddedMinGRU(PaddedRNN):
    """minGRU layers that read right-padded batches: ``batching.PaddedRNN`` with ``MinGRU`` layers.

    ``forward(x, lengths)`` returns output (batch, time, directions * hidden), zeros at padded
    steps, and h_n (layers * directions, batch, hidden), each review's state at its last real
    step. The backward direction reads each review reversed within its own length; padding comes
    after the real steps, so it cannot change them.
    """

    CELLS = {"mingru": MinGRU}

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bidirectional: bool = False,
                 dropout: float = 0.0):
        super().__init__("mingru", input_size, hidden_size, num_layers, bidirectional, dropout)
