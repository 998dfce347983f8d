"""Tests of course_utils.seq2seq: the date data, the character vocabulary, the encoder-decoder (lesson 7)."""

import datetime

import pytest
import torch

from course_utils import seq2seq
from course_utils.seq2seq import (EOS_ID, FIRST_DAY, FORMATS, LAST_DAY, LONG_MIN_LEN, OUTPUT_LEN, TRAIN_MAX_LEN,
                                  CharVocab, Seq2Seq, date_data, exact_match, make_batch, train_seq2seq, translate)


@pytest.fixture(scope="module")
def data():
    return date_data(n_train=2_000, n_valid=200, n_test=200, n_long=100)


def test_splits_use_disjoint_days_and_fixed_seeds(data):
    days = {name: {iso for _, iso in getattr(data, name)} for name in ("train", "valid", "test", "long")}
    assert not days["train"] & days["valid"] and not days["train"] & days["test"] and not days["valid"] & days["test"]
    assert not days["long"] & (days["train"] | days["valid"])
    assert date_data(n_train=2_000, n_valid=200, n_test=200, n_long=100).train == data.train  # repeatable
    assert date_data(n_train=2_000, n_valid=200, n_test=200, n_long=100, seed=1).train != data.train


def test_lengths_and_targets(data):
    assert max(len(text) for text, _ in data.train) <= TRAIN_MAX_LEN < LONG_MIN_LEN
    assert min(len(text) for text, _ in data.long) >= LONG_MIN_LEN
    for text, iso in data.train[:200] + data.long[:50]:
        assert len(iso) == OUTPUT_LEN and datetime.date.fromisoformat(iso)


def test_every_format_writes_the_date_it_was_given():
    day = datetime.date(2026, 11, 3)  # a tuesday
    texts = {name: write(day) for name, write in FORMATS.items()}
    assert texts["d mon yyyy"] == "3 nov 2026"
    assert texts["dd/mm/yy"] == "03/11/26"
    assert texts["weekday, month d, yyyy"] == "tuesday, november 3, 2026"
    assert texts["the dth of month yyyy"] == "the 3rd of november 2026"
    assert FORMATS["the dth of month yyyy"](datetime.date(2026, 11, 12)) == "the 12th of november 2026"


def test_vocab_round_trip_and_bad_input():
    vocab = CharVocab()
    assert vocab.decode(vocab.encode("  3 Nov 2026 ") + [EOS_ID, 5]) == "3 nov 2026"  # lower-cased, stops at <eos>
    with pytest.raises(ValueError, match="empty"):
        vocab.encode("   ")
    with pytest.raises(ValueError, match="unknown character"):
        vocab.encode("3 nov 2026!")
    with pytest.raises(ValueError, match="'é'"):
        vocab.encode("3 févr 2026")
    with pytest.raises(TypeError):
        vocab.encode(20261103)


def test_batch_shapes_and_padding():
    vocab = CharVocab()
    inputs, lengths, targets = make_batch([("3 nov 2026", "2026-11-03"), ("03/11/26", "2026-11-03")], vocab)
    assert inputs.shape == (2, 10) and lengths.tolist() == [10, 8] and targets.shape == (2, OUTPUT_LEN + 1)
    assert inputs[1, 8:].tolist() == [0, 0] and (targets[:, -1] == EOS_ID).all()


@pytest.mark.parametrize("attention", ["dot", "additive", None])
def test_model_shapes_and_padding_does_not_matter(attention):
    torch.manual_seed(0)
    vocab = CharVocab()
    model = Seq2Seq(len(vocab), embedding_dim=8, hidden_size=6, attention=attention).eval()
    inputs, lengths, targets = make_batch([("3 nov 2026", "2026-11-03"), ("03/11/26", "2026-11-03")], vocab)
    logits = model(inputs, lengths, targets)
    assert logits.shape == (2, OUTPUT_LEN + 1, len(vocab))
    alone = model(inputs[1:, :8], lengths[1:], targets[1:])
    assert torch.allclose(logits[1], alone[0], atol=1e-5)
    ids, weights = model.greedy(inputs, lengths)
    assert ids.shape == (2, OUTPUT_LEN + 1)
    if attention:
        assert weights.shape == (2, OUTPUT_LEN + 1, 10)
        assert torch.all(weights[1, :, 8:] == 0) and torch.allclose(weights.sum(-1), torch.ones(2, OUTPUT_LEN + 1))
    else:
        assert weights is None
    free = model(inputs, lengths, targets, teacher_forcing=False)
    assert torch.equal(free.argmax(-1), ids)  # without teacher forcing, training sees what greedy decoding does


