import sys
sys.path.insert(0, "/tmp/h3")
from nbtools import build

cells = []
md = lambda s: cells.append(("md", s))
code = lambda s: cells.append(("code", s))

md(r"""
# Lesson 8 — Language models: an LSTM that predicts the next word, beats counting, and writes

Every model so far read a review and said one thing about it (*many-to-one*). A **language
model** says something at every step: after each word, a probability for every word that could
come next (*many-to-many*). Once trained it can write (*one-to-many*): draw a word, feed it back,
draw the next. It needs no labels, only text, and IMDb has **50,000 unlabeled reviews** next to
the 25,000 labeled training reviews. This lesson builds one and measures it against the
simplest competitor there is, counting which word follows which; lesson 9 then asks whether what
it learned helps a classifier.

1. text without labels: the language model's data, never the test reviews;
2. next-word prediction: inputs and targets shifted by one, streams cut into rows and chunks;
3. perplexity, and the baselines a language model must beat (counting words and word pairs);
4. the softmax bill: full, tied and adaptive output layers, measured;
5. truncated backpropagation through time: carry the state, cut the graph, and what the cut costs;
6. training the language model until it beats counting;
7. letting it write: greedy, temperature, top-k, and prompts that matter;
8. the command line: `python -m course_utils.lm generate "This movie was"` uses the model saved here.

The stored outputs come from a 2-core CPU. Times are printed; where the text makes a claim about
speed, a cell asserts it as a ratio of two times measured in the same run, never as seconds.
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

import functools
import math
import subprocess
import time
from dataclasses import asdict

import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import HTML, display

from course_utils import lm
from course_utils.data import default_data_dir, load_imdb, load_unlabeled
from course_utils.diagrams import draw_language_model
from course_utils.models import count_parameters
from course_utils.splits import prepare_imdb
from course_utils.training import set_seed
from course_utils.widgets import describe_generation, writing_box
from course_utils.course import print_versions

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print_versions(device)


def synchronize():
    # Work on a GPU runs asynchronously: wait for it before reading the clock.
    if device.type == "cuda":
        torch.cuda.synchronize()
""")

md(r"""
## 1. Text without labels

The language model reads the text of lesson 6's **20,000 training reviews** (the same split, so
the 5,000 validation reviews stay unseen) and of the **50,000 unlabeled reviews** of
`train/unsup`; it is validated on the 5,000 validation reviews. It never reads a test review: a
model that had read them would make every classifier it starts look better on the test than it
is. `lm.prepare_lm_data()` builds the two streams. Its vocabulary is the classifier's (built
from the 20,000 training reviews) with one more token, `<eos>`, written after every review. It
gets id 2, right after `<pad>` and `<unk>`: with 70,000 reviews it is among the most frequent
tokens, and section 4 shows why a frequent token needs a small id. Every word's id is one more
than in the classifier's vocabulary; lesson 9 copies the model's word vectors into a classifier
word by word.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
data = prepare_imdb()            # lesson 6: 20,000 / 5,000 / 25,000 reviews, the vocabulary of the 20,000
lm_data = lm.prepare_lm_data()   # train + unlabeled reviews as one stream of ids; validation as another
vocab = lm_data.vocab
print(data)
print(lm_data)
print(f"({time.perf_counter() - start:.0f} s)")
""")

code(r"""
eos = lm.eos_index(vocab)
assert eos == 2 and vocab.itos[:2] == data.vocab.itos[:2] and vocab.itos[3:] == data.vocab.itos[2:]
assert (lm_data.train == eos).sum() == 20_000 + 50_000   # one <eos> after each review: 70,000 reviews
assert (lm_data.valid == eos).sum() == 5_000
first = data.train[0][0]                                  # the stream starts with the first training review
assert vocab.decode(lm_data.train[:len(first)].tolist()) == data.vocab.decode(first) and lm_data.train[len(first)] == eos
print(f"training stream: {lm_data.train.numel():,} tokens, of which {(lm_data.train == 1).float().mean():.1%} <unk>")
""")

