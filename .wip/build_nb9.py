import sys
sys.path.insert(0, "/tmp/h3")
from nbtools import build

cells = []
md = lambda s: cells.append(("md", s))
code = lambda s: cells.append(("code", s))

md(r"""
# Lesson 9 — Reading without labels: ULMFiT on IMDb, measured fairly

Lesson 8's language model read 70,000 reviews without a single label and learned to predict the
next word better than counting word pairs. Does that reading help a classifier that has few
labels? **ULMFiT** (Howard & Ruder, 2018) says yes, *if* the classifier is started from the
language model and fine-tuned gently: different learning rates for different layers, a slanted
triangular schedule, the layers unfrozen one at a time from the top, concat pooling, and a
forward and a backward model averaged. The paper pretrained on Wikipedia first; here the
language model has read IMDb alone, for a few CPU minutes. (An earlier paper, Dai & Le 2015,
pretrained LSTMs on IMDb's own text and reached 92.8% test accuracy with a *sequence
autoencoder*, SA-LSTM; their LSTM pretrained as a language model, LM-LSTM, scored a little lower.
Both used far larger models and hours of GPU time.)

1. the classifier ULMFiT builds on a language model, and its tricks, each written in the open;
2. a **fair comparison**: a random start and pretrained starts, each with a learning rate
   searched on validation, the same epochs and seeds, one test evaluation each, and a paired
   test on the test reviews;
3. **where pretraining pays**: validation accuracy against the number of labelled reviews;
4. the number every recurrent model must beat: a bag of bigrams (NBSVM), and its average with
   lesson 6's BiLSTM;
5. many classes: a review's star rating with `CrossEntropyLoss`, against baselines that minimise
   the same error;
6. the full-size recipe on the command line, quoted from a recorded run.

The stored outputs come from a 2-core CPU; the lesson runs in about 12 minutes there. Times are
printed, never asserted.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
# Setup: on Google Colab, install the course's helper package first (elsewhere it is already installed).
# A fork points this address (and the README's badges) at itself: python -m course_utils.course set-repository OWNER/NAME
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/rnn-course/rnn-pytorch-course"], check=True)

import math
import random
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from IPython.display import display

from course_utils import finetune, lm
from course_utils.baselines import (NBSVM, majority_baseline, mean_absolute_error, median_baseline, median_rating,
                                    polarity_baseline, side_ratings, star_accuracy, stars_from_probabilities,
                                    stars_of_class)
from course_utils.data import RATINGS, default_data_dir
from course_utils.models import build_model, count_parameters
from course_utils.plots import plot_confusion_matrix
from course_utils.predict import load_predictor
from course_utils.recorded import recorded_run
from course_utils.splits import load_splits, prepare_imdb
from course_utils.stats import mcnemar, standard_error
from course_utils.training import (accuracy_of, fit, make_loader, predict_probabilities, set_seed, train_epoch,
                                   truncate)
from course_utils.course import print_versions

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print_versions(device)
""")

md(r"""
## 1. The language model, and the classifier built on it

The labelled reviews are lesson 6's split (20,000 training, 5,000 validation, 25,000 test). The
language model is lesson 8's (`lm.LESSON8`: an LSTM of 64 units on 100-dimensional word vectors,
trained on the 70,000 training and unlabeled reviews, never on test). `lm.load_or_train` reads
it from `data/checkpoints/lm.pt` when lesson 8 saved it there, and trains it the same way when
it is missing.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
data = prepare_imdb()
lm_data = lm.prepare_lm_data(data=data)
forward_lm, forward_info = lm.load_or_train(lm.LESSON8, lm_data, device=device)
print(data)
print(f"forward language model: validation perplexity {forward_info['valid_perplexity']:.1f}, "
      f"{'trained now' if forward_info['trained_now'] else 'saved by lesson 8'} "
      f"({time.perf_counter() - start:.0f} s)")
""")

