"""Builds notebooks/10_rnns_today.ipynb (cells only; execute it afterwards)."""
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

TEXT = {}  # prose that quotes measured numbers: filled in by fill_l10.py after a run, else placeholders
if len(sys.argv) > 1:
    exec(open(sys.argv[1]).read(), {"TEXT": TEXT})


def t(key, default):
    return TEXT.get(key, default)


cells = []


def md(text):
    cells.append(new_markdown_cell(text.strip("\n")))


def code(text):
    cells.append(new_code_cell(text.strip("\n")))


md(r"""
# Lesson 10 — RNNs today

Every student of this course asks it sooner or later: *why learn recurrent networks when
Transformers won?* This last lesson answers with measurements you can repeat on a laptop:

1. **self-attention on IMDb**: a small Transformer encoder trained on exactly the budget of
   lesson 6's BiLSTM comparison model (same reviews, 256 tokens, one epoch, a learning rate
   searched for each), its validation accuracy, its test accuracy (once), its size, and a paired
   test against the BiLSTM on the same 25,000 test reviews;
2. **a recurrence that trains in parallel**: the minGRU (Feng et al. 2024, *Were RNNs All We
   Needed?*) written by hand, computed step by step and by a parallel scan (Heinsen 2023), the two
   asserted equal; why the LSTM of lesson 2 cannot be computed that way; a minGRU classifier on the
   same budget;
3. **the sequential bottleneck, measured**: forward + backward time against the sequence length,
   64 to 2,048 steps, for `nn.LSTM`, a Transformer layer and the minGRU, on log axes, with the
   slopes;
4. **what generating costs**: one more token with a recurrent state (always the same size) against
   a Transformer's key/value cache (which grows with the text), in bytes and milliseconds;
5. **the course's closing table**: every model trained on IMDb in lessons 5 to 10, with its
   accuracy, time, size, and the command that trains it again.

The rule of lesson 6 holds: every choice is made on the 5,000 **validation** reviews, and each
model meets the 25,000 **test** reviews once.
The stored outputs come from a 2-core CPU; on a GPU the same cells run with no edits, and the
timing sections say what changes there. The lesson's new pieces are in `course_utils/modern.py`.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
# Setup: on Google Colab, install the course's helper package first (elsewhere it is already installed).
# A fork points this address (and the README's badges) at itself: python -m course_utils.course set-repository OWNER/NAME
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/rnn-course/rnn-pytorch-course"], check=True)

import copy
import math
import statistics
import time

import matplotlib.pyplot as plt
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import display
from torch import nn

from course_utils.batching import collate_batch, masked_mean, padding_mask
from course_utils.course import print_versions
from course_utils.models import build_model, count_parameters
from course_utils.modern import MinGRU, PaddedTransformer, g, linear_recurrence_loop, sinusoidal_positions
from course_utils.recorded import recorded_run, recorded_runs
from course_utils.stats import mcnemar, standard_error
from course_utils.train import LEARNING_RATE_SEARCH, RECIPES, prepare_imdb, train_model
from course_utils.training import accuracy_of, full_float32, predict_probabilities

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print_versions(device)
''')

# ------------------------------------------------------------------------------------------------
md(r"""
## 1. Self-attention on IMDb

Lesson 7 wrote attention by hand: a query scores every key, a softmax turns the scores into
weights, the answer is the weighted sum of the values. **Self-attention** makes every position of
the review a query over every position, all at once:

$$\text{Attention}(Q, K, V) = \text{softmax}\Big(\frac{Q K^\top}{\sqrt{d}}\Big) V, \qquad Q = X W_Q,\ K = X W_K,\ V = X W_V,$$

where $X$ (time, d) holds the review's embedded words. No step waits for the previous one: a whole
review is a few matrix products. A **Transformer encoder layer** (Vaswani et al. 2017) is
self-attention (several *heads*, each with its own $W_Q, W_K, W_V$ of width $d/\text{heads}$)
followed by a small feed-forward network applied to each position, each part added to its input
(a residual connection) after a layer norm.

Two things the LSTM gave us for free must now be added by hand:

- **order**: attention treats its input as a *set*: shuffle the words and each output is shuffled
  the same way. So a **position code** is added to each embedding;
- **padding**: a padded batch must not let any position attend to `<pad>`: a **padding mask**
  (lesson 7's mask, in `nn.TransformerEncoder`'s convention `True` = ignore).

The position code of the original Transformer: position $p$ gets $\sin(p / 10000^{2i/d})$ in
column $2i$ and $\cos(p / 10000^{2i/d})$ in column $2i + 1$, waves from very fast to very slow,
so that every position has its own pattern:
""")

code(r'''
def position_code(length, dim):
    """The sinusoidal position code: (length, dim)."""
    p = torch.arange(length, dtype=torch.float64).unsqueeze(1)  # (length, 1)
    frequency = 10000 ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim / 2,)
    code = torch.zeros(length, dim, dtype=torch.float64)
    code[:, 0::2], code[:, 1::2] = torch.sin(p * frequency), torch.cos(p * frequency)
    return code.float()


code = position_code(256, 64)
assert torch.allclose(code, sinusoidal_positions(256, 64), atol=1e-6)  # the course's copy: course_utils.modern
assert len({tuple(row.tolist()) for row in code}) == 256  # every position its own code
print("the first 3 positions, first 6 columns:\n", code[:3, :6].round(decimals=4))

fig, ax = plt.subplots(figsize=(9, 3.2))
image = ax.imshow(code.T, aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set(xlabel="position in the review", ylabel="column of the code", title="Sinusoidal position code (64 columns)")
fig.colorbar(image, ax=ax)
plt.show()
''')

md(r"""
The classifier, written out: embedding + position code, two encoder layers of PyTorch's
`nn.TransformerEncoderLayer` (4 heads, width 64, feed-forward 128, layer norm first), the mean of
the outputs over the **real** tokens (`masked_mean`, lesson 5), a linear head. Two details matter
on a CPU: no dropout on the attention weights (with it, PyTorch must build the whole
time × time matrix of weights instead of using its fused attention kernel, several times slower),
and `enable_nested_tensor=False` (the nested-tensor shortcut does not apply to layers that norm
first, and PyTorch would warn).
""")

code(r'''
class TransformerClassifier(nn.Module):
    def __init__(self, vocab_size, width=64, heads=4, feedforward=128, layers=2, dropout=0.1):
        super().__init__()
        self.width = width
        self.embedding = nn.Embedding(vocab_size, width, padding_idx=0)
        layer = nn.TransformerEncoderLayer(width, heads, feedforward, dropout, batch_first=True, norm_first=True)
        layer.self_attn.dropout = 0.0  # no dropout on the attention weights: PyTorch's fused kernel can run
        self.encoder = nn.TransformerEncoder(layer, layers, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, 1)

    def forward(self, ids, lengths):
        real = padding_mask(lengths.to(ids.device), ids.size(1))  # (batch, time), True at real tokens
        x = self.embedding(ids) + position_code(ids.size(1), self.width).to(ids.device)
        states = self.encoder(x, src_key_padding_mask=~real)  # the mask says True = ignore
        return self.head(self.dropout(masked_mean(states, lengths))).squeeze(1)
''')

md(r"""
The data of lesson 6 (the same split, vocabulary and encoding). Then two checks: extra padding
at the end of a batch changes no logit (the mask works), and the course's
`SentimentClassifier(cell="transformer")`, which the command line trains, computes exactly what
this class computes when given its weights.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
data = prepare_imdb()
print(data)
''')

code(r'''
torch.manual_seed(0)
mine = TransformerClassifier(len(data.vocab)).eval()
course = build_model(len(data.vocab), **RECIPES["transformer-small"].model).eval()
course.load_state_dict({name.replace("encoder.", "rnn.encoder.", 1): weight for name, weight in mine.state_dict().items()})

ids, labels, lengths = collate_batch(RECIPES["transformer-small"].shorten(data.valid[:16]))
with torch.no_grad():
    logits = mine(ids, lengths)
    padded_more = mine(torch.cat([ids, torch.zeros(16, 7, dtype=torch.long)], dim=1), lengths)
    assert torch.allclose(padded_more, logits, atol=1e-5)           # padding is ignored
    assert torch.allclose(course(ids, lengths), logits, atol=1e-5)  # the course's model is this one
print(f"batch of 16 reviews, {lengths.min()} to {lengths.max()} tokens: 7 more pads change no logit, "
      "and SentimentClassifier(cell='transformer') gives the same logits")
print(f"parameters: Transformer {count_parameters(mine):,}, "
      f"lesson 6's BiLSTM {count_parameters(build_model(len(data.vocab), **RECIPES['bilstm'].model)):,}")
for name in ("transformer-small", "bilstm-small"):
    print(f"  {name:18s} {RECIPES[name].description}")
''')

md(r"""
Both models are mostly embedding (27,080 words × 64 numbers); the Transformer's layers are a little
larger than the BiLSTM's. Now the two training runs, on lesson 6's budget: one epoch of the 20,000
training reviews cut to 256 tokens (head and tail), Adam with the one-cycle schedule.

**The same care for each.** A learning rate suits one architecture and not another, so each
model's peak learning rate was searched on the validation reviews, over the same values
(`LEARNING_RATE_SEARCH` in `course_utils/train.py`, printed below). Lesson 6's `bilstm` recipe uses
4e-3, which this search did not find best for it, so the comparison here trains the BiLSTM again as
`bilstm-small`, with the learning rate its search chose: comparing a tuned Transformer with an
untuned BiLSTM would measure the tuning, not the architectures.
""")

code(r'''
search = pd.DataFrame({name: LEARNING_RATE_SEARCH[name] for name in ("bilstm-small", "transformer-small", "mingru-small")}).T
search.columns.name = "peak lr"
print("validation accuracy after one epoch, by peak learning rate (the search; the test reviews played no part):")
display(search)
for name in search.index:
    assert RECIPES[name].lr == search.loc[name].idxmax()  # each recipe uses the best learning rate it was given
''')

code(r'''
# NBVAL_IGNORE_OUTPUT
results = {}
for name in ("bilstm-small", "transformer-small"):
    print(f"--- {name}: {RECIPES[name].description}")
    results[name] = r = train_model(name, data)
    print(f"validation {r.history.best_val_acc:.2%}, test {r.test_acc:.2%}; {r.seconds_per_epoch:.0f} s per epoch")
''')

md(r"""
**The paired test** (lesson 6, `course_utils.stats.mcnemar`): on the same 25,000 test reviews,
only the reviews where the two models disagree say which is better. If they were equally good,
each disagreement would be a coin toss.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
labels = {split: torch.tensor([float(label) for _, label in getattr(data, split)]) for split in ("valid", "test")}
probabilities, accuracy = {}, {}


def score(name):
    """Each model's probabilities and accuracies on the validation and test reviews, cut as it was trained."""
    probabilities[name] = {"valid": results[name].probabilities(data.valid), "test": results[name].test_probabilities}
    accuracy[name] = {split: accuracy_of(p, labels[split]) for split, p in probabilities[name].items()}


def compare(a, b):
    """McNemar's test of model a against model b on the test reviews."""
    correct = {name: (probabilities[name]["test"] > 0.5).float() == labels["test"] for name in (a, b)}
    test = mcnemar(correct[a], correct[b])
    print(f"{a} (A) against {b} (B) on the {test.n:,} test reviews:\n  {test}")
    return test


for name in results:
    score(name)
transformer_vs_bilstm = compare("transformer-small", "bilstm-small")
print(f"one standard error of a test accuracy near {accuracy['bilstm-small']['test']:.0%}: "
      f"{standard_error(accuracy['bilstm-small']['test'], len(data.test)):.2%}")
CHECK_TRANSFORMER = True
''')

