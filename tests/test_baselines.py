"""Tests of course_utils.baselines: NBSVM and TF-IDF on toy reviews, the log-count ratio, star baselines."""

import math
import random

import numpy as np
import pytest
import torch

from course_utils.baselines import (
    NBSVM,
    TfidfLogisticRegression,
    class_of_stars,
    log_count_ratio,
    majority_baseline,
    mean_absolute_error,
    median_baseline,
    median_rating,
    polarity_baseline,
    side_ratings,
    star_accuracy,
    stars_from_probabilities,
    stars_of_class,
)
from course_utils.data import RATINGS
from course_utils.text import tokenize

GOOD = ["great", "wonderful", "loved", "brilliant", "moving", "superb"]
BAD = ["awful", "boring", "hated", "terrible", "dull", "waste"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "and", "it", "scene", "not"]


def toy_reviews(n, seed=0):
    """Short reviews whose one or two sentiment words give the label away; labels alternate 0, 1."""
    rng = random.Random(seed)
    reviews = []
    for i in range(n):
        label = i % 2
        words = rng.choices(NEUTRAL, k=rng.randint(4, 10)) + rng.choices(GOOD if label else BAD, k=rng.randint(1, 2))
        rng.shuffle(words)
        reviews.append((" ".join(words).capitalize() + "!<br />", label))
    return [text for text, _ in reviews], [label for _, label in reviews]


@pytest.mark.parametrize("kind", [NBSVM, TfidfLogisticRegression])
def test_a_toy_separable_problem_is_learned(kind):
    train_texts, train_labels = toy_reviews(60)
    test_texts, test_labels = toy_reviews(40, seed=1)
    model = kind().fit(train_texts, train_labels)  # the C chosen on IMDb's validation reviews
    assert model.score(test_texts, test_labels) >= 0.95  # chance: 0.5
    p = model.predict_proba(test_texts)
    assert p.shape == (40,) and ((0 < p) & (p < 1)).all()
    assert p[np.array(test_labels) == 1].min() > p[np.array(test_labels) == 0].max()
    # tokens instead of texts: the same features, so the same probabilities
    tokens = [tokenize(text) for text in test_texts]
    assert np.allclose(model.predict_proba(tokens), p)
    assert "<br" not in " ".join(model.vectorizer.get_feature_names_out())  # the course's tokenizer drops HTML


def test_log_count_ratio_on_three_documents():
    documents = ["good movie", "good good fun", "bad movie"]
    labels = [1, 1, 0]
    model = NBSVM(ngram_range=(1, 1)).fit(documents, labels)
    r = dict(zip(model.vectorizer.get_feature_names_out(), model.r))
    # binarized: "good good" counts once. Positive sums (+1): bad 1, fun 2, good 3, movie 2 (total 8);
    # negative sums (+1): bad 2, fun 1, good 1, movie 2 (total 6)
    expected = {"bad": (1 / 8) / (2 / 6), "fun": (2 / 8) / (1 / 6), "good": (3 / 8) / (1 / 6), "movie": (2 / 8) / (2 / 6)}
    assert r.keys() == expected.keys()
    for word, ratio in expected.items():
        assert r[word] == pytest.approx(math.log(ratio)), word
    counts = model.vectorizer.transform(documents)
    assert np.allclose(log_count_ratio(counts, labels, alpha=1.0), model.r)
    features = model.weigh(counts).toarray()
    assert np.allclose(features[1], [0, r["fun"], r["good"], 0])  # present n-grams carry their r, others 0


def test_bigrams_are_features():
    model = NBSVM().fit(["not good at all", "really good fun"], [0, 1])
    names = set(model.vectorizer.get_feature_names_out())
    assert {"not good", "good fun", "good"} <= names
    assert model.r[list(model.vectorizer.get_feature_names_out()).index("not good")] < 0


def test_choose_c_keeps_the_best_on_validation():
    train_texts, train_labels = toy_reviews(40)
    valid_texts, valid_labels = toy_reviews(30, seed=2)
    model = NBSVM()
    accuracies = model.choose_C(train_texts, train_labels, valid_texts, valid_labels, candidates=(1e-4, 1.0))
    assert set(accuracies) == {1e-4, 1.0}
    assert model.C == max(accuracies, key=lambda c: (accuracies[c], -c))
    assert model.score(valid_texts, valid_labels) == accuracies[model.C]  # it ends trained with that C


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="0 .negative. and 1"):
        NBSVM().fit(["a b", "c d"], [0, 2])
    with pytest.raises(ValueError, match="C must be positive"):
        NBSVM(C=0)
    with pytest.raises(RuntimeError, match="fit"):
        NBSVM().predict_proba(["a"])