md(r"""
Which reviews did it read? Only files under `train/`. IMDb has a known wrinkle, though: a few
hundred test reviews were posted twice, and their exact text also appears under `train/` or
`train/unsup/`. Those copies are training data (every classifier of the course trains on the
labeled ones too); we count them rather than hide them:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
test_texts = {text for text, _ in load_imdb("test")}
labeled_texts = {text for text, _ in load_imdb("train")}
unlabeled_texts = set(load_unlabeled())
print(f"test reviews whose text is also a labeled training review: {len(test_texts & labeled_texts)}, "
      f"an unlabeled review: {len(test_texts & unlabeled_texts)} (of 25,000)")
assert len(test_texts & (labeled_texts | unlabeled_texts)) < 0.02 * 25_000   # under 2%: duplicates, not a leak of the split
""")

md(r"""
## 2. Next-word prediction

At every step the model reads one word and is asked for the **next** one: the targets are the
inputs shifted by one. This is teacher forcing again (lesson 7): while training, the model reads
the true text, not its own guesses. The loss is the cross-entropy of the true next word, at every
step, averaged over all of them.
""")

code(r"""
words = ["this", "film", "is", "a", "gem", "<eos>", "i"]
ids = torch.tensor([vocab.encode(words)])
inputs, targets = lm.next_word_batch(ids, start=0, bptt=len(words) - 1)
display(pd.DataFrame({"input": vocab.decode(inputs[0].tolist()), "target": vocab.decode(targets[0].tolist())}).T)
assert torch.equal(inputs[0, 1:], targets[0, :-1])   # the target at step t is the input at step t + 1
assert vocab.decode(targets[0].tolist()) == words[1:]
""")

md(r"""
A review ends with `<eos>` and the next one follows, so the data is one long **stream**. To
train on it in batches, `batchify` cuts the stream into 64 equal **rows**, one below the other;
`next_word_batch(rows, start, bptt)` takes the columns `start .. start + bptt` of every row (the
inputs) and the same shifted by one (the targets). The next chunk continues each row where the
previous one stopped, so the LSTM's final state of one chunk is the right starting state of the
next: we carry it over, and *cut its graph* (section 5). In a picture, one row read in chunks of 3:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
draw_language_model(words, chunk=3)
plt.show()
""")

code(r"""
BATCH, BPTT = 64, 64
LM_SIZES = dict(embedding_dim=100, hidden_size=64)   # the sizes of lesson 6's best model (lesson 9 builds on them)
train_rows = lm.batchify(lm_data.train, BATCH)
valid_rows = lm.batchify(lm_data.valid, BATCH)
steps = train_rows.size(1)
print(f"training rows {tuple(train_rows.shape)}, validation rows {tuple(valid_rows.shape)}; "
      f"one chunk is {BATCH} x {BPTT} = {BATCH * BPTT:,} words")
assert torch.equal(train_rows[1, :10], lm_data.train[steps:steps + 10])   # row 1 continues the stream after row 0
inputs, targets = lm.next_word_batch(train_rows, start=BPTT, bptt=BPTT)
assert torch.equal(targets[:, :-1], inputs[:, 1:]) and targets[0, -1] == train_rows[0, 2 * BPTT]
""")

md(r"""
## 3. Perplexity, and what counting words gets

The loss is a mean of $-\log p(\text{true next word})$ in nats. Its exponential, the
**perplexity**, reads better: a model with perplexity $N$ is as unsure as if it chose uniformly
among $N$ words at every step. A model that knows nothing, uniform over the vocabulary, has a
perplexity equal to the vocabulary's size. Two baselines need no neural network:

* **unigram**: every word with its frequency in the training stream (add-one smoothed), ignoring
  the context;
* **bigram**: the frequency of each word *after the previous one*, mixed with the unigram so that
  pairs never seen keep some probability: $p(w \mid v) = \lambda\,\frac{c(v, w)}{c(v)} + (1 - \lambda)\,p_1(w)$.

Every model of this lesson is scored on **the same words**: every word of the 64 validation rows
but the first of each row (`lm.scored_pairs`), exactly the words `lm.evaluate_lm` scores the
language model on. The bigram gets its best shot: its mix $\lambda$ is chosen on those very
words, which flatters it a little.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
start = time.perf_counter()
by_mix = {mix: lm.bigram_perplexity(lm_data.train, valid_rows, len(vocab), mix=mix) for mix in (0.5, 0.6, 0.7, 0.8, 0.9)}
best_mix = min(by_mix, key=by_mix.get)
baselines = {
    "uniform": float(len(vocab)),
    "unigram": lm.unigram_perplexity(lm_data.train, valid_rows, len(vocab)),
    "bigram": by_mix[best_mix],
}
print("bigram perplexity by mix:", {mix: round(p, 1) for mix, p in by_mix.items()}, f"-> mix {best_mix}")
for name, value in baselines.items():
    print(f"{name:8s} perplexity on the validation words: {value:9,.1f}")
print(f"({time.perf_counter() - start:.1f} s)")
assert baselines["bigram"] < 0.6 * baselines["unigram"] < 0.1 * baselines["uniform"]
""")