md(t("transformer_text", r"""
**What this says.** (filled in after the run)
"""))

# ------------------------------------------------------------------------------------------------
md(r"""
## 2. A recurrence that trains in parallel: the minGRU

Why is an LSTM slow to train? Look at its gates (lesson 2):

$$f_t = \sigma(W_f x_t + U_f h_{t-1} + b_f), \qquad c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t, \qquad h_t = o_t \odot \tanh(c_t).$$

Every gate reads $h_{t-1}$, so step $t$ cannot start before step $t-1$ is done: 800 tokens are 800
steps, one after the other, each a matrix product. The **minGRU** (Feng et al. 2024) removes
$h_{t-1}$ from everything but the final mix:

$$z_t = \sigma(W_z x_t + b_z), \qquad \tilde h_t = g(W_h x_t + b_h), \qquad h_t = (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t,$$

with $g(x) = x + \tfrac12$ for $x \ge 0$ and $\sigma(x)$ below (positive, for the scan below). The
gate and the candidate come from the input alone, so for the **whole review at once** they are two
matrix products. What is left is $h_t = a_t h_{t-1} + b_t$ with $a_t = 1 - z_t$ and
$b_t = z_t \tilde h_t$ all known in advance: a **linear recurrence**. Step by step first:
""")

code(r'''
def min_gru_loop(x, linear_z, linear_h):
    """Every state of a minGRU, step by step, from h_0 = 0: (batch, time, hidden)."""
    z = torch.sigmoid(linear_z(x))          # every gate at once: (batch, time, hidden)
    candidate = g(linear_h(x))              # every candidate at once
    h = torch.zeros(x.size(0), z.size(2), dtype=x.dtype)
    states = []
    for t in range(x.size(1)):              # only this is sequential, and it has no matrix product
        h = (1 - z[:, t]) * h + z[:, t] * candidate[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


torch.manual_seed(0)
cell = MinGRU(8, 16).double()  # course_utils.modern.MinGRU: its layers linear_z and linear_h
x = torch.randn(4, 800, 8, dtype=torch.float64)
looped = min_gru_loop(x, cell.linear_z, cell.linear_h)
assert torch.equal(looped, cell.loop(x))
print("states:", tuple(looped.shape))
''')