md(r"""
ULMFiT's classifier *is* the language model with a new top: the same embedding and LSTM, and
instead of the layer that predicts the next word, a head that reads the LSTM's states. The head
reads them with **concat pooling**: the last state, the maximum and the mean over time, side by
side (lesson 5's `pooling="last+max+mean"`), because the opinion of a long review may sit
anywhere in it. So the classifier has the language model's sizes, and
`lm.copy_into_classifier` copies its embedding (word by word: the language model's vocabulary
has `<eos>` at id 2, lesson 8) and its LSTM. Started that way, the classifier's LSTM reads a
review exactly as the language model does:
""")

code(r"""
CLASSIFIER = dict(embedding_dim=100, hidden_size=64, pooling="last+max+mean", dropout=0.4, embedding_dropout=0.4)
set_seed(0)
classifier = build_model(len(data.vocab), **CLASSIFIER)
lm.copy_into_classifier(forward_lm.cpu(), classifier, lm_data.vocab, data.vocab)
review = data.train[0][0][:50]
with torch.no_grad():
    in_classifier, _ = classifier.rnn.layers[0][0](classifier.embedding(torch.tensor([review])))
    in_lm, _ = forward_lm.rnn(forward_lm.embedding(torch.tensor([[lm_data.vocab[w] for w in data.vocab.decode(review)]])))
print(f"features for the head: {classifier.head.in_features} = 3 poolings x 64 units; "
      f"largest difference between the two LSTMs' states: {(in_classifier - in_lm).abs().max():.1e}")
assert torch.allclose(in_classifier, in_lm, atol=1e-6) and classifier.head.in_features == 3 * 64
""")

md(r"""
### Discriminative learning rates

The layers of the classifier know different things. The embedding holds what every word means,
learned from 16 million words; the LSTM how words combine; the head is new and knows nothing.
ULMFiT gives each **layer group** its own learning rate: the head the full rate, and each group
below it 2.6 times less. In PyTorch an optimizer takes a list of *parameter groups*, each a dict
with its parameters and its options:
""")

code(r"""
def my_layer_groups(model):
    # From the input up: [embedding], [each recurrent layer], [head]
    return [list(model.embedding.parameters()), *[list(layer.parameters()) for layer in model.rnn.layers],
            list(model.head.parameters())]


def my_discriminative_groups(groups, lr, factor=2.6):
    top = len(groups) - 1
    return [{"params": params, "lr": lr / factor ** (top - i)} for i, params in enumerate(groups)]


groups = my_layer_groups(classifier)
rates = [group["lr"] for group in my_discriminative_groups(groups, lr=1e-2)]
print({name: f"{rate:.2e}" for name, rate in zip(("embedding", "LSTM", "head"), rates)})
library = finetune.discriminative_param_groups(finetune.layer_groups(classifier), lr=1e-2)
assert [g["lr"] for g in library] == rates and [len(g["params"]) for g in library] == [len(g) for g in groups]
assert sum(len(g) for g in groups) == len(list(classifier.parameters()))   # every parameter, in one group
""")

md(r"""
### The slanted triangular schedule

The rate rises for the first 10% of the steps and falls for the other 90%, from 1/32 of its
peak, to the peak, and back (equation 3 of the paper). The quick rise lets the model find its
way; the long fall lets it settle. It looks like lesson 6's one-cycle schedule, straight lines
instead of a cosine:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
def my_slanted_triangular(step, total, cut_frac=0.1, ratio=32):
    cut = math.floor(total * cut_frac)
    p = step / cut if step < cut else 1 - (step - cut) / (cut * (1 / cut_frac - 1))
    return (1 + p * (ratio - 1)) / ratio          # a fraction of the peak rate


total = 200
ours = [my_slanted_triangular(t, total) for t in range(total)]
optimizer = torch.optim.AdamW([torch.zeros(1, requires_grad=True)], lr=1.0)
one_cycle = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1.0, total_steps=total, pct_start=0.1)
cycle = []
for t in range(total):
    cycle.append(optimizer.param_groups[0]["lr"])
    optimizer.step()
    one_cycle.step()
fig, ax = plt.subplots(figsize=(6.5, 2.8))
ax.plot(ours, label="slanted triangular (ULMFiT)")
ax.plot(cycle, label="one-cycle (lesson 6)", linestyle="--")
ax.set(xlabel="step", ylabel="share of the peak rate", title="Two warm-up-then-decay schedules")
ax.legend()
plt.show()
assert ours == [finetune.slanted_triangular(t, total) for t in range(total)]
assert ours.index(max(ours)) == 20 and min(ours) == ours[0] == 1 / 32
""")