def test_a_small_model_learns_the_dates(data):
    torch.manual_seed(0)
    vocab = CharVocab()
    model = Seq2Seq(len(vocab), attention="dot")
    seen = []
    losses = train_seq2seq(model, data.train[:600], vocab, epochs=2, batch_size=32, lr=5e-3, log=None,
                           after_epoch=lambda epoch: seen.append(epoch))
    assert losses[-1] < 0.8 * losses[0] and seen == [1, 2]
    assert 0 <= exact_match(model, data.valid[:50], vocab) <= 1
    assert len(translate(model, "3 nov 2026", vocab)) <= OUTPUT_LEN + 1
    with pytest.raises(ValueError, match="unknown"):
        translate(model, "3 nov 2026 #", vocab)
    with pytest.raises(ValueError, match="empty"):
        translate(model, "", vocab)


def test_the_data_covers_36525_days():
    assert (LAST_DAY - FIRST_DAY).days + 1 == 36_525  # 1950-2049 inclusive: 100 years, 25 of them leap years


def test_an_unknown_attention_is_refused():
    with pytest.raises(ValueError, match="'dot', 'additive' or None"):
        Seq2Seq(10, attention=True)


def test_the_keys_are_projected_once_and_give_the_same_step():
    """decode_step with the keys computed by the caller (once per input) equals computing them in the step."""
    torch.manual_seed(0)
    vocab = CharVocab()
    model = Seq2Seq(len(vocab), embedding_dim=8, hidden_size=6, attention="additive").eval()
    inputs, lengths, _ = make_batch([("3 nov 2026", "2026-11-03"), ("03/11/26", "2026-11-03")], vocab)
    states, mask, state = model.encode(inputs, lengths)
    previous = torch.tensor([1, 1])
    once = model.decode_step(previous, state, states, mask, model.attention_keys(states))
    here = model.decode_step(previous, state, states, mask)
    assert all(torch.equal(a, b) for a, b in zip(once, here))
    assert model.attention_keys(states).shape == (2, 10, 6)  # projected to the attention size (hidden_size)


@pytest.mark.parametrize("attention", ["dot", "additive", None])
def test_the_model_runs_where_its_weights_are(attention):
    """On the meta device (shapes without numbers), every tensor of a step and of greedy decoding stays there:
    on a GPU the same code runs on the GPU."""
    vocab = CharVocab()
    model = Seq2Seq(len(vocab), embedding_dim=8, hidden_size=6, attention=attention).to("meta")
    inputs, lengths, targets = make_batch([("3 nov 2026", "2026-11-03"), ("03/11/26", "2026-11-03")], vocab, "meta")
    assert {t.device.type for t in (inputs, lengths, targets)} == {"meta"}
    assert model(inputs, lengths, targets).device.type == "meta"
    ids, weights = model.greedy(inputs, lengths)
    assert ids.device.type == "meta" and (weights is None or weights.device.type == "meta")


def test_training_and_decoding_use_the_model_device(data, monkeypatch):
    """train_seq2seq and predict_dates send every batch to the device of the model's weights."""
    vocab = CharVocab()
    model = Seq2Seq(len(vocab), embedding_dim=8, hidden_size=6)
    seen = []
    original = seq2seq.make_batch

    def recording(examples, vocab, device=None):
        seen.append(device)
        return original(examples, vocab, device)

    monkeypatch.setattr(seq2seq, "make_batch", recording)
    train_seq2seq(model, data.train[:64], vocab, epochs=1, batch_size=32, log=None)
    assert seen == [torch.device("cpu")] * 2
    monkeypatch.setattr(seq2seq, "device_of", lambda model: torch.device("meta"))
    with pytest.raises(RuntimeError):  # the inputs went to "meta", where the CPU model cannot read them
        translate(model, "3 nov 2026", vocab)
