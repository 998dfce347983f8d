"""Tests of course_utils.models: shapes, bidirectional state selection, pooling that ignores padding."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils.models import (
    CELLS,
    POOLINGS,
    ModelConfig,
    SentimentClassifier,
    build_model,
    count_parameters,
    last_layer_state,
    pool,
)

VOCAB = 50


def random_batch(lengths, vocab=VOCAB, seed=0):
    """Right-padded ids (padding = 0) with real tokens in 2..vocab-1, and the lengths."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    ids = torch.randint(2, vocab, (len(lengths), int(lengths.max())), generator=g)
    ids[torch.arange(ids.size(1)).unsqueeze(0) >= lengths.unsqueeze(1)] = 0
    return ids, lengths


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_logits_have_one_value_per_review(cell, pooling, bidirectional):
    torch.manual_seed(0)
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, cell=cell, num_layers=2,
                        bidirectional=bidirectional, pooling=pooling, dropout=0.2, head_hidden=4)
    ids, lengths = random_batch([7, 3, 5, 1])
    logits = model(ids, lengths)
    assert logits.shape == (4,)
    features = model.features(ids, lengths)
    width = 5 * (2 if bidirectional else 1) * {"max+mean": 2, "last+max+mean": 3}.get(pooling, 1)
    assert features.shape == (4, width)


def test_encode_shapes_follow_pytorch_conventions():
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, num_layers=3, bidirectional=True)
    ids, lengths = random_batch([9, 4])
    output, h_n = model.encode(ids, lengths)
    assert output.shape == (2, 9, 2 * 5)
    assert h_n.shape == (3 * 2, 2, 5)


def test_bidirectional_last_state_is_h_n_minus_2_and_minus_1():
    torch.manual_seed(1)
    hidden = 4
    model = build_model(VOCAB, embedding_dim=6, hidden_size=hidden, num_layers=2, bidirectional=True)
    ids, lengths = random_batch([6, 2, 4], seed=3)
    output, h_n = model.encode(ids, lengths)
    state = last_layer_state(h_n, 2)
    assert torch.equal(state, torch.cat([h_n[-2], h_n[-1]], dim=1))
    for i, n in enumerate(lengths.tolist()):
        # forward state: the output at the true last token; backward state: the output at position 0
        assert torch.allclose(state[i, :hidden], output[i, n - 1, :hidden])
        assert torch.allclose(state[i, hidden:], output[i, 0, hidden:])
    # and NOT the output at the padded end for the shorter reviews
    assert not torch.allclose(state[1, hidden:], output[1, -1, hidden:])