md(r"""
### Gradual unfreezing

A new head on top of trained layers sends large, random gradients down in its first steps, and
they can wreck what the lower layers learned. So ULMFiT trains the head alone in the first
epoch, then unfreezes the LSTM, then the embedding: one group more per epoch, from the top.
A frozen parameter has `requires_grad=False`: autograd computes no gradient for it, so the
optimizer leaves it alone:
""")

code(r"""
def my_unfreeze(groups, epoch):
    # Epoch e trains the e + 1 top groups; the ones below are frozen
    for i, params in enumerate(groups):
        for parameter in params:
            parameter.requires_grad_(i >= len(groups) - (epoch + 1))


for epoch in range(4):
    my_unfreeze(groups, epoch)
    print(f"epoch {epoch}: training", [name for name, params in zip(("embedding", "LSTM", "head"), groups)
                                      if params[0].requires_grad])
# one epoch of the head alone on a few reviews: the LSTM does not move
my_unfreeze(groups, 0)
before = classifier.rnn.layers[0][0].weight_hh_l0.detach().clone()
few = make_loader([(truncate(ids, 256), label) for ids, label in data.train[:256]], 32, seed=0)
train_epoch(classifier, few, torch.optim.AdamW(my_discriminative_groups(groups, 1e-2)), torch.device("cpu"),
            progress=False)
assert torch.equal(classifier.rnn.layers[0][0].weight_hh_l0, before)
assert [finetune.unfrozen_groups(epoch, 3) for epoch in range(4)] == [1, 2, 3, 3]
my_unfreeze(groups, 2)   # everything trainable again
""")

md(r"""
`finetune.fine_tune` puts the three together (and keeps the epoch with the best validation
accuracy, as lesson 6's `fit` does). With `factor=1.0, gradual=False` it trains every layer at
the same rate from the first step, with the same schedule: the way to train a classifier that
starts from random weights.

## 2. A fair comparison

Pretraining should matter most where labels are few, so each start gets **1,000 labelled
reviews** (a twentieth of lesson 6's) and is judged on **2,000 validation reviews**; reviews are
cut to 400 tokens. Four starts of the same classifier:

* **random**: every weight random, every layer at the same rate from the first step;
* **embedding**: the language model's word vectors, the LSTM random, trained like the random start;
* **LSTM, plain**: embedding and LSTM from the language model, trained like the random start;
* **ULMFiT**: embedding and LSTM from the language model, with discriminative rates and
  gradual unfreezing.

All four use the slanted triangular schedule, the same 5 epochs, batches, seed and dropout. Each
gets its own peak learning rate, the best of three on the validation reviews: a start whose
rate was guessed would lose for the wrong reason.
""")