md(r"""
Unrolled, $h_t = A_t \big(h_0 + \sum_{k \le t} b_k / A_k\big)$ with $A_t = a_1 a_2 \cdots a_t$:
a cumulative product and a cumulative sum, each computed for all $t$ at once (a *prefix scan*,
which a GPU runs in parallel). Written directly it breaks: 800 gates below 1 multiply to a number
too small for a float.
""")

code(r'''
z = torch.sigmoid(cell.linear_z(x)).float()
a, b = 1 - z, z * g(cell.linear_h(x)).float()
A = torch.cumprod(a, dim=1)
direct = A * torch.cumsum(b / A, dim=1)
first_zero = (A == 0).any(dim=(0, 2)).float().argmax().item()
print(f"float32: A_t underflows to 0 at step {first_zero}; {(~torch.isfinite(direct)).float().mean():.0%} "
      "of the states are inf or NaN")
assert 0 < first_zero < 800 and not torch.isfinite(direct).all()
''')

md(r"""
**The scan in logarithms** (Heinsen 2023): with $a^*_t = \sum_{k \le t} \log a_k$ (a cumulative
*sum*, which cannot underflow),

$$\log h_t = a^*_t + \log \sum_{k \le t} e^{\log b_k - a^*_k},$$

and the second term is `torch.logcumsumexp`, a cumulative log-sum-exp that PyTorch computes
without overflow. Two cumulative operations, no loop:
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
# (the last digits of round-off differ between processors; the asserts hold on every one)
def min_gru_scan(x, linear_z, linear_h):
    """The same states as min_gru_loop, by a parallel scan in logarithms."""
    k = linear_z(x)
    log_a = -F.softplus(k)                                        # log(1 - sigmoid(k))
    log_b = -F.softplus(-k) + torch.log(g(linear_h(x)))           # log sigmoid(k) + log candidate
    a_star = torch.cumsum(log_a, dim=1)
    return torch.exp(a_star + torch.logcumsumexp(log_b - a_star, dim=1))


scanned = min_gru_scan(x, cell.linear_z, cell.linear_h)
print(f"float64, 800 steps: largest relative difference scan / loop {((scanned - looped) / looped).abs().max():.1e}")
assert torch.allclose(scanned, looped, rtol=1e-9, atol=0)
assert torch.allclose(cell.scan(x), looped, rtol=1e-9, atol=0)  # course_utils.modern.MinGRU.scan
cell32 = copy.deepcopy(cell).float()
relative32 = ((cell32.scan(x.float()).double() - looped) / looped).abs().max().item()
print(f"float32, 800 steps: largest relative difference {relative32:.1e}")
assert relative32 < 1e-3
''')

md(r"""
**Why the LSTM cannot do this.** Its memory cell *is* a linear recurrence,
$c_t = f_t \odot c_{t-1} + i_t \odot \tilde c_t$, so with its gates in hand the same scan would
compute every $c_t$. But the gates read $h_{t-1}$, which needs $c_{t-1}$: they are known only
once the previous step is done. The cell below takes an `nn.LSTM`, reads its gates off its own
outputs (which it computed step by step), and shows both halves: with those gates the scan gives
the LSTM's states exactly; the gates a scan would have *before* running, computed from the inputs
alone, are different numbers.
""")

code(r'''
torch.manual_seed(0)
lstm = nn.LSTM(8, 16, batch_first=True).double()
xs = x[:, :50]
with torch.no_grad():
    outputs, (h_n, c_n) = lstm(xs)
    previous = torch.cat([torch.zeros_like(outputs[:, :1]), outputs[:, :-1]], dim=1)  # h_(t-1): needs step t-1 done
    from_inputs = xs @ lstm.weight_ih_l0.T + lstm.bias_ih_l0 + lstm.bias_hh_l0      # all a scan knows in advance
    i, f, c_new, o = (from_inputs + previous @ lstm.weight_hh_l0.T).chunk(4, dim=2)  # PyTorch's gate order
    i, f, c_new, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(c_new), torch.sigmoid(o)
    c = linear_recurrence_loop(f, i * c_new)                        # the memory cell as a linear recurrence
    scan_c = torch.exp(torch.cumsum(f.log(), 1)) * torch.cumsum(i * c_new / torch.exp(torch.cumsum(f.log(), 1)), 1)
    f_alone = torch.sigmoid(from_inputs.chunk(4, dim=2)[1])
assert torch.allclose(o * torch.tanh(c), outputs, atol=1e-10) and torch.allclose(c[:, -1], c_n[0], atol=1e-10)
assert torch.allclose(scan_c, c, atol=1e-8)      # given the gates, the scan works
gap = (f_alone - f).abs().max().item()
print(f"forget gates from the inputs alone differ from the LSTM's by up to {gap:.2f}")
assert gap > 0.05                                # but the gates are not known before step t - 1
''')

md(r"""
So the minGRU buys its parallel training by giving something up: its gates cannot react to what
it has read so far, only to the current word (stacking layers gives some of it back, as the
paper does). Whether that costs accuracy on IMDb is a measurement: the recipe `mingru-small` is a
bidirectional minGRU with the BiLSTM's sizes (embedding 64, 64 units each way, final forward +
backward states), on the same budget, its learning rate searched as the others'. On a CPU `MinGRU` trains with the loop, on a GPU with the scan (section 3 measures why).
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
results["mingru-small"] = r = train_model("mingru-small", data)
score("mingru-small")
print(f"validation {r.history.best_val_acc:.2%}, test {r.test_acc:.2%}; {r.seconds_per_epoch:.0f} s per epoch")
mingru_vs_bilstm = compare("mingru-small", "bilstm-small")
''')

md(r"""
The three models of the same budget side by side. The `s / epoch` column is this run's; the
line below the table gives the three times recorded one after the other on the course's 2-core
CPU (`course_utils/runs/`), where they can be compared.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
small = pd.DataFrame([{
    "model": name,
    "val acc": round(accuracy[name]["valid"], 4),
    "test acc": round(accuracy[name]["test"], 4),
    "s / epoch (this run)": round(results[name].seconds_per_epoch, 1),
    "parameters": results[name].parameters,
} for name in ("bilstm-small", "transformer-small", "mingru-small")]).set_index("model")
display(small)
recorded = {name: recorded_run(name)["summary"] for name in ("bilstm-small", "transformer-small", "mingru-small")}
print("recorded on the course's 2-core CPU, s per epoch: "
      + ", ".join(f"{name} {summary['seconds_per_epoch']:.1f}" for name, summary in recorded.items()))
CHECK_SMALL = True
''')