def test_last_state_matches_packed_pytorch_lstm():
    torch.manual_seed(2)
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, num_layers=2, bidirectional=True)
    reference = nn.LSTM(6, 5, num_layers=2, bidirectional=True, batch_first=True)
    model.rnn.copy_weights_from(reference)
    ids, lengths = random_batch([8, 3, 5], seed=4)
    embedded = model.embedding(ids)
    packed = pack_padded_sequence(embedded, lengths, batch_first=True, enforce_sorted=False)
    out, (h_n, _) = reference(packed)
    out, _ = pad_packed_sequence(out, batch_first=True)
    ours_out, ours_h = model.encode(ids, lengths)
    assert torch.allclose(ours_out, out, atol=1e-6)
    assert torch.allclose(last_layer_state(ours_h, 2), torch.cat([h_n[-2], h_n[-1]], 1), atol=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_pooling_ignores_padding(pooling, bidirectional):
    """Extra padding, or garbage in the padded positions, must not change any prediction."""
    torch.manual_seed(5)
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, bidirectional=bidirectional, pooling=pooling).eval()
    ids, lengths = random_batch([5, 2, 3], seed=6)
    logits = model(ids, lengths)
    more_padding = torch.cat([ids, torch.zeros(3, 7, dtype=torch.long)], dim=1)
    assert torch.allclose(model(more_padding, lengths), logits, atol=1e-6)
    garbage = more_padding.clone()
    garbage[garbage == 0] = 7  # real word ids where padding should be
    assert torch.allclose(model(garbage, lengths), logits, atol=1e-6)
    alone = torch.stack([model(ids[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(alone.squeeze(1), logits, atol=1e-6)


def test_pool_mean_and_max_by_hand():
    output = torch.tensor([[[1.0], [3.0], [0.0]], [[-2.0], [-4.0], [0.0]]])  # second review: length 2
    lengths = torch.tensor([3, 2])
    h_n = torch.zeros(1, 2, 1)
    assert torch.allclose(pool(output, h_n, lengths, "mean", 1), torch.tensor([[4 / 3], [-3.0]]))
    assert torch.allclose(pool(output, h_n, lengths, "max", 1), torch.tensor([[3.0], [-2.0]]))  # not the padded 0
    h_n = torch.tensor([[[0.0], [-4.0]]])  # the final states: output at each review's last real step
    concat = torch.tensor([[0.0, 3.0, 4 / 3], [-4.0, -2.0, -3.0]])  # last, max, mean in that order
    assert torch.allclose(pool(output, h_n, lengths, "last+max+mean", 1), concat)
    with pytest.raises(ValueError, match="pooling"):
        pool(output, h_n, lengths, "median", 1)


@pytest.mark.parametrize(
    "pooling, bidirectional", [(p, False) for p in POOLINGS] + [("last", True), ("max+mean", True), ("last+max+mean", True)]
)
def test_prefix_logits_equal_the_model_on_each_prefix(pooling, bidirectional):
    torch.manual_seed(7)
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, num_layers=2, bidirectional=bidirectional,
                        pooling=pooling, head_hidden=3).eval()
    ids = torch.randint(2, VOCAB, (70,))  # more than one chunk of 64 prefixes
    prefix = model.prefix_logits(ids)
    expected = torch.stack([model(ids[: t + 1].unsqueeze(0), torch.tensor([t + 1]))[0] for t in range(len(ids))])
    assert prefix.shape == (70,)
    assert torch.allclose(prefix, expected, atol=1e-5)


def test_parameter_count_by_formula():
    model = build_model(1000, embedding_dim=20, hidden_size=64, cell="lstm", head_hidden=64)
    lstm = 4 * 64 * (20 + 64) + 2 * 4 * 64
    assert count_parameters(model) == 1000 * 20 + lstm + (64 * 64 + 64) + (64 + 1)
    gru = build_model(1000, embedding_dim=20, hidden_size=64, cell="gru")
    assert count_parameters(gru) == 1000 * 20 + 3 * 64 * (20 + 64) + 2 * 3 * 64 + 65
    bi = build_model(1000, embedding_dim=20, hidden_size=64, bidirectional=True, pooling="max+mean")
    assert count_parameters(bi) == 1000 * 20 + 2 * lstm + (4 * 64 + 1)


def test_padding_embedding_stays_zero():
    model = build_model(VOCAB, embedding_dim=4, hidden_size=3)
    assert torch.count_nonzero(model.embedding.weight[0]) == 0


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(cell="mamba"), "cell"),  # lesson 10 made "transformer" and "mingru" cells
        (dict(pooling="attention"), "pooling"),
        (dict(dropout=1.0), "dropout"),
        (dict(hidden_size=0), "size"),
    ],
)
def test_bad_config_is_refused(options, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(vocab_size=VOCAB, **options)


def test_config_round_trip():
    config = ModelConfig(vocab_size=VOCAB, cell="gru", bidirectional=True, pooling="max")
    again = SentimentClassifier(ModelConfig(**config.to_dict()))
    assert again.config == config


@pytest.mark.parametrize("pooling, bidirectional, head_hidden", [("last", False, None), ("last+max+mean", True, 4),
                                                                 ("attention-pool", True, None)])
def test_many_classes_give_one_logit_per_class(pooling, bidirectional, head_hidden):
    torch.manual_seed(8)
    model = build_model(VOCAB, embedding_dim=6, hidden_size=5, bidirectional=bidirectional, pooling=pooling,
                        head_hidden=head_hidden, num_classes=8).eval()
    ids, lengths = random_batch([7, 3, 5, 1])
    logits = model(ids, lengths)
    assert logits.shape == (4, 8)
    alone = torch.cat([model(ids[i : i + 1, :n], lengths[i : i + 1]) for i, n in enumerate(lengths.tolist())])
    assert torch.allclose(alone, logits, atol=1e-6)  # padding is still ignored, class by class
    prefix = model.prefix_logits(ids[0, :7])
    assert prefix.shape == (7, 8)
    assert torch.allclose(prefix[-1], logits[0], atol=1e-5)


def test_one_class_keeps_the_binary_model_unchanged():
    """num_classes=1 (the default) is the model of lessons 5-7: same parameters, same random draws."""
    torch.manual_seed(9)
    default = build_model(VOCAB, embedding_dim=6, hidden_size=5)
    torch.manual_seed(9)
    explicit = build_model(VOCAB, embedding_dim=6, hidden_size=5, num_classes=1)
    for a, b in zip(default.state_dict().values(), explicit.state_dict().values()):
        assert torch.equal(a, b)
    assert default.head.out_features == 1
    many = build_model(VOCAB, embedding_dim=6, hidden_size=5, num_classes=8)
    assert count_parameters(many) - count_parameters(default) == 7 * (5 + 1)  # 7 more rows of weights + bias


def test_num_classes_below_one_is_refused():
    with pytest.raises(ValueError, match="num_classes"):
        ModelConfig(vocab_size=VOCAB, num_classes=0)


def test_a_config_saved_before_num_classes_existed_loads():
    old = ModelConfig(vocab_size=VOCAB, cell="gru").to_dict()
    del old["num_classes"]  # what checkpoints of lessons 5-7 hold
    model = SentimentClassifier(ModelConfig(**old))
    assert model.config.num_classes == 1
    ids, lengths = random_batch([4, 2])
    assert model(ids, lengths).shape == (2,)