code(r"""
N_LABELLED, MAX_LEN, EPOCHS, VALID = 1_000, 400, 5, 2_000
RATES = (3e-3, 1e-2, 3e-2)
STARTS = {  # what is copied from the language model, and how it is fine-tuned
    "random": dict(copy=None, factor=1.0, gradual=False),
    "embedding": dict(copy="embedding", factor=1.0, gradual=False),
    "LSTM, plain": dict(copy="embedding+LSTM", factor=1.0, gradual=False),
    "ULMFiT": dict(copy="embedding+LSTM", factor=2.6, gradual=True),
}
labelled = random.Random(0).sample(data.train, 20_000)        # a fixed order: the first N are the N labelled reviews
cut = lambda examples: [(truncate(ids, MAX_LEN), label) for ids, label in examples]
valid_loader = make_loader(cut(data.valid[:VALID]), 256, shuffle=False)


def run(start, lr, n=N_LABELLED, language_model=forward_lm, reverse=False, seed=0):
    # Train one classifier; returns (model, history). reverse=True reads every review from its end.
    options = STARTS[start]
    set_seed(seed)
    model = build_model(len(data.vocab), **CLASSIFIER)
    if options["copy"] is not None:
        lm.copy_into_classifier(language_model, model, lm_data.vocab, data.vocab, rnn=options["copy"] != "embedding")
    turn = (lambda examples: [(ids[::-1], label) for ids, label in cut(examples)]) if reverse else cut
    train_loader = make_loader(turn(labelled[:n]), 32, seed=seed)
    valid = make_loader(turn(data.valid[:VALID]), 256, shuffle=False)
    history = finetune.fine_tune(model, train_loader, valid, EPOCHS, lr, factor=options["factor"],
                                 gradual=options["gradual"], device=device)
    return model, history
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
start_clock = time.perf_counter()
search = {}
for start in STARTS:
    for lr in RATES:
        model, history = run(start, lr)
        search[start, lr] = (model, history)
table = pd.DataFrame({start: {f"{lr:g}": search[start, lr][1].best_val_acc for lr in RATES} for start in STARTS}).T
display((100 * table).round(2))
chosen = {start: max(RATES, key=lambda lr: search[start, lr][1].best_val_acc) for start in STARTS}
best = {start: search[start, chosen[start]][1].best_val_acc for start in STARTS}
print("chosen on validation:", {start: f"lr {chosen[start]:g}: {best[start]:.2%}" for start in STARTS})
print(f"one standard error on {VALID:,} validation reviews: {standard_error(0.8, VALID):.1%}; "
      f"({time.perf_counter() - start_clock:.0f} s for {len(search)} runs)")
""")

md(r"""
SEARCH_TEXT
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
pretrained_start = max(("embedding", "LSTM, plain", "ULMFiT"), key=best.get)   # chosen on validation, never on test
test_labels = torch.tensor([float(label) for _, label in data.test])
test_correct = {}
for start in ("random", pretrained_start):
    model = search[start, chosen[start]][0]
    p = predict_probabilities(model, cut(data.test), progress=False)
    test_correct[start] = ((p > 0.5).float() == test_labels)
    print(f"{start:12}: validation {best[start]:.2%}, test {test_correct[start].float().mean():.2%} "
          f"(lr {chosen[start]:g})")
paired = mcnemar(test_correct[pretrained_start], test_correct["random"])
print(f"{pretrained_start} against random on the 25,000 test reviews: {paired}")
""")

md(r"""
TEST_TEXT
""")