code(r"""
set_seed(0)
untrained = lm.build_lm(len(vocab), output="full", **LM_SIZES).to(device)   # a fresh model: perplexity about the vocabulary size
loss = lm.evaluate_lm(untrained, valid_rows[:, :257], BPTT)
print(f"untrained model: loss {loss:.2f} nats, perplexity {lm.perplexity(loss):,.0f} (vocabulary: {len(vocab):,})")
assert 0.7 * len(vocab) < lm.perplexity(loss) < 1.3 * len(vocab)
assert abs(lm.perplexity(loss) - math.exp(loss)) < 1e-6 * lm.perplexity(loss)
""")

md(r"""
## 4. The softmax bill

After every word, the model scores all 27,081 words of the vocabulary. With an LSTM of 64 units,
that output layer costs far more than the LSTM itself. Three ways to build it:

* **full**: `nn.Linear(64, vocab)`, 1.8 million weights, next to the embedding's 2.7 million;
* **tied** (Press & Wolf, 2017): the output layer *is* the embedding matrix, used a second time
  (a small projection 64 → 100 first): fewer parameters, the same amount of computation;
* **adaptive** (Grave et al., 2017, `nn.AdaptiveLogSoftmaxWithLoss`): the most frequent words
  get the full treatment in a small **head**; the rarer ones sit in two **clusters** behind
  smaller projections, computed only for the targets that fall in them.

The adaptive softmax knows nothing about frequencies: it takes the **ids** below the first
cut-off as the head. It works because the vocabulary lists the words most frequent first
(lesson 3), and the cut-offs are set by how much of the text each part covers:
""")

code(r"""
counts = torch.bincount(lm_data.train, minlength=len(vocab)).double()
cutoffs = lm.LMConfig(vocab_size=len(vocab)).clipped_cutoffs()   # the default cut-offs: ids 0-1,999 | 2,000-9,999 | 10,000-
edges = [0, *cutoffs, len(vocab)]
parts = pd.DataFrame({"ids": [f"{a:,} - {b - 1:,}" for a, b in zip(edges, edges[1:])],
                      "share of the training words": [round((counts[a:b].sum() / counts.sum()).item(), 3)
                                                      for a, b in zip(edges, edges[1:])]},
                     index=["head", "cluster 1", "cluster 2"])
display(parts)
rank = int((counts > counts[eos]).sum()) + 1
print(f"<eos>: id {eos}, {int(counts[eos]):,} times, the {rank}th most frequent token: in the head")
assert eos < cutoffs[0] and rank < 100                       # a frequent token, where frequent tokens belong
assert parts["share of the training words"].iloc[0] > 0.8    # most words are scored by the small head alone
""")

md(r"""
Had `<eos>` been appended at the end of the vocabulary (id 27,080, where the course's first
version of this lesson put it), the model would have computed the rarest cluster 70,000 times,
once per review, and predicted the end of a review through two steps (the cluster, then the word
in it) with the smallest hidden vector of all. The same short training run with each output
layer (6 chunks; enough for a ratio, the speeds vary a little from run to run), in this run:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
def words_per_second(model, chunks=6):
    # Training speed in target words per second, over `chunks` truncated-BPTT steps.
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    state = None
    synchronize()
    began = time.perf_counter()
    for k in range(chunks):
        inputs, targets = lm.next_word_batch(train_rows, k * BPTT, BPTT)
        _, state = lm.tbptt_step(model, inputs.to(device), targets.to(device), state, optimizer)
    synchronize()
    return chunks * targets.numel() / (time.perf_counter() - began)


outputs = {}
for output in ("full", "tied", "adaptive"):
    set_seed(0)
    model = lm.build_lm(len(vocab), output=output, **LM_SIZES).to(device)
    outputs[output] = {"parameters": count_parameters(model), "words / s": round(words_per_second(model))}
speed = pd.DataFrame(outputs).T
display(speed)
removed = 1 - speed.loc["tied", "parameters"] / speed.loc["full", "parameters"]
print(f"tying removes {removed:.0%} of the parameters; the adaptive softmax trains "
      f"{speed.loc['adaptive', 'words / s'] / speed.loc['full', 'words / s']:.0f}x as fast as the full one")
assert 0.3 < removed < 0.45                                                          # one matrix instead of two
assert speed.loc["adaptive", "words / s"] > 1.5 * speed.loc["full", "words / s"]      # a same-run ratio
""")

