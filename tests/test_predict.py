"""Tests of course_utils.predict and course_utils.widgets: bad input, unknown words, very long texts."""

import time

import pytest
import torch

from course_utils.models import build_model
from course_utils.predict import Predictor, load_predictor, predict_sentiment, prediction_by_word, text_to_ids
from course_utils.text import UNK_INDEX, Vocab
from course_utils.training import save_checkpoint
from course_utils.widgets import describe_prediction, sentiment_box

VOCAB = Vocab(["<pad>", "<unk>", "good", "bad", "movie", "the", "was"])


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(len(VOCAB), embedding_dim=8, hidden_size=8).eval()


def test_prediction_is_a_probability(model):
    p = predict_sentiment("The movie was good!", model, VOCAB)
    assert isinstance(p, float) and 0.0 < p < 1.0
    ids = torch.tensor([[5, 4, 6, 2]])
    expected = torch.sigmoid(model(ids, torch.tensor([4]))).item()
    assert p == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("bad", [None, 42, 3.5, b"good movie", ["good", "movie"], {"text": "good"}])
def test_non_strings_raise_type_error(model, bad):
    with pytest.raises(TypeError, match="expects a string"):
        predict_sentiment(bad, model, VOCAB)


@pytest.mark.parametrize("bad", ["", " ", "\n\t  \n"])
def test_empty_text_raises_value_error(model, bad):
    with pytest.raises(ValueError, match="empty"):
        predict_sentiment(bad, model, VOCAB)


def test_text_without_words_raises_value_error(model):
    with pytest.raises(ValueError, match="no words"):
        predict_sentiment("!!! ... ?", model, VOCAB)


def test_only_unknown_words_still_get_a_prediction(model):
    assert text_to_ids("zorblax quuxly", VOCAB) == [UNK_INDEX, UNK_INDEX]
    p = predict_sentiment("zorblax quuxly", model, VOCAB)
    expected = torch.sigmoid(model(torch.tensor([[UNK_INDEX, UNK_INDEX]]), torch.tensor([2]))).item()
    assert p == pytest.approx(expected, abs=1e-6)


def test_a_100000_word_text_works(model):
    text = " ".join(["good", "bad", "movie", "unknownword"] * 25_000)
    start = time.perf_counter()
    p = predict_sentiment(text, model, VOCAB)
    assert 0.0 < p < 1.0
    assert time.perf_counter() - start < 60
    short = predict_sentiment(text, model, VOCAB, max_len=400)  # the way a truncating recipe reads it
    assert 0.0 < short < 1.0


def test_truncation_keeps_head_and_tail(model):
    text = "good " * 300 + "bad " * 300
    ids = [2] * 5 + [3] * 5
    expected = torch.sigmoid(model(torch.tensor([ids]), torch.tensor([10]))).item()
    assert predict_sentiment(text, model, VOCAB, max_len=10, head=0.5) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("options", [dict(), dict(bidirectional=True, pooling="max+mean")])
def test_prediction_by_word_ends_with_the_full_prediction(options):
    torch.manual_seed(1)
    model = build_model(len(VOCAB), embedding_dim=8, hidden_size=8, **options).eval()
    text = "The movie was good, the movie was bad. Good!"
    words, probabilities = prediction_by_word(text, model, VOCAB)
    assert words == ["the", "movie", "was", "good", "the", "movie", "was", "bad", "good"]
    assert len(probabilities) == len(words)
    assert probabilities[-1] == pytest.approx(predict_sentiment(text, model, VOCAB), abs=1e-5)
    assert probabilities[3] == pytest.approx(predict_sentiment("the movie was good", model, VOCAB), abs=1e-5)
    words, probabilities = prediction_by_word(text, model, VOCAB, max_words=4)
    assert len(words) == len(probabilities) == 4
    with pytest.raises(ValueError):
        prediction_by_word("   ", model, VOCAB)


def test_predictor_from_checkpoint(tmp_path, model):
    path = save_checkpoint(tmp_path / "m.pt", model, {"vocab": VOCAB.itos, "max_len": 3, "head": 1.0})
    predictor = load_predictor(path)
    assert isinstance(predictor, Predictor) and predictor.max_len == 3
    assert predictor("good movie was bad") == pytest.approx(predict_sentiment("good movie was", model, VOCAB), abs=1e-6)
    no_vocab = save_checkpoint(tmp_path / "n.pt", model)
    with pytest.raises(ValueError, match="vocabulary"):
        load_predictor(no_vocab)


def test_describe_prediction_explains_bad_input(model):
    predict = Predictor(model, VOCAB)
    assert "P(positive) = " in describe_prediction("good movie", predict)
    assert "empty" in describe_prediction("   ", predict)
    assert "no words" in describe_prediction("?!", predict)
    assert "positive" in describe_prediction("x", lambda text: 0.9)
    assert "negative" in describe_prediction("x", lambda text: 0.1)
    assert "&lt;b&gt;" in describe_prediction("x", lambda text: (_ for _ in ()).throw(ValueError("<b>")))


def test_sentiment_box_updates_live():
    box = sentiment_box(lambda text: 0.25 if "bad" in text else 0.75, value="good")
    text_area, result = box.children
    assert "0.750" in result.value
    text_area.value = "bad film"
    assert "0.250" in result.value and "negative" in result.value
    box = sentiment_box(Predictor(build_model(len(VOCAB), embedding_dim=4, hidden_size=4), VOCAB))
    box.children[0].value = " "
    assert "empty" in box.children[1].value


def test_a_star_rating_model_is_refused_in_one_sentence(tmp_path):
    vocab = Vocab(["<pad>", "<unk>", "great", "film"])
    stars = build_model(len(vocab), embedding_dim=4, hidden_size=4, num_classes=8)
    with pytest.raises(ValueError, match="predicts 8 classes"):
        predict_sentiment("great film", stars, vocab)
    with pytest.raises(ValueError, match="predicts 8 classes"):
        prediction_by_word("great film", stars, vocab)
    path = save_checkpoint(tmp_path / "stars.pt", stars, {"vocab": vocab.itos})
    with pytest.raises(ValueError, match="predicts 8 classes"):
        load_predictor(path)


def test_a_backward_classifier_reads_the_review_from_its_end(tmp_path):
    vocab = Vocab(["<pad>", "<unk>", "great", "film", "bad"])
    torch.manual_seed(0)
    model = build_model(len(vocab), embedding_dim=4, hidden_size=4)
    path = save_checkpoint(tmp_path / "backward.pt", model, {"vocab": vocab.itos, "max_len": 2, "reverse": True})
    predictor = load_predictor(path)
    assert predictor.reverse
    # shortened as in training (first and last word), then reversed: "bad great"
    expected = predict_sentiment("bad great", model, vocab)
    assert predictor("great film bad") == pytest.approx(expected)
    assert predict_sentiment("great film bad", model, vocab, max_len=2, reverse=True) == pytest.approx(expected)
    with pytest.raises(ValueError, match="from their end"):
        predictor.by_word("great film")