md(r"""
### Forward and backward

The language model reads left to right, so the classifier built on it does too. ULMFiT also
trains a **backward** language model, on every review read from its last word to its first
(`prepare_lm_data(backward=True)`), starts a second classifier from it that reads reviews
backwards, and averages the two classifiers' probabilities. Reversing happens inside each
review; the order of the reviews in the stream stays:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
backward_data = lm.prepare_lm_data(data=data, backward=True)
first = lm_data.train[: lm_data.train.tolist().index(lm.eos_index(lm_data.vocab)) + 1]
print("forward :", " ".join(lm_data.vocab.decode(first[:12].tolist())), "...")
print("backward:", " ".join(backward_data.vocab.decode(backward_data.train[:12].tolist())), "...")
assert backward_data.train[: len(first) - 1].tolist() == first[:-1].flip(0).tolist()   # the first review, reversed
start = time.perf_counter()
backward_lm, backward_info = lm.load_or_train(lm.LESSON9_BACKWARD, backward_data, device=device, log=None)
print(f"backward language model: validation perplexity {backward_info['valid_perplexity']:.1f} "
      f"(forward: {forward_info['valid_perplexity']:.1f}), {time.perf_counter() - start:.0f} s")
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
both = {}
for start in ("random", "ULMFiT"):   # the same lr as the forward classifier of each start
    backward_model, backward_history = run(start, chosen[start], language_model=backward_lm, reverse=True)
    forward_model = search[start, chosen[start]][0]
    valid_p = (predict_probabilities(forward_model, cut(data.valid[:VALID]), progress=False)
               + predict_probabilities(backward_model, [(ids[::-1], y) for ids, y in cut(data.valid[:VALID])],
                                       progress=False)) / 2
    test_p = (predict_probabilities(forward_model, cut(data.test), progress=False)
              + predict_probabilities(backward_model, [(ids[::-1], y) for ids, y in cut(data.test)], progress=False)) / 2
    both[start] = {"backward alone (validation)": backward_history.best_val_acc,
                   "average (validation)": accuracy_of(valid_p, [y for _, y in data.valid[:VALID]]),
                   "average (test)": accuracy_of(test_p, test_labels), "correct": (test_p > 0.5).float() == test_labels}
display((100 * pd.DataFrame({s: {k: v for k, v in r.items() if k != "correct"} for s, r in both.items()}).T).round(2))
paired_both = mcnemar(both["ULMFiT"]["correct"], both["random"]["correct"])
print(f"ULMFiT forward + backward against random forward + backward, test reviews: {paired_both}")
""")

md(r"""
BOTH_TEXT

## 3. Where pretraining pays

ULMFiT's central figure: accuracy against the number of labelled reviews, with and without
pretraining. The same protocol at 250, 1,000 and 4,000 labelled reviews (each start with the
rate it chose at 1,000: a search at every size would triple the time), the forward classifiers
only:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
SIZES = (250, 1_000, 4_000)
curve = {start: {} for start in ("random", "ULMFiT")}
for start in curve:
    for n in SIZES:
        curve[start][n] = best[start] if n == N_LABELLED else run(start, chosen[start], n=n)[1].best_val_acc
curve_table = 100 * pd.DataFrame(curve)
curve_table["ULMFiT - random (points)"] = curve_table["ULMFiT"] - curve_table["random"]
display(curve_table.round(2))
full_best, full_pretrained = recorded_run("best")["summary"], recorded_run("pretrained")["summary"]
fig, ax = plt.subplots(figsize=(6.5, 3.8))
for start, marker in (("random", "o"), ("ULMFiT", "s")):
    ax.plot(SIZES, [curve[start][n] for n in SIZES], marker=marker, label=f"{start} (this notebook)")
ax.plot([20_000], [full_best["val_acc"][full_best["best_epoch"] - 1]], "o", color="tab:blue", mfc="none", ms=9,
        label="lesson 6's best BiLSTM, full size (recorded)")
ax.plot([20_000], [full_pretrained["val_acc"][0]], "s", color="tab:orange", mfc="none", ms=9,
        label="--model pretrained, full size (recorded)")
ax.set(xscale="log", xlabel="labelled training reviews", ylabel="validation accuracy",
       title="Pretraining pays where labels are few")
ax.legend(fontsize=8)
plt.show()
""")