md(t("small_text", r"""
**What the table says.** (filled in after the run)
"""))

# ------------------------------------------------------------------------------------------------
md(r"""
## 3. The sequential bottleneck, measured

Forward + backward time of one layer of each kind against the length of the sequence, 64 to 2,048
steps (a batch of 16 sequences, width 64, the best of three runs): `nn.LSTM`, one Transformer
encoder layer, and the minGRU by scan and by loop. On log axes a cost proportional to the length
is a line of slope 1, a cost proportional to its square a line of slope 2: the slopes are fitted
over the three longest lengths.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
LENGTHS = [64, 128, 256, 512, 1024, 2048]
BATCH, WIDTH = 16, 64


def synchronize():
    if device.type == "cuda":
        torch.cuda.synchronize()  # a GPU runs asynchronously: wait for it before reading the clock


def forward_backward_seconds(layer, length, repeats=3):
    """The fastest of ``repeats`` forward + backward passes of ``layer`` on a random batch."""
    x = torch.randn(BATCH, length, WIDTH, device=device, requires_grad=True)
    layer(x).sum().backward()  # a first pass to warm up
    fastest = math.inf
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        layer(x).sum().backward()
        synchronize()
        fastest = min(fastest, time.perf_counter() - start)
    return fastest


torch.manual_seed(0)
lstm_layer = nn.LSTM(WIDTH, WIDTH, batch_first=True).to(device)
attention_layer = PaddedTransformer(WIDTH, num_heads=4, feedforward=2 * WIDTH, num_layers=1).to(device)
min_gru_layer = MinGRU(WIDTH, WIDTH).to(device)
layers = {
    "nn.LSTM": lambda x: lstm_layer(x)[0],
    "Transformer layer": lambda x: attention_layer(x, torch.full((x.size(0),), x.size(1)))[0],
    "minGRU, scan": min_gru_layer.scan,
    "minGRU, loop": min_gru_layer.loop,
}
seconds = {name: [forward_backward_seconds(layer, n) for n in LENGTHS] for name, layer in layers.items()}


def slope(values):
    """Least-squares slope of log(value) against log(length) over the three longest lengths."""
    xs, ys = [math.log(n) for n in LENGTHS[-3:]], [math.log(v) for v in values[-3:]]
    mean_x, mean_y = sum(xs) / 3, sum(ys) / 3
    return sum((a - mean_x) * (b - mean_y) for a, b in zip(xs, ys)) / sum((a - mean_x) ** 2 for a in xs)


slopes = {name: slope(values) for name, values in seconds.items()}
growth = {name: values[-1] / values[-3] for name, values in seconds.items()}  # 512 -> 2,048 steps: 4 times longer
table = pd.DataFrame({name: [f"{1000 * s:.1f}" for s in values] for name, values in seconds.items()},
                     index=pd.Index(LENGTHS, name="steps")).T
table["slope"] = [f"{slopes[name]:.2f}" for name in table.index]
table["x from 512 to 2,048"] = [f"{growth[name]:.1f}" for name in table.index]
print(f"forward + backward, milliseconds, on {device.type}:")
display(table)

fig, ax = plt.subplots(figsize=(7, 4.5))
for name, values in seconds.items():
    ax.loglog(LENGTHS, [1000 * s for s in values], marker="o", label=f"{name} (slope {slopes[name]:.2f})")
ax.set(xlabel="sequence length (steps)", ylabel="forward + backward (ms)", title=f"Time against length on {device.type}")
ax.legend()
plt.show()
if device.type == "cpu":
    # attention's cost grows faster with the length than either minGRU's
    assert growth["Transformer layer"] > max(growth["minGRU, scan"], growth["minGRU, loop"])
    assert seconds["minGRU, loop"][-1] < seconds["minGRU, scan"][-1]  # on a CPU the loop beats the scan
else:
    assert seconds["minGRU, scan"][-1] < seconds["minGRU, loop"][-1]  # on a GPU the scan beats the loop
''')

md(t("times_text", r"""
**What the curves say.** (filled in after the run)
"""))

# ------------------------------------------------------------------------------------------------
md(r"""
## 4. What generating costs

A model that writes text (lesson 8) produces one token at a time, and each new token must know the
text so far. The two families keep it in very different ways:

- a **recurrent** model keeps its **state**: one vector per layer (two for an LSTM: $h$ and
  $c$). The next token costs one step, whatever the length of the text;
- a **Transformer** decoder keeps, in each layer, the keys and values of every token so far (the
  **key/value cache**), and the new token's query attends over all of them: the memory grows with
  the text, and so does the work per token.

Below, one decoder layer of each kind written for generation (width 256, 4 layers, 4 heads; a
minGRU block is the minGRU and a feed-forward layer, each added to its input after a layer norm,
as in the paper). The cache is filled with `tokens` keys and values, and the time of one more token
is measured (the median of 30, after 5 to warm up). Batch of one, as when a single user chats.
""")

code(r'''
WIDTH, LAYERS, HEADS = 256, 4, 4


class CachedSelfAttentionBlock(nn.Module):
    """One Transformer decoder layer (norm first) that makes one token at a time from its key/value cache."""

    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv, self.out = nn.Linear(width, 3 * width), nn.Linear(width, width)
        self.feedforward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def step(self, x, cache):
        """x (batch, width): the new token; cache = (keys, values, t): room for the new key, t filled."""
        keys, values, t = cache
        batch, width = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(batch, 3, self.heads, 1, width // self.heads).unbind(1)
        keys[:, :, t:t + 1], values[:, :, t:t + 1] = k, v  # the new key and value join the cache
        attended = F.scaled_dot_product_attention(q, keys[:, :, :t + 1], values[:, :, :t + 1])  # reads all t + 1
        x = x + self.out(attended.reshape(batch, width))
        return x + self.feedforward(self.norm2(x))


class MinGRUBlock(nn.Module):
    """One minGRU layer for generation: its state is one vector."""

    def __init__(self, width):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.cell = MinGRU(width, width)
        self.feedforward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))

    def step(self, x, h):
        h = self.cell.step(self.norm1(x), h)  # the new state: (1 - z) * h + z * candidate
        x = x + h
        return x + self.feedforward(self.norm2(x))


def bytes_of(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


torch.manual_seed(0)
transformer = nn.ModuleList(CachedSelfAttentionBlock(WIDTH, HEADS) for _ in range(LAYERS)).to(device).eval()
recurrent = nn.ModuleList(MinGRUBlock(WIDTH) for _ in range(LAYERS)).to(device).eval()
lstm_stack = nn.LSTM(WIDTH, WIDTH, num_layers=LAYERS).to(device).eval()
print(f"parameters: Transformer decoder {count_parameters(transformer):,}, minGRU {count_parameters(recurrent):,}, "
      f"LSTM {count_parameters(lstm_stack):,}")
''')

code(r'''
# NBVAL_IGNORE_OUTPUT
@torch.no_grad()
def ms_per_token(one_token, repeats=30):
    for _ in range(5):
        one_token()
    times = []
    for _ in range(repeats):
        synchronize()
        start = time.perf_counter()
        one_token()
        synchronize()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def transformer_token(caches):
    y = torch.randn(1, WIDTH, device=device)
    for block, cache in zip(transformer, caches):
        y = block.step(y, cache)


def min_gru_token(states):
    y = torch.randn(1, WIDTH, device=device)
    for block, h in zip(recurrent, states):
        y = block.step(y, h)


lstm_state = (torch.zeros(LAYERS, 1, WIDTH, device=device), torch.zeros(LAYERS, 1, WIDTH, device=device))
rows = []
for tokens in (64, 256, 1024, 4096):
    caches = [(torch.randn(1, HEADS, tokens + 1, WIDTH // HEADS, device=device),
               torch.randn(1, HEADS, tokens + 1, WIDTH // HEADS, device=device), tokens) for _ in range(LAYERS)]
    states = [torch.rand(1, WIDTH, device=device) for _ in range(LAYERS)]
    rows.append({
        "tokens so far": tokens,
        "KV cache (bytes)": bytes_of([t for keys, values, n in caches for t in (keys[:, :, :n], values[:, :, :n])]),
        "minGRU state (bytes)": bytes_of(states),
        "LSTM state (bytes)": bytes_of(lstm_state),
        "Transformer ms / token": round(ms_per_token(lambda: transformer_token(caches)), 3),
        "minGRU ms / token": round(ms_per_token(lambda: min_gru_token(states)), 3),
        "LSTM ms / token": round(ms_per_token(lambda: lstm_stack(torch.randn(1, 1, WIDTH, device=device), lstm_state)), 3),
    })
generation = pd.DataFrame(rows).set_index("tokens so far")
display(generation)
for tokens, row in generation.iterrows():  # bytes: exact, on every machine
    assert row["KV cache (bytes)"] == LAYERS * 2 * tokens * WIDTH * 4       # layers x (keys, values) x tokens x width x float32
    assert row["minGRU state (bytes)"] == LAYERS * WIDTH * 4                # one vector per layer, whatever the length
    assert row["LSTM state (bytes)"] == LAYERS * 2 * WIDTH * 4              # h and c
if device.type == "cpu":  # one token at a time leaves a GPU mostly idle: there, the cache shows in memory first
    first, last = generation.iloc[0], generation.iloc[-1]
    assert last["Transformer ms / token"] > first["Transformer ms / token"]    # a longer cache, a slower token
    assert last["Transformer ms / token"] > last["minGRU ms / token"]           # at 4,096 tokens, slower than the minGRU
''')

md(t("generation_text", r"""
**What the table says.** (filled in after the run)
"""))

# ------------------------------------------------------------------------------------------------
md(r"""
## 5. The course's closing table

Every model the course trained on IMDb, lessons 5 to 10: the full-size runs recorded with the
command that repeats them (`course_utils/runs/*.json`, made with `python -m course_utils.recorded
run NAME -- COMMAND`; each holds the machine it ran on), and the two models this notebook trained.
`val acc` is the kept epoch's validation accuracy, `test acc` the one look at the 25,000 test
reviews (for the star rating: the share of exact ratings, a different task), `s / epoch` the
training time of one epoch and `training s` the whole training, on that run's machine.
""")

code(r'''
# NBVAL_IGNORE_OUTPUT
LESSON_6 = {"classic", "rnn", "gru", "lstm", "bilstm", "best"}


def lesson_of(name, summary):
    description = summary.get("description", "")
    if description.startswith("lesson "):
        return int(description.split()[1].rstrip(":"))
    return 6 if name in LESSON_6 else None


def row(name, summary, command, source):
    val_acc, kept = summary.get("val_acc") or [None], summary.get("best_epoch") or 0  # nbsvm: no epochs
    return {"lesson": lesson_of(name, summary), "model": name, "target": summary.get("target", "polarity"),
            "val acc": val_acc[kept - 1] if 0 < kept <= len(val_acc) else val_acc[-1],
            "test acc": summary["test_acc"], "s / epoch": summary.get("seconds_per_epoch"),
            "training s": summary.get("training_seconds"), "parameters": summary.get("parameters"),
            "command": command, "source": source}


runs = recorded_runs()
closing = [row(name, run["summary"], run["command"], f"recorded {run['date']}, {run['machine'].split(',')[0]}")
           for name, run in runs.items()]
closing += [row(name, r.summary(), f"python -m course_utils.train --model {name} --json", "this notebook")
            for name, r in results.items()]
closing = pd.DataFrame(closing).sort_values(["lesson", "source", "model"], na_position="last").reset_index(drop=True)
with pd.option_context("display.max_colwidth", 90):
    display(closing)
assert {"best", "transformer", "mingru"} <= set(runs)                      # lesson 10's full-size runs are recorded
assert all(run["command"].startswith("python -m course_utils.") for run in runs.values())
polarity = closing[closing["target"] == "polarity"]
assert polarity["test acc"].between(0.5, 1).all()
CHECK_CLOSING = True
''')

md(t("closing_text", r"""
**The full-size runs.** (filled in after the run)
"""))

md(r"""
## What to take away

- **Accuracy.** On the same budget, the three models land within a few points of each other on
  IMDb: the choice of architecture mattered less than lesson 6's recipe (longer reviews, pooling,
  dropout, more epochs) did. A review is short enough for any of them.
- **Training time** is not a law of nature but a measurement of *your* hardware: self-attention
  costs the square of the length; a recurrence that reads $h_{t-1}$ in its gates costs one
  sequential step per token; a linear recurrence like the minGRU lets a GPU run the steps in
  parallel, while on a CPU with two cores its plain loop is already cheap, because the step has no
  matrix product.
- **Generation** is where recurrences shine: the state never grows. A Transformer must keep, and
  read, the whole past for every new token. That is why linear recurrences (minGRU and minLSTM,
  Mamba, RWKV, xLSTM) came back: trained in parallel like a Transformer, generating like an RNN.

Exercises: `notebooks/exercises/10_exercises.ipynb` (the parallel scan of a linear recurrence,
the attention mask for padding and for the future, the minGRU with your scan).
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                      "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                      "pygments_lexer": "ipython3", "version": "3.11.7"}})
nbformat.write(nb, "notebooks/10_rnns_today.ipynb")
print(f"{len(cells)} cells written")