md(r"""
Tying removes the output matrix (1.7 million weights) but keeps the embedding and the LSTM: 38%
of the parameters, not half. The adaptive softmax is still a proper distribution over every
word: its `log_prob` sums to one, and the loss it trains with equals the cross-entropy computed
from that distribution:
""")

code(r"""
set_seed(0)
model = lm.build_lm(len(vocab), output="adaptive", **LM_SIZES)
inputs, targets = lm.next_word_batch(train_rows[:4], 0, 16)
with torch.no_grad():
    hidden, _ = model(inputs)
    log_probs = model.log_probs(hidden)                       # (4, 16, vocabulary)
    loss, _ = model.loss(inputs, targets)
by_hand = -log_probs.gather(2, targets.unsqueeze(2)).mean()
print(f"sums of probabilities: {log_probs.exp().sum(-1).min():.5f} .. {log_probs.exp().sum(-1).max():.5f}; "
      f"loss {loss:.5f}, from the distribution {by_hand:.5f}")
assert torch.allclose(log_probs.exp().sum(-1), torch.ones(4, 16), atol=1e-4)
assert torch.allclose(loss, by_hand, atol=1e-5)
""")

md(r"""
We train with the adaptive softmax. (Tying needs the full computation over the vocabulary; on a
GPU that is cheap and tying is the common choice; on a CPU the adaptive softmax wins.)

## 5. Truncated backpropagation through time

Chunk after chunk, the state goes on: its **values** tell the LSTM what came before. But if it
kept its **graph**, the loss of chunk $n$ would hang on every earlier chunk: `backward()` would
walk back through the whole stream read so far, and memory and time per step would grow with it.
So each step **detaches** the state it carries in: same numbers, no history. Gradients then flow
back at most `bptt` steps: *truncated* backpropagation through time.

What detaching changes, measured on 16 chunks in a row: the number of operations in the graph behind
each chunk's loss (PyTorch records a whole LSTM call over a chunk as one operation, so the count
grows slowly, but every operation holds its chunk's saved tensors), and the time `backward()`
takes on the last chunk's loss:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
def graph_size(tensor):
    # How many autograd operations the graph behind `tensor` holds (what backward() would walk).
    seen, todo = set(), [tensor.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in seen:
            seen.add(node)
            todo.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


set_seed(0)
model = lm.build_lm(len(vocab), output="adaptive", **LM_SIZES).to(device)
sizes, backward_seconds = {}, {}
for way in ("state detached", "state carried with its graph"):
    state, sizes[way] = None, []
    for k in range(16):
        inputs, targets = lm.next_word_batch(train_rows, k * BPTT, BPTT)
        if way == "state detached":
            state = lm.detach_state(state)
        loss, state = model.loss(inputs.to(device), targets.to(device), state)
        sizes[way].append(graph_size(loss))
    times = []
    for repeat in range(5):              # the fastest of 5: one pause of the machine cannot decide the ratio
        synchronize()
        began = time.perf_counter()
        loss.backward(retain_graph=True)  # carried: back through all 16 chunks; detached: through the last one
        synchronize()
        times.append(time.perf_counter() - began)
        model.zero_grad()
    backward_seconds[way] = min(times)
for way in sizes:
    print(f"{way:30s}: graph sizes {sizes[way][:4]} ... {sizes[way][-1]}, "
          f"backward of the last loss {backward_seconds[way] * 1000:.0f} ms")
detached, carried = sizes["state detached"], sizes["state carried with its graph"]
step = carried[1] - carried[0]
assert len(set(detached[1:])) == 1                                         # the same graph at every chunk
assert step > 0 and carried == [carried[0] + k * step for k in range(16)]   # one chunk's worth more at every chunk
carried_seconds, detached_seconds = backward_seconds["state carried with its graph"], backward_seconds["state detached"]
print(f"backward through 16 chunks took {carried_seconds / detached_seconds:.1f} times as long as through the last one")
# a same-run ratio of the fastest of 5 each (about 4 here, asserted with a margin of 2); it grows with the text read
assert carried_seconds > 1.5 * detached_seconds
""")