def test_star_classes_round_trip():
    assert [class_of_stars(s) for s in RATINGS] == list(range(8))
    assert [stars_of_class(i) for i in range(8)] == [1, 2, 3, 4, 7, 8, 9, 10]
    for bad in (0, 5, 6, 11):
        with pytest.raises(ValueError, match="stars"):
            class_of_stars(bad)
    for bad in (-1, 8, 2.5):
        with pytest.raises(ValueError, match="0 to 7"):
            stars_of_class(bad)


def test_mean_absolute_error_and_accuracy_by_hand():
    assert mean_absolute_error([1, 10, 7], [2, 10, 3]) == pytest.approx((1 + 0 + 4) / 3)
    assert mean_absolute_error(torch.tensor([4, 4]), np.array([1, 10])) == 4.5
    assert star_accuracy([1, 10, 7], [2, 10, 7]) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="equally long"):
        mean_absolute_error([1, 2], [1])


def test_majority_baseline_by_hand():
    # most common training rating: 10 (three times); test: right once, off by 0 + 9 + 3 + 1 stars
    assert majority_baseline([1, 1, 10, 10, 10, 4], [10, 1, 7, 9]) == (0.25, 3.25)
    assert majority_baseline([1, 10], [1, 10]) == (0.5, 4.5)  # a tie goes to the lower rating


def test_polarity_baseline_by_hand():
    # P(positive) > 0.5 -> 10 stars, else 1 star (0.5 itself is negative): predictions 10, 1, 10, 1
    assert polarity_baseline([0.9, 0.2, 0.6, 0.5], [10, 2, 7, 4]) == (0.25, (0 + 1 + 3 + 3) / 4)
    assert polarity_baseline(torch.tensor([0.99, 0.01]), [10, 1]) == (1.0, 0.0)


def test_stars_from_probabilities_argmax_and_median():
    p = torch.zeros(2, 8)
    p[0, [0, 4, 7]] = torch.tensor([0.45, 0.15, 0.40])  # 1 star 45%, 7 stars 15%, 10 stars 40%
    p[1, [2, 3]] = torch.tensor([0.2, 0.8])
    assert stars_from_probabilities(p, "argmax").tolist() == [1, 4]
    assert stars_from_probabilities(p, "median").tolist() == [7, 4]
    exactly_half = torch.tensor([[0.5, 0, 0, 0, 0, 0, 0, 0.5]])
    assert stars_from_probabilities(exactly_half, "median").tolist() == [1]  # cumulative reaches 1/2 at 1 star
    with pytest.raises(ValueError, match="rule"):
        stars_from_probabilities(p, "mean")
    with pytest.raises(ValueError, match="shape"):
        stars_from_probabilities(torch.ones(3, 2), "argmax")


def test_the_median_is_the_constant_with_the_smallest_mean_absolute_error():
    rng = random.Random(0)
    for _ in range(20):
        stars = rng.choices(RATINGS, weights=[20, 9, 10, 11, 10, 12, 9, 19], k=rng.randint(1, 40))
        errors = {c: mean_absolute_error([c] * len(stars), stars) for c in range(1, 11)}
        assert errors[median_rating(stars)] == pytest.approx(min(errors.values()))
    assert median_rating([1, 1, 2, 9, 10]) == 2 and median_rating([1, 10]) == 1  # the lower median
    assert median_baseline([1, 1, 1, 10, 10], [1, 10]) == (0.5, 4.5)  # median = mode = 1 here
    # training ratings 1 x2, 4 x1, 10 x2: the mode is 1 (ties go low), the median 4
    assert majority_baseline([1, 1, 4, 10, 10], [1, 4, 10]) == (pytest.approx(1 / 3), 4.0)  # 0 + 3 + 9 stars off
    assert median_baseline([1, 1, 4, 10, 10], [1, 4, 10]) == (pytest.approx(1 / 3), 3.0)  # 3 + 0 + 6 stars off
    with pytest.raises(ValueError, match="at least one"):
        median_rating([])


def test_side_ratings_by_mode_and_by_median():
    train = [1, 1, 1, 2, 2, 3, 4, 4, 4, 7, 8, 8, 9, 10, 10]
    assert side_ratings(train) == (1, 10)  # modes: 1 (3 times, 4 too: ties go to the extreme), 10 and 8 (twice each)
    assert side_ratings(train, "median") == (2, 8)  # 1 1 1 2 2 3 4 4 4 -> 2; 7 8 8 9 10 10 -> 8
    assert polarity_baseline([0.9, 0.1], [9, 3], *side_ratings(train, "median")) == (0.0, 1.0)
    with pytest.raises(ValueError, match="both sides"):
        side_ratings([1, 2, 3])
    with pytest.raises(ValueError, match="rule"):
        side_ratings(train, "mean")
