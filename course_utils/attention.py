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
we can look at them. ``AttentionPooling`` turns the states of a review into one vector with a
single learned query (attention over a review, lesson 7 section 3).
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
    if not mask.any(dim=1).all():
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