md(r"""
That cell kept every graph on purpose (`retain_graph=True`). Training does not: each
`backward()` frees the graph it has walked, to give its memory back. So a state carried with its
graph fails at once, at the **second** chunk: its `backward()` reaches into the first chunk's
graph, which the first `backward()` has already freed.
""")

code(r"""
set_seed(0)
model = lm.build_lm(len(vocab), output="adaptive", **LM_SIZES).to(device)
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
state, message = None, None
for k in range(2):
    inputs, targets = lm.next_word_batch(train_rows, k * BPTT, BPTT)
    loss, state = model.loss(inputs.to(device), targets.to(device), state)   # the state is NOT detached
    optimizer.zero_grad()
    try:
        loss.backward()                                                      # frees this chunk's graph
    except RuntimeError as error:
        message = str(error).split(".")[0]
        break
    optimizer.step()
    print(f"chunk {k}: backward() done")
print(f"chunk {k}: RuntimeError: {message}")
assert k == 1 and "backward through the graph a second time" in message
""")

md(r"""
### What the cut costs

Detaching keeps the state's values, so the model still *reads* what came before the chunk. What
it loses is the gradient: a word in an earlier chunk gets no signal from the losses of this one,
so the model cannot *learn* a dependency longer than the chunk from this training. A constructed
example makes it visible: a small LSTM reads 20 steps, in one piece or in two chunks of 10 with
the state detached in between, and we ask how much the output at the last step depends on the
input at each step (the gradient of the one with respect to the other):
""")

code(r"""
set_seed(0)
rnn = torch.nn.LSTM(1, 8, batch_first=True)
x = torch.randn(1, 20, 1)


def last_output_gradient(chunk):
    # |d(last output) / d(input at step t)| for every t, reading x in chunks with the state detached between them.
    steps = x.clone().requires_grad_(True)
    state, outputs = None, []
    for start in range(0, 20, chunk):
        output, state = rnn(steps[:, start:start + chunk], lm.detach_state(state))
        outputs.append(output)
    outputs[-1][0, -1].sum().backward()
    return steps.grad[0, :, 0].abs(), torch.cat(outputs, dim=1).detach()


full, full_outputs = last_output_gradient(20)
truncated, truncated_outputs = last_output_gradient(10)
fig, ax = plt.subplots(figsize=(7, 2.8))
ax.bar(torch.arange(20) - 0.2, full, width=0.4, label="one chunk of 20 steps")
ax.bar(torch.arange(20) + 0.2, truncated, width=0.4, label="two chunks of 10, state detached")
ax.axvline(9.5, color="gray", linestyle=":")
ax.set(xlabel="input step t", ylabel="|gradient| reaching step t", yscale="log",
       title="What the last output's loss can teach each input step")
ax.legend()
plt.show()
print(f"gradient reaching steps 0-9: {full[:10].sum():.2e} in one chunk, {truncated[:10].sum():.1f} in two")
assert (full[:10] > 0).all() and (truncated[:10] == 0).all()            # no signal across the cut
assert torch.allclose(full[10:], truncated[10:])                       # the same inside the last chunk
assert torch.allclose(full_outputs, truncated_outputs)                 # and the same values: the state still carries them
""")

md(r"""
The forward pass is identical either way (the last assert): the state still carries what the
first 10 steps said. But no gradient crosses the cut, so nothing *trains* the model to keep in
its state what it will need more than `bptt` words later. Longer chunks let longer dependencies
train, at the price of the memory and time measured above. AWD-LSTM (Merity et al., 2018) also
draws each chunk's length at random around its mean, so that the cuts fall at different words in
every epoch and no word is always the first of a chunk.

One step of training, written out: detach, forward, loss, `zero_grad`, backward, clip, step. It is
what `lm.tbptt_step` does; the cell checks that both give the same losses and weights.
""")