md(r"""
CURVE_TEXT

## 4. The number to beat: a bag of bigrams

Before any neural network, a linear model on word counts: **NBSVM** (Wang & Manning, 2012).
Mark which words and word pairs a review contains, weigh each by how much more often it appears
in positive than in negative reviews (the naive-Bayes log-count ratio), and train a linear
classifier on that. The paper's classifier is an SVM whose weights are then interpolated with
their mean; `course_utils.baselines.NBSVM` puts a **logistic regression** on the naive-Bayes
features instead, as most re-implementations do (and it gives probabilities, which the average
below needs). It reads the course's tokens; its regularization `C` is chosen on the validation
reviews; then the test reviews, once.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
splits = load_splits()   # the texts of the same 20,000 / 5,000 / 25,000 split
(train_texts, train_labels), (valid_texts, valid_labels), (test_texts, _) = (
    zip(*splits[name]) for name in ("train", "valid", "test"))
start = time.perf_counter()
nbsvm = NBSVM()
by_C = nbsvm.choose_C(train_texts, train_labels, valid_texts, valid_labels, candidates=(0.1, 1.0, 10.0))
nbsvm_test_p = torch.as_tensor(nbsvm.predict_proba(test_texts))
print(f"validation accuracy by C: {by_C}; chosen C = {nbsvm.C}")
print(f"NBSVM: validation {by_C[nbsvm.C]:.2%}, test {accuracy_of(nbsvm_test_p, test_labels):.2%} "
      f"({time.perf_counter() - start:.0f} s in all)")
assert accuracy_of(nbsvm_test_p, test_labels) > 0.90   # the paper: 91.2%
""")

md(r"""
A linear model on word pairs beats every recurrent network of this course so far, in a minute,
with no GPU. IMDb reviews are long and their opinion is spread over many telling phrases ("waste
of time", "highly recommended"), which a bag of bigrams catches all at once, while a recurrent
network must carry them through hundreds of steps.

The two kinds of model also make **different mistakes**, so averaging them may help. Lesson 6's
best model is saved in `data/checkpoints/best.pt`: the cell below averages its probabilities
with NBSVM's, on the validation reviews first (where the average is chosen or not), then on the
test reviews, and compares the average with NBSVM alone on the same test reviews (a paired test).
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
bilstm = load_predictor(default_data_dir() / "checkpoints" / "best.pt", device)
assert bilstm.vocab.itos == data.vocab.itos   # the same training reviews, the same vocabulary
as_trained = lambda examples: [(truncate(ids, bilstm.max_len, bilstm.head), label) for ids, label in examples]
p_valid = {"NBSVM": torch.as_tensor(nbsvm.predict_proba(valid_texts)),
           "BiLSTM (lesson 6)": predict_probabilities(bilstm.model, as_trained(data.valid), progress=False)}
p_test = {"NBSVM": nbsvm_test_p,
          "BiLSTM (lesson 6)": predict_probabilities(bilstm.model, as_trained(data.test), progress=False)}
for p in (p_valid, p_test):
    p["average of the two"] = (p["NBSVM"].double() + p["BiLSTM (lesson 6)"].double()) / 2
compared = pd.DataFrame({
    "validation": {name: accuracy_of(p, torch.tensor(valid_labels)) for name, p in p_valid.items()},
    "test": {name: accuracy_of(p, test_labels) for name, p in p_test.items()},
})
display((100 * compared).round(2))
right = {name: (p > 0.5).float() == test_labels for name, p in p_test.items()}
average_vs_nbsvm = mcnemar(right["average of the two"], right["NBSVM"])
print(f"average against NBSVM alone, test reviews: {average_vs_nbsvm}")
assert compared.loc["NBSVM", "test"] > compared.loc["BiLSTM (lesson 6)", "test"] + 0.01   # the bag of bigrams wins
""")

