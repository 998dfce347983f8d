"""Attention, written out: scores, a mask, a softmax, a weighted sum (lesson 7).

A query asks "which of these steps matter to me now?". Each step (a *key*) gets a score, the
scores become weights that are >= 0 and sum to 1 (a softmax), and the answer is the weighted sum
of the steps' *values*: the **context vector**::

    scores  = query @ keys.T / sqrt(d)          (queries, keys)   scaled dot product
    scores  = -inf where the key is padding     (so that its weight is exactly 0)
    weights = softmax(scores, over the keys)    (queries, keys)   each row sums to 1
    context = weights @ values                  (queries, d_v)

``dot_product_attention`` computes exactly what ``torch.nn.functional.scaled_dot_product_attention``
computes with a boolean ``attn_mask`` (lesson 7 checks it), but returns the weights too, so that
we can look at them. ``AdditiveAttention`` scores with a small learned network instead of a dot
product (Bahdanau, Cho & Bengio 2015). ``AttentionPooling`` turns the states of a review into one
vector with a single learned query (attention over a review, lesson 7).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn


def _check_mask(mask: torch.Tensor, batch: int, steps: int) -> None:
    """A clear error for a mask that does not fit, instead of a broadcasting surprise."""
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a boolean tensor (True at real steps), got dtype {mask.dtype}.")
    if tuple(mask.shape) != (batch, steps):
        raise ValueError(f"mask must have shape (batch, keys) = {(batch, steps)}, got {tuple(mask.shape)}.")
    if mask.device.type != "meta" and not mask.any(dim=1).all():  # a "meta" tensor has a shape but no values
        raise ValueError("every row of the mask needs at least one True (a sequence with no real step).")


def masked_softmax(scores: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Softmax over the last dimension (the keys) where padded keys get weight exactly 0.

    ``scores`` is (batch, keys) or (batch, queries, keys); ``mask`` is (batch, keys), True at
    real steps. The mask is applied *before* the softmax: a score of -inf becomes exp(-inf) = 0,
    and the real steps share all of the weight. (Zeroing weights *after* the softmax would leave
    rows that no longer sum to 1.)
    """
    if mask is not None:
        _check_mask(mask, scores.size(0), scores.size(-1))
        if scores.dim() == 3:
            mask = mask.unsqueeze(1)  # the same mask for every query
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=-1)


def dot_product_attention(
    query: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    scale: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scaled dot-product attention by hand; returns ``(context, weights)``.

    query: (batch, queries, d) or (batch, d) for a single query;
    keys: (batch, keys, d); values: (batch, keys, d_v); mask: (batch, keys), True at real steps.
    ``context`` is (batch, queries, d_v) and ``weights`` (batch, queries, keys), without the
    ``queries`` dimension when ``query`` was (batch, d). ``scale`` divides the scores by sqrt(d),
    which keeps them from growing with the size d (and the softmax from saturating).
    """
    single = query.dim() == 2
    if single:
        query = query.unsqueeze(1)
    if query.dim() != 3 or keys.dim() != 3 or values.dim() != 3:
        raise ValueError("query must be (batch, queries, d) or (batch, d); keys and values (batch, keys, d).")
    if query.size(-1) != keys.size(-1) or keys.size(1) != values.size(1):
        raise ValueError(f"query {tuple(query.shape)}, keys {tuple(keys.shape)} and values "
                         f"{tuple(values.shape)} do not fit: query and keys need the same size d, "
                         "keys and values the same number of steps.")
    scores = query @ keys.transpose(1, 2)  # (batch, queries, keys)
    if scale:
        scores = scores / math.sqrt(query.size(-1))
    weights = masked_softmax(scores, mask)
    context = weights @ values  # (batch, queries, d_v)
    if single:
        return context.squeeze(1), weights.squeeze(1)
    return context, weights


class AdditiveAttention(nn.Module):
    """Additive attention (Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly
    Learning to Align and Translate"): the score of a key is a small learned network,

        score(query, key_i) = v . tanh(W_q query + W_k key_i)

    then the same masked softmax and weighted sum of the values as ``dot_product_attention``.
    Query and keys may have different sizes (both are projected to ``attention_size``), and the
    score is learned rather than a fixed similarity. ``W_k key_i`` does not depend on the query,
    so a decoder computes it once per input (``project_keys``) and passes it to every step.
    """

    def __init__(self, query_size: int, key_size: int, attention_size: int = 64):
        super().__init__()
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W_q
        self.key_projection = nn.Linear(key_size, attention_size)                  # W_k (and a bias)
        self.v = nn.Linear(attention_size, 1, bias=False)                          # v

    def project_keys(self, keys: torch.Tensor) -> torch.Tensor:
        """keys (batch, steps, key_size) -> W_k keys (batch, steps, attention_size): once per input."""
        return self.key_projection(keys)

    def forward(self, query: torch.Tensor, projected_keys: torch.Tensor, values: torch.Tensor,
                mask: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
        """query (batch, query_size), ``project_keys(keys)``, values (batch, steps, d_v), mask (batch, steps)
        -> (context (batch, d_v), weights (batch, steps))."""
        hidden = torch.tanh(projected_keys + self.query_projection(query).unsqueeze(1))  # (batch, steps, attention_size)
        scores = self.v(hidden).squeeze(2)                                              # (batch, steps)
        weights = masked_softmax(scores, mask)
        context = (weights.unsqueeze(2) * values).sum(dim=1)
        return context, weights


class AttentionPooling(nn.Module):
    """One vector per sequence: a weighted mean of its states, the weights chosen by a learned query.

    Each state ``h_t`` (batch, time, features) becomes a key ``tanh(W h_t + b)``; one learned query
    vector ``q`` scores every key (``q . key_t / sqrt(d)``); a masked softmax over the real steps
    gives the weights; the result is ``sum_t weight_t * h_t``. Unlike max or mean pooling, the
    model learns *which* steps to read, and the weights can be looked at.
    """

    def __init__(self, features: int, attention_size: int = 64):
        super().__init__()
        self.key = nn.Linear(features, attention_size)
        self.query = nn.Parameter(torch.randn(attention_size) / math.sqrt(attention_size))

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """states (batch, time, features), mask (batch, time) -> (pooled (batch, features), weights (batch, time))."""
        keys = torch.tanh(self.key(states))
        query = self.query.expand(states.size(0), -1)
        return dot_product_attention(query, keys, states, mask)
