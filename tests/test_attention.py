"""Tests of course_utils.attention and of attention pooling in the sentiment classifier (lesson 7)."""

import json

import pytest
import torch
import torch.nn.functional as F

from course_utils.attention import AdditiveAttention, AttentionPooling, dot_product_attention, masked_softmax
from course_utils.models import build_model
from course_utils.train import RECIPES, main
from test_train_cli import write_tiny_imdb


def random_inputs(seed=0, batch=3, queries=4, keys=6, d=5, d_v=7):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, queries, d, generator=g)
    k = torch.randn(batch, keys, d, generator=g)
    v = torch.randn(batch, keys, d_v, generator=g)
    lengths = torch.tensor([keys, 2, 4][:batch])
    mask = torch.arange(keys).unsqueeze(0) < lengths.unsqueeze(1)
    return q, k, v, mask


def test_equals_scaled_dot_product_attention():
    q, k, v, mask = random_inputs()
    context, weights = dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask.unsqueeze(1))
    assert torch.allclose(context, expected, atol=1e-6)
    assert weights.shape == (3, 4, 6)
    no_mask, _ = dot_product_attention(q, k, v)
    assert torch.allclose(no_mask, F.scaled_dot_product_attention(q, k, v), atol=1e-6)


def test_padding_gets_weight_exactly_zero_and_rows_sum_to_one():
    q, k, v, mask = random_inputs(seed=1)
    _, weights = dot_product_attention(q, k, v, mask)
    assert torch.all(weights[~mask.unsqueeze(1).expand_as(weights)] == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(3, 4))
    # whatever sits in the padded keys and values changes nothing
    k2, v2 = k.clone(), v.clone()
    k2[~mask] = 100.0
    v2[~mask] = -50.0
    assert torch.allclose(dot_product_attention(q, k2, v2, mask)[0], dot_product_attention(q, k, v, mask)[0])


def test_single_query_and_unscaled_scores():
    q, k, v, mask = random_inputs(seed=2, queries=1)
    context, weights = dot_product_attention(q[:, 0], k, v, mask)
    assert context.shape == (3, 7) and weights.shape == (3, 6)
    _, unscaled = dot_product_attention(q[:, 0], k, v, mask, scale=False)
    scores = (q[:, 0:1] @ k.transpose(1, 2)).squeeze(1).masked_fill(~mask, float("-inf"))
    assert torch.allclose(unscaled, torch.softmax(scores, dim=-1))


@pytest.mark.parametrize("bad_mask, error, words", [
    (torch.ones(3, 5, dtype=torch.bool), ValueError, "shape"),
    (torch.ones(6, 3, dtype=torch.bool), ValueError, "(batch, keys)"),
    (torch.ones(3, 6), TypeError, "boolean"),
    (torch.zeros(3, 6, dtype=torch.bool), ValueError, "at least one True"),
])
def test_bad_masks_get_clear_errors(bad_mask, error, words):
    q, k, v, _ = random_inputs()
    with pytest.raises(error) as info:
        dot_product_attention(q, k, v, bad_mask)
    assert words in str(info.value)


def test_sizes_that_do_not_fit():
    q, k, v, mask = random_inputs()
    with pytest.raises(ValueError, match="do not fit"):
        dot_product_attention(q[..., :3], k, v, mask)


