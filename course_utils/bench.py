"""Benchmarks of the course's choices, run from the command line.

``python -m course_utils.bench batching [--batches N] [--threads T]``

trains the classic tutorial model (Embedding 20 -> LSTM 64 -> Linear 64 -> ReLU -> Linear 1, Adam,
batches of 32) on the real IMDb training split, in the four ways that two independent choices
give (lesson 4, section 7):

* which reviews share a batch: **random** batches (a shuffled data set cut in order, what
  ``DataLoader(shuffle=True)`` gives), or **bucketed** ones (reviews of similar lengths together,
  as ``BucketBatchSampler`` makes them);
* how the LSTM reads the batch: **packed** (``pack_padded_sequence(..., enforce_sorted=False)``,
  as the classic tutorials do; with bucketed batches that is torchtext's old ``BucketIterator``
  recipe), or **PaddedRNN** (the padded batch, each review read at its own true length; lesson 4).

All four give the same results: before timing, the weights of the packed model are copied into
the ``PaddedRNN`` one, the same batches go through both, and outputs and every gradient must agree
to 1e-5. The four ways then train on the *same* reviews: a random sample of ``--batches`` x 32
reviews, cut into random batches in the order drawn, or sorted by length and cut into bucketed
batches (one pool, in a shuffled order). Each way has its own model and optimizer; one step of
each is timed in turn (the order rotating from step to step), so that all four share the
machine's ups and downs, on one CPU thread. Then a fifth row repeats the fastest way, bucketed +
``PaddedRNN``, on the same batches with ``--threads`` threads (default: PyTorch's own choice, all
cores), on its own: switching the number of threads at every step costs time of its own. Threads
that wait for one another slow down badly when another program holds a core, so read that row on
an otherwise idle machine. It prints reviews/s and real tokens/s of each, and what each choice
buys. Nothing here runs at import time.
"""

from __future__ import annotations

import copy
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .batching import BucketBatchSampler, PaddedRNN, collate_batch
from .cli import OneLineParser, positive_int
from .text import PAD_INDEX, Vocab, tokenize_all

EMBEDDING_DIM, HIDDEN_SIZE, HEAD_SIZE = 20, 64, 64


