"""Baselines without a neural network: bag-of-n-grams classifiers and star-rating baselines (lesson 9).

A recurrent network has to beat what a linear classifier on word counts already gets. Two classics:

* **NBSVM** (Wang & Manning 2012, "Baselines and Bigrams"): mark which words and word pairs
  (unigrams and bigrams) a review contains (1 or 0, not how often), weigh each such feature by its
  naive-Bayes *log-count ratio* ``r`` (how much more often it appears in positive than in
  negative reviews), and train a linear classifier on the weighted features. The paper reports
  91.2% test accuracy on IMDb, better than many neural models of its time. The paper's
  classifier is an SVM whose weights are then mixed with their mean; as in most re-implementations,
  a logistic regression stands in for both steps here (and gives probabilities).
* **TF-IDF + logistic regression**: count the n-grams, damp the counts (``1 + log(count)``),
  weigh rare n-grams up (inverse document frequency), scale each review to length 1.

Both read the course's tokens (``course_utils.text.tokenize``), so they see the same words as the
neural models. Their regularization ``C`` is chosen on the validation reviews (``choose_C``), never
on the test reviews. Trained on the course's 20,000 training reviews with those choices, NBSVM
gets 91.28% test accuracy (the paper: 91.22%) and TF-IDF + logistic regression 90.52%, each in
well under a minute on a laptop CPU.

For the star ratings (1-4 and 7-10 stars): ``class_of_stars`` / ``stars_of_class`` map the 8
ratings to the class indices 0..7 a classifier predicts, ``mean_absolute_error`` measures how
many stars a prediction is off on average, and two baselines tell what a star model has to beat:
a constant rating, and a sentiment classifier's verdict read as one rating per side. Each comes
in the form that is best at the measure it is compared on: for exact accuracy the most common
rating (``majority_baseline``; 1 or 10 stars for the verdict), for the mean absolute error the
median (``median_baseline``; each side's median for the verdict, ``side_ratings``), since the
median is the constant that is the fewest stars off (``median_rating``).
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch
from scipy import sparse
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from .data import RATINGS
from .text import tokenize

Document = Union[str, Sequence[str]]  # a review's text, or its tokens (e.g. from text.tokenize_all)
Numbers = Union[Sequence[float], np.ndarray, torch.Tensor]

# The defaults of C, chosen with ``choose_C`` on the 5,000 validation reviews after training on
# the 20,000 others (unigrams + bigrams, min_df=1: 1,284,733 features). Validation accuracy:
#   NBSVM   C = 0.03: 91.20%  0.1: 91.44%  0.3: 91.66%  1: 91.70%  3: 91.64%  10: 91.54%
#   TF-IDF  C = 3: 90.34%  10: 90.88%  30: 91.10%  100: 91.24%  300: 91.30%  1000: 91.30%
# Near the top the curves are flat: one standard error on 5,000 reviews is 0.4 points.
NBSVM_C = 1.0
TFIDF_C = 300.0


def tokens_of(document: Document) -> list[str]:
    """The course's tokens of a review: ``tokenize(text)`` for a string, the list itself for tokens.

    Passing tokens saves the time of tokenizing again (``tokenize_all`` caches them).
    """
    if isinstance(document, str):
        return tokenize(document)
    return list(document)


def log_count_ratio(features: sparse.spmatrix, labels: Numbers, alpha: float = 1.0) -> np.ndarray:
    """The naive-Bayes log-count ratio ``r`` of every feature (Wang & Manning 2012, section 2.1).

    ``p = alpha + sum of the feature over the positive reviews``, ``q`` the same over the negative
    ones; ``r = log((p / sum(p)) / (q / sum(q)))``. ``r > 0``: the feature is more frequent in
    positive reviews; ``r < 0``: in negative ones; ``alpha`` (add-one smoothing) keeps a feature
    seen in one class only from getting an infinite weight.
    """
    labels = np.asarray(labels)
    if set(np.unique(labels)) - {0, 1}:
        raise ValueError("log_count_ratio() needs labels 0 (negative) and 1 (positive).")
    if alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}.")
    p = alpha + np.asarray(features[labels == 1].sum(axis=0)).ravel()
    q = alpha + np.asarray(features[labels == 0].sum(axis=0)).ravel()
    return np.log((p / p.sum()) / (q / q.sum()))


class NgramClassifier:
    """Reviews -> n-gram features -> logistic regression: what NBSVM and TF-IDF + LR share.

    ``fit(documents, labels)`` learns the features' vocabulary from the training reviews, any
    feature weights, and the classifier; ``predict_proba`` gives P(positive) of each review;
    ``score`` the accuracy. A document is a text or its list of tokens. ``min_df`` drops n-grams
    found in fewer training reviews than that.
    """

    def __init__(self, C: float = 1.0, ngram_range: tuple[int, int] = (1, 2), min_df: int = 1):
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}.")
        self.C = C
        self.ngram_range = ngram_range
        self.min_df = min_df
        self.vectorizer = None
        self.classifier = None

    def make_vectorizer(self) -> CountVectorizer:
        """The scikit-learn object that turns documents into a sparse (reviews, n-grams) matrix."""
        raise NotImplementedError

    def fit_weights(self, counts: sparse.spmatrix, labels: np.ndarray) -> None:
        """Learn feature weights from the training features (NBSVM: the log-count ratio)."""

    def weigh(self, counts: sparse.spmatrix) -> sparse.csr_matrix:
        """The features the classifier reads (unchanged here; NBSVM multiplies by ``r``)."""
        return sparse.csr_matrix(counts)

    def _vectorize(self, documents: Iterable[Document], fit: bool = False) -> sparse.csr_matrix:
        documents = list(documents)
        if fit:
            self.vectorizer = self.make_vectorizer()
            return self.vectorizer.fit_transform(documents)
        if self.vectorizer is None:
            raise RuntimeError(f"{type(self).__name__} is not trained yet: call fit() first.")
        return self.vectorizer.transform(documents)

    def _fit_classifier(self, features: sparse.csr_matrix, labels: np.ndarray) -> None:
        # liblinear in its dual form is fast when there are more features than reviews, as here
        self.classifier = LogisticRegression(C=self.C, solver="liblinear", dual=True, max_iter=1000)
        self.classifier.fit(features, labels)

    def fit(self, documents: Iterable[Document], labels: Numbers) -> "NgramClassifier":
        """Learn the vocabulary, the feature weights and the classifier from training reviews."""
        labels = _binary_labels(labels)
        counts = self._vectorize(documents, fit=True)
        self.fit_weights(counts, labels)
        self._fit_classifier(self.weigh(counts), labels)
        return self

    def choose_C(
        self,
        train_documents: Iterable[Document],
        train_labels: Numbers,
        valid_documents: Iterable[Document],
        valid_labels: Numbers,
        candidates: Sequence[float] = (0.01, 0.1, 1.0, 10.0, 100.0, 1000.0),
    ) -> dict[float, float]:
        """Try each ``C`` on the validation reviews, keep the best and end trained with it.

        The features do not depend on ``C``, so they are computed once; only the classifier is
        trained again for each candidate. Returns ``{C: validation accuracy}``; ``self.C`` is the
        best one (the smallest of equals: the most regularized).
        """
        train_labels = _binary_labels(train_labels)
        valid_labels = _binary_labels(valid_labels)
        counts = self._vectorize(train_documents, fit=True)
        self.fit_weights(counts, train_labels)
        train_features = self.weigh(counts)
        valid_features = self.weigh(self._vectorize(valid_documents))
        accuracies = {}
        for C in candidates:
            self.C = C
            self._fit_classifier(train_features, train_labels)
            accuracies[C] = float((self.classifier.predict(valid_features) == valid_labels).mean())
        self.C = max(accuracies, key=lambda c: (accuracies[c], -c))
        self._fit_classifier(train_features, train_labels)
        return accuracies

    def predict_proba(self, documents: Iterable[Document]) -> np.ndarray:
        """P(positive) of each review, shape (N,)."""
        features = self.weigh(self._vectorize(documents))
        return self.classifier.predict_proba(features)[:, 1]

    def predict(self, documents: Iterable[Document]) -> np.ndarray:
        """1 (positive) where P(positive) > 0.5, else 0."""
        return (self.predict_proba(documents) > 0.5).astype(int)

    def score(self, documents: Iterable[Document], labels: Numbers) -> float:
        """Accuracy: the share of reviews classified right."""
        return float((self.predict(documents) == _binary_labels(labels)).mean())

    def __repr__(self) -> str:
        return f"{type(self).__name__}(C={self.C}, ngram_range={self.ngram_range}, min_df={self.min_df})"


class NBSVM(NgramClassifier):
    """Naive-Bayes features + a linear classifier (Wang & Manning 2012): ``NBSVM().fit(texts, labels)``.

    Features: 1 if the review contains the n-gram, else 0 ("binarized"). Each is multiplied by its
    log-count ratio ``r`` (``log_count_ratio``, ``alpha``) before the logistic regression, so a
    word that naive Bayes finds telling starts with a large feature, and a neutral one (r near 0)
    hardly counts.
    """

    def __init__(self, C: float = NBSVM_C, ngram_range: tuple[int, int] = (1, 2), min_df: int = 1,
                 alpha: float = 1.0):
        super().__init__(C, ngram_range, min_df)
        self.alpha = alpha
        self.r: Optional[np.ndarray] = None

    def make_vectorizer(self) -> CountVectorizer:
        return CountVectorizer(tokenizer=tokens_of, lowercase=False, token_pattern=None,
                               ngram_range=self.ngram_range, min_df=self.min_df, binary=True)

    def fit_weights(self, counts: sparse.spmatrix, labels: np.ndarray) -> None:
        self.r = log_count_ratio(counts, labels, self.alpha)

    def weigh(self, counts: sparse.spmatrix) -> sparse.csr_matrix:
        return sparse.csr_matrix(counts.multiply(self.r))


class TfidfLogisticRegression(NgramClassifier):
    """TF-IDF weighted n-gram counts + logistic regression: ``TfidfLogisticRegression().fit(texts, labels)``.

    ``sublinear_tf``: a count c becomes 1 + log(c), so the tenth "great" adds less than the first.
    """

    def __init__(self, C: float = TFIDF_C, ngram_range: tuple[int, int] = (1, 2), min_df: int = 1):
        super().__init__(C, ngram_range, min_df)

    def make_vectorizer(self) -> TfidfVectorizer:
        return TfidfVectorizer(tokenizer=tokens_of, lowercase=False, token_pattern=None,
                               ngram_range=self.ngram_range, min_df=self.min_df, sublinear_tf=True)


def _binary_labels(labels: Numbers) -> np.ndarray:
    labels = np.asarray(labels).astype(int)
    if labels.ndim != 1 or set(np.unique(labels)) - {0, 1}:
        raise ValueError("labels must be a list of 0 (negative) and 1 (positive).")
    return labels


def timed_fit(model: NgramClassifier, documents: Sequence[Document], labels: Numbers) -> float:
    """Train ``model`` and return the seconds it took (tokenizing included when given texts)."""
    start = time.perf_counter()
    model.fit(documents, labels)
    return time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Star ratings: 8 classes, and what a star model has to beat
# ----------------------------------------------------------------------------------------------


def class_of_stars(stars: int) -> int:
    """The class index of a rating: 1, 2, 3, 4, 7, 8, 9, 10 stars -> 0, 1, ..., 7."""
    if stars not in RATINGS:
        raise ValueError(f"IMDb's labeled reviews have {RATINGS} stars, got {stars!r}.")
    return RATINGS.index(stars)


def stars_of_class(index: int) -> int:
    """The rating of a class index: 0, 1, ..., 7 -> 1, 2, 3, 4, 7, 8, 9, 10 stars."""
    if not 0 <= int(index) < len(RATINGS) or int(index) != index:
        raise ValueError(f"a star class is an integer from 0 to {len(RATINGS) - 1}, got {index!r}.")
    return RATINGS[int(index)]


def mean_absolute_error(predicted_stars: Numbers, true_stars: Numbers) -> float:
    """How many stars a prediction is off, on average: mean of |predicted - true|."""
    predicted = np.asarray(predicted_stars, dtype=float)
    true = np.asarray(true_stars, dtype=float)
    if predicted.shape != true.shape or predicted.ndim != 1 or len(true) == 0:
        raise ValueError(f"need two equally long, non-empty lists of stars, got shapes {predicted.shape} "
                         f"and {true.shape}.")
    return float(np.abs(predicted - true).mean())


def star_accuracy(predicted_stars: Numbers, true_stars: Numbers) -> float:
    """The share of reviews whose rating is predicted exactly."""
    predicted = np.asarray(predicted_stars)
    true = np.asarray(true_stars)
    mean_absolute_error(predicted, true)  # the same checks of the input
    return float((predicted == true).mean())


def majority_baseline(train_stars: Numbers, test_stars: Numbers) -> tuple[float, float]:
    """(accuracy, mean absolute error) of always predicting the most common training rating.

    Ties go to the lower rating. Only the training ratings choose the prediction. The most common
    rating is the constant that gets the most ratings *exactly* right; for the fewest stars off,
    see ``median_baseline``.
    """
    counts = Counter(int(s) for s in np.asarray(train_stars).ravel())
    if not counts:
        raise ValueError("majority_baseline() needs at least one training rating.")
    most_common = min(counts, key=lambda s: (-counts[s], s))
    predicted = np.full(len(np.asarray(test_stars)), most_common)
    return star_accuracy(predicted, test_stars), mean_absolute_error(predicted, test_stars)


def median_rating(stars: Numbers) -> int:
    """The (lower) median of some ratings: the constant that is the fewest stars off on average.

    Moving a guess c one star up adds one star of error for every rating at or below c and
    removes one for every rating above it, so the mean absolute error falls as long as more than
    half of the ratings lie above c: it is smallest at the median.
    """
    ordered = np.sort(np.asarray(stars).ravel())
    if len(ordered) == 0:
        raise ValueError("median_rating() needs at least one rating.")
    return int(ordered[(len(ordered) - 1) // 2])


def median_baseline(train_stars: Numbers, test_stars: Numbers) -> tuple[float, float]:
    """(accuracy, mean absolute error) of always predicting the median training rating.

    The constant baseline a model's mean absolute error must beat (``median_rating``).
    """
    predicted = np.full(len(np.asarray(test_stars)), median_rating(train_stars))
    return star_accuracy(predicted, test_stars), mean_absolute_error(predicted, test_stars)


def side_ratings(train_stars: Numbers, rule: str = "mode") -> tuple[int, int]:
    """(negative, positive): the rating a polarity verdict is read as, for each side.

    ``"mode"``: the most common rating of the negative (1-4) and of the positive (7-10) training
    reviews, which gets the most ratings exactly right; ``"median"``: the median of each side,
    which is the fewest stars off. Ties of the mode go to the more extreme rating.
    """
    stars = np.asarray(train_stars).ravel()
    sides = (stars[stars <= 4], stars[stars >= 7])
    if any(len(side) == 0 for side in sides):
        raise ValueError("side_ratings() needs training ratings on both sides (1-4 and 7-10).")
    if rule == "median":
        return median_rating(sides[0]), median_rating(sides[1])
    if rule != "mode":
        raise ValueError(f"rule must be 'mode' or 'median', got {rule!r}.")
    negative, positive = Counter(sides[0].tolist()), Counter(sides[1].tolist())
    return (min(negative, key=lambda s: (-negative[s], s)), min(positive, key=lambda s: (-positive[s], -s)))


def polarity_baseline(p_positive: Numbers, test_stars: Numbers, negative: int = 1,
                      positive: int = 10) -> tuple[float, float]:
    """(accuracy, mean absolute error) of a sentiment classifier read as stars.

    A review with P(positive) > 0.5 gets ``positive`` stars, any other ``negative`` stars. The
    defaults are the extreme ratings, the most common ones on each side (``side_ratings``); for
    the fewest stars off, read the verdict as each side's median instead
    (``side_ratings(train_stars, "median")``).
    """
    p_positive = np.asarray(p_positive, dtype=float)
    predicted = np.where(p_positive > 0.5, positive, negative)
    return star_accuracy(predicted, test_stars), mean_absolute_error(predicted, test_stars)


def stars_from_probabilities(probabilities: Numbers, rule: str = "median") -> np.ndarray:
    """One rating per review from its distribution over the 8 classes, shape (N, 8) -> (N,).

    ``"argmax"``: the most probable rating, which makes the most exact guesses. ``"median"``: the
    rating where the cumulative probability first reaches one half, which makes the smallest
    expected error in stars (the median minimizes the mean absolute error). With 45% on 1 star,
    15% on 7 and 40% on 10, argmax says 1 star (expected error 0.15 * 6 + 0.40 * 9 = 4.5 stars)
    and the median 7 stars (0.45 * 6 + 0.40 * 3 = 3.9 stars).
    """
    probabilities = torch.as_tensor(probabilities, dtype=torch.float64)
    if probabilities.dim() != 2 or probabilities.size(1) != len(RATINGS):
        raise ValueError(f"need probabilities of shape (N, {len(RATINGS)}), got {tuple(probabilities.shape)}.")
    if rule == "argmax":
        classes = probabilities.argmax(dim=1)
    elif rule == "median":
        cumulative = probabilities.cumsum(dim=1) / probabilities.sum(dim=1, keepdim=True)
        classes = (cumulative < 0.5).sum(dim=1).clamp(max=len(RATINGS) - 1)
    else:
        raise ValueError(f"rule must be 'argmax' or 'median', got {rule!r}.")
    return np.asarray(RATINGS)[classes.numpy()]