code(r"""
def my_tbptt_step(model, inputs, targets, state, optimizer, clip=0.25):
    if state is not None:
        state = tuple(s.detach() for s in state)                # keep the values, drop the graph
    loss, state = model.loss(inputs, targets, state)            # mean cross-entropy of the next words
    optimizer.zero_grad()
    loss.backward()                                             # back to the start of this chunk, no further
    torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item(), state


losses, weights = {}, {}
for name, step in (("mine", my_tbptt_step), ("library", lm.tbptt_step)):
    set_seed(0)
    model = lm.build_lm(len(vocab), output="adaptive", **LM_SIZES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    state, losses[name] = None, []
    for k in range(3):
        inputs, targets = lm.next_word_batch(train_rows[:8], k * 16, 16)
        loss, state = step(model, inputs, targets, state, optimizer)
        losses[name].append(round(loss, 4))
    weights[name] = model.rnn.weight_hh_l0.detach().clone()
print(losses)
assert losses["mine"] == losses["library"] and torch.equal(weights["mine"], weights["library"])
""")

md(r"""
## 6. Training the language model

How long must it train to beat the bigram? The course's first version of this lesson trained an
LSTM of 64 units for 1.6 million words at a constant learning rate of 3e-3 and stopped at
perplexity 482: *worse* than counting word pairs. Measured on this CPU, three changes pay: more
words, a higher peak learning rate, and lesson 6's one-cycle schedule, which warms the rate up
and then lets it fall to nearly zero, so that the last steps settle instead of jumping around.
The recipe is `lm.LESSON8` (lesson 9 rebuilds the same model from it when this one is missing);
it reads a fixed number of words, the first part of each of the 64 rows, so that every machine
trains the same model, whatever its speed:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
recipe = lm.LESSON8
print(recipe)
set_seed(0)
language_model = lm.build_lm(len(vocab), embedding_dim=recipe.embedding_dim, hidden_size=recipe.hidden_size)
rows = recipe.rows(lm_data.train)                 # (64, words / 64 + 1): the first part of every row
history = lm.train_lm(language_model, rows, None, bptt=recipe.bptt, lr=recipe.lr, clip=recipe.clip, epochs=1,
                      schedule=recipe.schedule, device=device, log=print, log_every=rows.size(1) // recipe.bptt // 6)
valid_loss = lm.evaluate_lm(language_model, valid_rows, BPTT)
lm_seconds = history.seconds
print(f"{history.tokens:,} words in {lm_seconds:.0f} s ({history.tokens_per_second:,.0f} words/s); "
      f"validation perplexity {lm.perplexity(valid_loss):.1f}")
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
valid_perplexity = lm.perplexity(valid_loss)
fig, ax = plt.subplots(figsize=(7, 3.8))
ax.plot(history.train_tokens, [lm.perplexity(loss) for loss in history.train_loss], "o-", label="training (running)")
ax.axhline(valid_perplexity, color="tab:green", label=f"validation after training: {valid_perplexity:.0f}")
for name, style in (("unigram", ":"), ("bigram", "--")):
    ax.axhline(baselines[name], color="gray", linestyle=style, label=f"{name}: {baselines[name]:.0f}")
ax.set(xlabel="words trained on", ylabel="perplexity", yscale="log", title="The language model learns")
ax.legend()
plt.show()
print(f"validation perplexity {valid_perplexity:.1f}; bigram {baselines['bigram']:.1f} on the same words: "
      f"{valid_perplexity / baselines['bigram']:.0%} of it")
MARGIN = 0.95   # two seeds here ended at 0.893 and 0.897 of the bigram: 5% leaves room for another machine's run
assert valid_perplexity < MARGIN * baselines["bigram"]   # it beats counting word pairs, by more than the run-to-run spread
lm.save_lm(lm.default_lm_path(), language_model, vocab, extra={
    "recipe": asdict(recipe), "pretraining_seconds": lm_seconds, "pretraining_tokens": history.tokens,
    "valid_perplexity": valid_perplexity, "backward": False})
print(f"saved as data/checkpoints/{lm.default_lm_path().name}, where python -m course_utils.lm generate looks for it")
""")