md(r"""
NBSVM_TEXT

## 5. Many classes: the star rating

Every labelled IMDb review has a rating in its file name: 1-4 stars for the negative reviews, 7-10
for the positive ones. Predicting the rating is a task with **8 classes**: the head gives 8
scores (`num_classes=8`), a softmax turns them into a distribution, and the loss is
`nn.CrossEntropyLoss` (which takes the scores and the class index 0-7). `prepare_imdb(target="stars")`
gives the same reviews, split and vocabulary, with the rating's class as the label.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
stars_data = prepare_imdb(target="stars")
train_stars = np.array([stars_of_class(label) for _, label in stars_data.train])
assert [ids for ids, _ in stars_data.train[:100]] == [ids for ids, _ in data.train[:100]]   # the same reviews
assert [s >= 7 for s in train_stars] == [label == 1 for _, label in data.train]              # and the same polarity
counts = pd.Series(train_stars).value_counts().sort_index()
ax = counts.plot.bar(figsize=(6, 3), color=["firebrick"] * 4 + ["green"] * 4, title="Training reviews by rating")
ax.set(xlabel="stars", ylabel="reviews")
plt.show()
print((counts / counts.sum()).round(3).to_dict())
assert set(counts.index) == set(RATINGS) and counts.idxmax() in (1, 10)   # the extremes are the most common
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
STAR_LEN = 256
star_cut = lambda examples: [(truncate(ids, STAR_LEN), label) for ids, label in examples]
set_seed(0)
star_model = build_model(len(stars_data.vocab), embedding_dim=64, hidden_size=64, pooling="last+max+mean",
                         dropout=0.3, num_classes=8)
start = time.perf_counter()
star_history = fit(star_model, make_loader(star_cut(stars_data.train), 64, seed=0),
                   make_loader(star_cut(stars_data.valid), 256, shuffle=False), epochs=2, lr=4e-3, clip=1.0,
                   schedule="onecycle", device=device, progress=False, log=print)
print(f"({time.perf_counter() - start:.0f} s)")
""")

md(r"""
From a distribution over 8 ratings to one rating: which rating is the best guess depends on what
a mistake costs. To get the most ratings **exactly** right, take the most probable one
(**argmax**). To be the fewest **stars off** on average, take the **median** of the distribution
(the rating where the cumulative probability reaches one half): with 45% on 1 star, 15% on 7 and
40% on 10, the argmax says 1 star and expects to be 0.15 × 6 + 0.40 × 9 = 4.5 stars off; the
median says 7 stars and expects 0.45 × 6 + 0.40 × 3 = 3.9. The same holds for the baselines,
which must be as good as they can be at each measure:

* a constant rating: for exact ratings the **most common** one, for stars off the **median**
  (the constant with the smallest mean absolute error; here MEDIAN_TEXT);
* NBSVM's polarity verdict read as a rating: each side's most common rating for exact ratings,
  each side's median for stars off.

The validation reviews check that each rule wins on its own measure:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
valid_true = np.array([stars_of_class(label) for _, label in stars_data.valid])
valid_p = predict_probabilities(star_model, star_cut(stars_data.valid), progress=False)
on_valid = pd.DataFrame({rule: {"exact": star_accuracy(stars_from_probabilities(valid_p, rule), valid_true),
                                "stars off": mean_absolute_error(stars_from_probabilities(valid_p, rule), valid_true)}
                         for rule in ("argmax", "median")}).T.round(4)
display(on_valid)
assert on_valid.loc["argmax", "exact"] > on_valid.loc["median", "exact"]              # each rule wins
assert on_valid.loc["median", "stars off"] < on_valid.loc["argmax", "stars off"]      # on its own measure
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
test_true = np.array([stars_of_class(label) for _, label in stars_data.test])
test_p = predict_probabilities(star_model, star_cut(stars_data.test), progress=False)
test_argmax, test_median = (stars_from_probabilities(test_p, rule) for rule in ("argmax", "median"))
modes, medians = side_ratings(train_stars, "mode"), side_ratings(train_stars, "median")
results = pd.DataFrame({
    "8-class LSTM": (star_accuracy(test_argmax, test_true), mean_absolute_error(test_median, test_true)),
    "a constant rating": (majority_baseline(train_stars, test_true)[0], median_baseline(train_stars, test_true)[1]),
    "NBSVM's verdict as a rating": (polarity_baseline(nbsvm_test_p.numpy(), test_true, *modes)[0],
                                    polarity_baseline(nbsvm_test_p.numpy(), test_true, *medians)[1]),
}, index=["exact (most common / argmax)", "stars off (median)"]).T.round(3)
display(results)
print(f"constant: {int(counts.idxmax())} stars for exact ratings, {median_rating(train_stars)} stars for stars off; "
      f"verdict: {modes} stars for exact ratings, {medians} for stars off")
model_acc, model_mae = results.loc["8-class LSTM"]
assert model_acc > results["exact (most common / argmax)"].drop("8-class LSTM").max() + 0.02
assert model_mae < results["stars off (median)"].drop("8-class LSTM").min() - 0.1
""")