def test_masked_softmax_two_dimensional():
    scores = torch.tensor([[1.0, 2.0, 3.0], [5.0, 0.0, 9.0]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    weights = masked_softmax(scores, mask)
    assert torch.allclose(weights[0, :2], torch.tensor([1.0, 2.0]).softmax(0)) and weights[0, 2] == 0
    assert weights[1].tolist() == [1.0, 0.0, 0.0]


def test_attention_pooling_is_a_weighted_mean_of_real_steps():
    torch.manual_seed(0)
    pool = AttentionPooling(features=4, attention_size=3)
    states = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    pooled, weights = pool(states, mask)
    assert pooled.shape == (2, 4) and weights.shape == (2, 5)
    assert torch.all(weights[1, 2:] == 0) and torch.allclose(weights.sum(1), torch.ones(2))
    assert torch.allclose(pooled, (weights.unsqueeze(2) * states).sum(1))
    assert torch.allclose(pooled[1], pool(states[1:, :2], mask[1:, :2])[0][0], atol=1e-6)


def test_attention_classifier_ignores_padding_and_trains():
    torch.manual_seed(0)
    model = build_model(30, embedding_dim=6, hidden_size=5, bidirectional=True, pooling="attention-pool").eval()
    ids = torch.randint(2, 30, (2, 7))
    ids[1, 4:] = 0
    lengths = torch.tensor([7, 4])
    logits = model(ids, lengths)
    alone = model(ids[1:, :4], lengths[1:])
    assert torch.allclose(logits[1], alone[0], atol=1e-6)
    assert model.attention is not None and logits.shape == (2,)
    logits.sum().backward()
    assert model.attention.query.grad is not None and model.attention.query.grad.abs().sum() > 0


def test_attention_recipe_matches_best_except_pooling():
    best, attention = RECIPES["best"], RECIPES["attention"]
    assert attention.model["pooling"] == "attention-pool"
    assert {k: v for k, v in attention.model.items() if k != "pooling"} == {
        k: v for k, v in best.model.items() if k != "pooling"}
    assert (attention.epochs, attention.lr, attention.max_len, attention.schedule) == (
        best.epochs, best.lr, best.max_len, best.schedule)


def test_lesson7_pooling_pair_differs_only_in_pooling():
    concat, attention, bilstm = RECIPES["bilstm-concat"], RECIPES["bilstm-attention"], RECIPES["bilstm"]
    assert (concat.model["pooling"], attention.model["pooling"]) == ("last+max+mean", "attention-pool")
    for recipe in (concat, attention):  # lesson 6's bilstm comparison model for 2 epochs, only the pooling changed
        assert {k: v for k, v in recipe.model.items() if k != "pooling"} == bilstm.model
        assert (recipe.epochs, recipe.lr, recipe.max_len, recipe.schedule) == (2, bilstm.lr, bilstm.max_len, bilstm.schedule)


def test_cli_attention_json_on_a_tiny_imdb(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)
    folder = write_tiny_imdb(tmp_path)
    code = main(["--model", "attention", "--imdb-folder", str(folder), "--epochs", "2", "--json", "--no-progress"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    reference = {"model", "epochs", "val_acc", "test_acc", "seconds_per_epoch", "reviews_per_second", "parameters",
                 "best_epoch", "train_reviews", "checkpoint", "description", "max_len"}
    assert reference <= set(result)
    assert result["model"] == "attention" and result["epochs"] == 2 and 0 <= result["test_acc"] <= 1
    from course_utils.predict import load_predictor
    predictor = load_predictor(result["checkpoint"])  # the checkpoint rebuilds the attention model
    assert 0 < predictor("a great and wonderful film") < 1


def test_additive_attention_is_bahdanaus_formula():
    """score_i = v . tanh(W_q q + W_k k_i), masked softmax, weighted sum; query and keys of different sizes."""
    torch.manual_seed(0)
    attention = AdditiveAttention(query_size=5, key_size=7, attention_size=4)
    g = torch.Generator().manual_seed(3)
    query, keys, values = torch.randn(3, 5, generator=g), torch.randn(3, 6, 7, generator=g), torch.randn(3, 6, 2, generator=g)
    mask = torch.arange(6).unsqueeze(0) < torch.tensor([[6], [2], [4]])
    context, weights = attention(query, attention.project_keys(keys), values, mask)
    W_q, W_k, b_k, v = (attention.query_projection.weight, attention.key_projection.weight,
                        attention.key_projection.bias, attention.v.weight[0])
    for b in range(3):
        n = int(mask[b].sum())
        scores = torch.stack([v @ torch.tanh(W_q @ query[b] + W_k @ keys[b, i] + b_k) for i in range(n)])
        expected = torch.softmax(scores, dim=0)
        assert torch.allclose(weights[b, :n], expected, atol=1e-6) and torch.all(weights[b, n:] == 0)
        assert torch.allclose(context[b], expected @ values[b, :n], atol=1e-6)
    assert context.shape == (3, 2) and weights.shape == (3, 6)