md(r"""
The model now beats the bigram on the same validation words (the stored run: perplexity 255.5 against the bigram's 286.2, 89% of it). Each
word is predicted from *everything* before it in its row, not from one word, and the LSTM has
learned which words go together over several steps. The curve is still falling at the end: more
words would buy more (`python -m course_utils.lm train --minutes 10` goes on for as long as you
give it).

## 7. Writing

To write, the model reads a prompt, and then, again and again: take the distribution of the next
word, pick a word, feed it back in. How to pick:

* **greedy**: always the most likely word: safe, and soon stuck in a loop;
* **sampling with a temperature** $T$: draw from $\mathrm{softmax}(\text{scores} / T)$. $T < 1$
  sharpens the distribution (towards greedy), $T > 1$ flattens it (towards any word at all). The
  division comes *before* the softmax: dividing probabilities after it and renormalising would
  change nothing;
* **top-k**: draw only among the $k$ most likely words, so no odd, rare word slips in.

Every draw uses its own seeded `torch.Generator`: the same seed gives the same text.
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
prompt = "this movie was"
print(f"greedy       : {prompt} {lm.generate(language_model, vocab, prompt, words=30, greedy=True)}")
for temperature in (0.5, 1.0, 1.5):
    text = lm.generate(language_model, vocab, prompt, words=30, temperature=temperature, seed=0)
    print(f"T = {temperature:<4}     : {prompt} {text}")
print(f"T = 1, top-20: {prompt} {lm.generate(language_model, vocab, prompt, words=30, top_k=20, seed=0)}")
same = lm.generate(language_model, vocab, prompt, words=30, seed=0)
assert same == lm.generate(language_model, vocab, prompt, words=30, seed=0)      # reproducible
assert same != lm.generate(language_model, vocab, prompt, words=30, seed=1)      # another seed, another text
assert lm.generate(language_model, vocab, prompt, words=30, greedy=True) == lm.generate(
    language_model, vocab, prompt, words=30, top_k=1, seed=5)                    # top-1 is greedy
""")

md(r"""
Does the prompt matter? With the same seed, two prompts get the same random numbers, so a model
that forgot its prompt after a word or two would write the same continuation after both. The
next-word distributions tell the same story in numbers: after each prompt, how far apart they
are (total variation distance: 0 for the same distribution, 1 for no word in common), and which
words each makes most likely:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
prompts = ("the acting was", "the worst part of this film", "i laughed so hard")
texts = {f"seed {seed}": {p: lm.generate(language_model, vocab, p, words=12, temperature=0.8, seed=seed) for p in prompts}
         for seed in range(3)}
display(pd.DataFrame(texts).T)


def next_word_distribution(text):
    with torch.no_grad():
        hidden, _ = language_model(torch.tensor([vocab.encode(text.split())], device=device))
        return language_model.log_probs(hidden[0, -1]).exp().cpu()


distributions = {p: next_word_distribution(p) for p in prompts}
for p, dist in distributions.items():
    print(f"{p!r:32} -> {[vocab.itos[i] for i in dist.topk(5).indices]}")
distance = 0.5 * (distributions[prompts[0]] - distributions[prompts[1]]).abs().sum().item()
print(f"total variation between the next words after {prompts[0]!r} and {prompts[1]!r}: {distance:.2f}")
assert all(len(set(row.values())) == len(prompts) for row in texts.values())   # every prompt, its own text
assert distance > 0.3
""")

md(r"""
Every prompt gets its own text, and after the first two prompts the next-word distributions
differ by 0.76. Yet the texts of one seed share words further on (seed 0: "almost non stop
guru" after two of the prompts): the same random numbers, drawn from distributions that have
become alike once the prompt is a few words back, pick the same words. The prompt steers the
first words; a 64-unit state keeps only a little of it for long.

What the temperature does to the distribution of the next word, measured by its entropy (in
bits: 0 is certainty, $\log_2 27081 \approx 14.7$ a uniform choice), and to the variety of a long
sample (distinct words among 200 drawn):
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
scores = next_word_distribution(prompt).log()
rows = []
for temperature in (0.5, 0.8, 1.0, 1.5):
    p = lm.next_word_probabilities(scores, temperature)
    entropy = -(p * p.clamp(min=1e-30).log2()).sum().item()
    sample = lm.generate(language_model, vocab, prompt, words=200, temperature=temperature, seed=0).split()
    rows.append({"temperature": temperature, "entropy (bits)": round(entropy, 2),
                 "distinct words in the sample": len(set(sample)), "sample length": len(sample)})
table = pd.DataFrame(rows).set_index("temperature")
display(table)
assert table["entropy (bits)"].is_monotonic_increasing   # a higher temperature, a flatter distribution
assert table.loc[0.5, "distinct words in the sample"] < table.loc[1.5, "distinct words in the sample"]
""")