md(r"""
STARS_TEXT

The **confusion matrix** (rows: the true rating, columns: the predicted one, each row in
percent of its reviews) shows what the model learned about the order of ratings it was never
told: to `CrossEntropyLoss` the classes are just indices 0-7.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
matrix = np.zeros((8, 8), dtype=int)
for true, guess in zip(test_true, test_argmax):
    matrix[RATINGS.index(true), RATINGS.index(guess)] += 1
percent = np.round(100 * matrix / matrix.sum(axis=1, keepdims=True)).astype(int)
fig, ax = plt.subplots(figsize=(6.5, 5.5))
plot_confusion_matrix(percent, labels=[str(s) for s in RATINGS], title="Star ratings, test reviews (% of each row)",
                      ax=ax)
plt.show()
same_side = (matrix[:4, :4].sum() + matrix[4:, 4:].sum()) / matrix.sum()
true_class = np.array([RATINGS.index(s) for s in test_true])
distance = np.abs(np.arange(8)[None, :] - true_class[:, None])        # how many classes from the true rating
by_distance = [test_p.numpy()[distance == d].mean() for d in range(8)]
print(f"predictions on the right side (1-4 or 7-10): {same_side:.1%}")
print("mean probability given to a rating d classes away from the true one:",
      {d: round(float(p), 3) for d, p in enumerate(by_distance)})
assert same_side > 0.8
assert by_distance[0] > by_distance[1] > by_distance[2] > by_distance[3]   # the nearer the rating, the more probable
""")

md(r"""
CONFUSION_TEXT

## 6. The command line, at full size

`python -m course_utils.train --model pretrained --json` runs this lesson's protocol on all
20,000 labelled reviews, with language models trained longer and reviews of 800 tokens: a
forward and a backward language model, a classifier started from each with discriminative rates,
the slanted triangular schedule and gradual unfreezing, and their average. Its figures come from
a recorded run (`course_utils/runs/pretrained.json`, with the command that repeats it), beside
lesson 6's best recipe from random weights:
""")

code(r"""
runs = {name: recorded_run(name) for name in ("best", "pretrained")}
full = pd.DataFrame({
    "validation": {"best (random start, BiLSTM)": runs["best"]["summary"]["val_acc"][runs["best"]["summary"]["best_epoch"] - 1],
                   "pretrained (ULMFiT, forward + backward)": runs["pretrained"]["summary"]["val_acc"][0]},
    "test": {"best (random start, BiLSTM)": runs["best"]["summary"]["test_acc"],
             "pretrained (ULMFiT, forward + backward)": runs["pretrained"]["summary"]["test_acc"]},
    "training seconds": {"best (random start, BiLSTM)": runs["best"]["summary"]["training_seconds"],
                         "pretrained (ULMFiT, forward + backward)": runs["pretrained"]["summary"]["training_seconds"]},
})
display(full)
for name, run_ in runs.items():
    print(f"{name}: {run_['command']}  ({run_['machine']}, {run_['date']})")
""")

md(r"""
FULL_TEXT

## Summary

SUMMARY_TEXT

**Exercises:** [`exercises/09_exercises.ipynb`](exercises/09_exercises.ipynb): parameter groups
with discriminative learning rates, the slanted triangular rate, the order of gradual unfreezing.
""")

build("/work/wt/h3/notebooks/09_unlabeled_text.ipynb", cells)
print(len(cells), "cells")