class PackedTutorialLSTM(nn.Module):
    """The classic tutorial model: the LSTM reads a ``PackedSequence``; its last state feeds the head."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM, padding_idx=PAD_INDEX)
        self.rnn = nn.LSTM(EMBEDDING_DIM, HIDDEN_SIZE, batch_first=True)
        self.fc1 = nn.Linear(HIDDEN_SIZE, HEAD_SIZE)
        self.fc2 = nn.Linear(HEAD_SIZE, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(self.embedding(ids), lengths.cpu(), batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.rnn(packed)
        return self.fc2(torch.relu(self.fc1(h_n[-1]))).squeeze(1)


class BucketedTutorialLSTM(nn.Module):
    """The same model, with ``PaddedRNN`` reading the padded batch (the course's way)."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, EMBEDDING_DIM, padding_idx=PAD_INDEX)
        self.rnn = PaddedRNN("lstm", EMBEDDING_DIM, HIDDEN_SIZE)
        self.fc1 = nn.Linear(HIDDEN_SIZE, HEAD_SIZE)
        self.fc2 = nn.Linear(HEAD_SIZE, 1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        _, h_n = self.rnn(self.embedding(ids), lengths)
        return self.fc2(torch.relu(self.fc1(h_n[-1]))).squeeze(1)

    @torch.no_grad()
    def copy_weights_from(self, other: PackedTutorialLSTM) -> None:
        """Give this model exactly the weights of a ``PackedTutorialLSTM``."""
        for name in ("embedding", "fc1", "fc2"):
            getattr(self, name).load_state_dict(getattr(other, name).state_dict())
        self.rnn.copy_weights_from(other.rnn)


def _named_gradients(model: nn.Module) -> dict[str, torch.Tensor]:
    """Gradients by a name common to both models (the LSTM's PyTorch names for both)."""
    grads = {name: p.grad for name, p in model.named_parameters() if not name.startswith("rnn.")}
    if isinstance(model.rnn, PaddedRNN):
        single = model.rnn.layers[0][0]
        grads.update({f"rnn.{n}": getattr(single, n).grad for n in
                      ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")})
    else:
        grads.update({f"rnn.{n}": p.grad for n, p in model.rnn.named_parameters()})
    return grads


def assert_same_results(
    packed: PackedTutorialLSTM, bucketed: BucketedTutorialLSTM, batches: Sequence[tuple], atol: float = 1e-5
) -> None:
    """Same weights + same batch => same outputs and same gradients, or ``AssertionError``."""
    bucketed.copy_weights_from(packed)
    loss_fn = nn.BCEWithLogitsLoss()
    for ids, labels, lengths in batches:
        results = []
        for model in (packed, bucketed):
            model.zero_grad()
            logits = model(ids, lengths)
            loss_fn(logits, labels).backward()
            results.append((logits.detach(), _named_gradients(model)))
        (logits_a, grads_a), (logits_b, grads_b) = results
        assert torch.allclose(logits_a, logits_b, atol=atol), (
            f"outputs differ by {(logits_a - logits_b).abs().max():.2e}")
        assert grads_a.keys() == grads_b.keys()
        for name, grad in grads_a.items():
            assert torch.allclose(grad, grads_b[name], atol=atol), (
                f"gradient of {name} differs by {(grad - grads_b[name]).abs().max():.2e}")


@dataclass
class Timing:
    seconds: float = 0.0
    reviews: int = 0
    tokens: int = 0

    def add(self, seconds: float, lengths: torch.Tensor) -> None:
        self.seconds += seconds
        self.reviews += len(lengths)
        self.tokens += int(lengths.sum())

    @property
    def reviews_per_second(self) -> float:
        return self.reviews / self.seconds

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: tuple, device: torch.device) -> float:
    """One training step (forward, backward, Adam step); returns its wall-clock seconds."""
    ids, labels, lengths = batch
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    ids, labels = ids.to(device), labels.to(device)
    optimizer.zero_grad()
    loss = nn.functional.binary_cross_entropy_with_logits(model(ids, lengths), labels)
    loss.backward()
    optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def same_reviews_two_ways(
    lengths: Sequence[int], n_batches: int, batch_size: int, seed: int
) -> tuple[list[list[int]], list[list[int]]]:
    """A random sample of ``n_batches * batch_size`` reviews, batched two ways.

    Random batches: the sample cut in the order it was drawn. Bucketed batches: the same sample
    sorted by length and cut (``BucketBatchSampler`` with one pool), in a shuffled order.
    """
    needed = n_batches * batch_size
    if needed > len(lengths):
        raise ValueError(f"--batches {n_batches} of {batch_size} needs {needed:,} reviews; "
                         f"the split has {len(lengths):,}.")
    sample = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed))[:needed].tolist()
    random_batches = [sample[i:i + batch_size] for i in range(0, needed, batch_size)]
    sampler = BucketBatchSampler([lengths[i] for i in sample], batch_size, seed=seed, pool_batches=n_batches)
    bucket_batches = [[sample[j] for j in batch] for batch in sampler]
    return random_batches, bucket_batches


# the four ways (batches, layer), then the fifth row: the fastest way on several threads
WAYS = [("random", "packed"), ("random", "PaddedRNN"), ("bucketed", "packed"), ("bucketed", "PaddedRNN")]


def bench_batching(
    n_batches: int = 40, batch_size: int = 32, seed: int = 0, warmup: int = 2, min_freq: int = 1,
    device: str = "cpu", threads: Optional[int] = None,
) -> dict[str, Timing]:
    """Run the benchmark described in the module docstring; return the timing of every row.

    The keys are ``"random + packed"``, ``"random + PaddedRNN"``, ``"bucketed + packed"``,
    ``"bucketed + PaddedRNN"`` (one thread each) and ``"bucketed + PaddedRNN, T threads"``.
    """
    from .data import default_data_dir, load_imdb, train_valid_split

    device = torch.device(device)
    threads = threads or torch.get_num_threads()
    start = time.perf_counter()
    train, _ = train_valid_split(load_imdb("train"))
    tokens = tokenize_all([text for text, _ in train], cache_dir=default_data_dir() / "cache")
    vocab = Vocab.build(tokens, min_freq=min_freq)
    data = [(vocab.encode(t), label) for t, (_, label) in zip(tokens, train)]
    print(f"IMDb training split: {len(data):,} reviews, vocabulary {len(vocab):,} tokens "
          f"(min_freq={min_freq}), loaded in {time.perf_counter() - start:.1f} s")

    batch_lists = dict(zip(("random", "bucketed"),
                           same_reviews_two_ways([len(ids) for ids, _ in data], n_batches, batch_size, seed)))

    def batch(indices: list[int]) -> tuple:
        return collate_batch([data[i] for i in indices])

    torch.manual_seed(seed)
    packed, padded = PackedTutorialLSTM(len(vocab)), BucketedTutorialLSTM(len(vocab))
    assert_same_results(packed, padded, [batch(batch_lists["random"][0]), batch(batch_lists["bucketed"][0])])
    print("identical results: same weights and same batches give the same outputs and gradients (atol 1e-5)")

    rows = [(f"{batches} + {layer}", batches, layer, 1) for batches, layer in WAYS]
    rows.append((f"bucketed + PaddedRNN, {threads} threads", "bucketed", "PaddedRNN", threads))
    models = {}
    for name, _, layer, _ in rows:  # every row starts from the same weights, with its own optimizer
        model = copy.deepcopy(packed if layer == "packed" else padded).to(device)
        models[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-3))
    timings = {name: Timing() for name, *_ in rows}
    saved_threads = torch.get_num_threads()
    try:
        # the four ways on one thread, one step of each in turn (the order rotating), so that they share
        # the machine's ups and downs; then the fifth row on its own, since switching the number of
        # threads at every step costs time of its own
        for block, n_threads in ((rows[:4], 1), (rows[4:], threads)):
            torch.set_num_threads(n_threads)
            for step in range(-warmup, n_batches):  # warm-up steps first (untimed), on the first batches
                shift = step % len(block)
                for name, batches, _, _ in block[shift:] + block[:shift]:
                    b = batch(batch_lists[batches][step if step >= 0 else step + warmup])
                    seconds = train_step(*models[name], b, device)
                    if step >= 0:
                        timings[name].add(seconds, b[2])
    finally:
        torch.set_num_threads(saved_threads)

    print(f"\nthe same {n_batches * batch_size:,} reviews, {n_batches} batches of {batch_size} (after {warmup} "
          f"warm-up batches), each training step timed in turn, on {device.type}:")
    print(f"{'batches + layer':<40}{'threads':>8}{'reviews/s':>11}{'tokens/s':>11}{'s/batch':>9}")
    for name, _, _, n_threads in rows:
        t = timings[name]
        print(f"{name:<40}{n_threads:>8}{t.reviews_per_second:>11,.0f}{t.tokens_per_second:>11,.0f}"
              f"{t.seconds / n_batches:>9.3f}")

    def gain(fast: str, slow: str) -> float:
        return timings[fast].reviews_per_second / timings[slow].reviews_per_second

    print("\nwhat each choice buys (ratios of reviews/s, = ratios of tokens/s: the same reviews):")
    print(f"  PaddedRNN instead of packing, random batches:   {gain('random + PaddedRNN', 'random + packed'):5.1f}x")
    print(f"  PaddedRNN instead of packing, bucketed batches: {gain('bucketed + PaddedRNN', 'bucketed + packed'):5.1f}x")
    print(f"  bucketing, with packing:                        {gain('bucketed + packed', 'random + packed'):5.1f}x")
    print(f"  bucketing, with PaddedRNN:                      {gain('bucketed + PaddedRNN', 'random + PaddedRNN'):5.1f}x")
    print(f"  both (bucketed + PaddedRNN vs random + packed): {gain('bucketed + PaddedRNN', 'random + packed'):5.1f}x")
    print(f"  {threads} threads instead of 1, bucketed + PaddedRNN:    "
          f"{gain(rows[-1][0], 'bucketed + PaddedRNN'):5.1f}x")
    return timings


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["grading"]:  # the grading benchmark (course_utils.grading.bench) has options of its own
        from .grading.bench import main as grading_main
        raise SystemExit(grading_main(argv[1:]))
    parser = OneLineParser(prog="python -m course_utils.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    sub.add_parser("grading", help="grade a generated class with --jobs 1, --jobs 2 and in 2 shards (see its --help)")
    p = sub.add_parser("batching", help="random / bucketed batches x packed / PaddedRNN, timed in turn")
    p.add_argument("--batches", type=positive_int, default=40, help="timed batches per way (default 40)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-freq", type=positive_int, default=1,
                   help="vocabulary cut-off (default 1, as the tutorials)")
    p.add_argument("--device", default="cpu", help="cpu (the target) or cuda")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads of the fifth row (default: PyTorch's own choice, all cores); "
                        "the four ways run on one thread")
    args = parser.parse_args(argv)
    if args.bench == "batching":
        try:
            bench_batching(args.batches, args.batch_size, args.seed, max(args.warmup, 0), args.min_freq,
                           args.device, args.threads)
        except ValueError as error:
            p.error(str(error))


if __name__ == "__main__":
    main()