md(r"""
A sample can be shorter than asked: when the model draws `<eos>`, the review is over. It does so
when the text sounds finished. After some prompts the end of the review is a likely next "word":
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
endings = {p: next_word_distribution(p)[eos].item() for p in ("the acting was", "this movie was", "highly recommended",
                                                               "i give it a 10 out of 10")}
print({p: f"{value:.1%}" for p, value in endings.items()})
assert endings["highly recommended"] > 10 * endings["the acting was"]
""")

md(r"""
**Try it.** Type a prompt (Enter to write), move the temperature and top-k sliders, change the
seed. The widget needs a running kernel; on GitHub only the stored text below shows. Its logic is
the plain function `describe_generation`, which the tests call. With `show_end=True` the model's
`<eos>` is kept, and the box says when the model ended the review, also when it ended it before
writing a word:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
write = functools.partial(lm.generate, language_model, vocab, words=30, show_end=True)
writing_box(write, value="the acting was")
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
# What the box shows for a prompt after which the model often ends the review: the first seed that ends it at once
ending_prompt = "i give it a 10 out of 10"
seed = next(s for s in range(100) if write(ending_prompt, seed=s) == "<eos>")
shown = describe_generation(ending_prompt, write, seed=seed)
display(HTML(shown))
assert "ended the review at once" in shown
""")

md(r"""
## 8. The command line

The same pieces, headless. `python -m course_utils.lm train --minutes 10` trains the language
model on the same data for as long as you give it (`--resume` goes on from the saved one) and
saves it where section 6 saved this one, `data/checkpoints/lm.pt`; `generate` writes with the
model saved there. So right after this lesson, the README's command uses the model trained above:
""")

code(r"""
# NBVAL_IGNORE_OUTPUT
def lm_command(*arguments):
    return subprocess.run([sys.executable, "-m", "course_utils.lm", *arguments], capture_output=True, text=True)


done = lm_command("generate", "This movie was", "--words", "20", "--temperature", "0.8", "--seed", "0")
print(done.stdout)
saved_model, saved_vocab, _ = lm.load_lm()   # the file the command read (on the CPU, as the command runs)
assert done.returncode == 0
assert done.stdout.strip() == f"This movie was {lm.generate(saved_model, saved_vocab, 'This movie was', words=20, temperature=0.8, seed=0)}".strip()
for what, bad in (("an empty prompt", ["generate", "   "]),
                  ("a missing model", ["generate", "This movie was", "--checkpoint",
                                       str(lm.default_lm_path().with_name("no-such-model.pt"))]),
                  ("temperature 0", ["generate", "This movie was", "--temperature", "0"])):
    failed = lm_command(*bad)
    message = failed.stderr.strip().replace(str(default_data_dir()), "data")   # the same on every machine
    print(f"{what:16} -> exit {failed.returncode}: {message}")
    assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1 and "Traceback" not in failed.stderr
""")

md(r"""
## Summary

- A **language model** predicts the next word at every step: inputs and targets shifted by one,
  cross-entropy over the vocabulary; **perplexity** = exp(mean loss), the number of words it
  hesitates between. Counting words (unigram) and word pairs (bigram) are the baselines, scored
  on exactly the same words.
- The output layer over the vocabulary is the expensive part: **tying** removes 38% of the
  parameters here, the **adaptive softmax** most of the time, if the ids are sorted by frequency
  (`<eos>` belongs among the frequent ones).
- **Truncated BPTT**: carry the state's values from chunk to chunk, **detach** its graph (kept,
  it fails at the second `backward()`; retained, it grows with the text read). No gradient
  crosses a cut: dependencies longer than the chunk do not train.
- Trained on 10 million words (211 s on a 2-core CPU) with a one-cycle schedule, the lesson's LSTM **beats the bigram**;
  it writes continuations that depend on the prompt, and ends a review when the text sounds
  finished.
- **Writing**: greedy, temperature (divide the scores *before* the softmax), top-k, seeded.

**Next:** [lesson 9](09_unlabeled_text.ipynb) starts a classifier from this language model, the
way ULMFiT does, and measures when reading unlabeled reviews pays.

**Exercises:** [`exercises/08_exercises.ipynb`](exercises/08_exercises.ipynb): shifting inputs and
targets, perplexity from a loss, one step of truncated BPTT that detaches, sampling with a temperature.
""")

build("/work/wt/h3/notebooks/08_language_models.ipynb", cells)
print(len(cells), "cells")
