"""Benchmarks of the course's choices, run from the command line.

``python -m course_utils.bench batching [--batches N]``

trains the classic tutorial model (Embedding 20 -> LSTM 64 -> Linear 64 -> ReLU -> Linear 1, Adam,
batches of 32) on the real IMDb training split in two ways, in one run:

* **classic**: random batches, ``pack_padded_sequence(..., enforce_sorted=False)``, as the
  well-known tutorials do;
* **course**: ``BucketBatchSampler`` batches of similar lengths, and ``PaddedRNN`` reading the
  padded batch (lesson 4).

Before timing, it proves that the two models compute the same thing: the weights of one are
copied into the other, the same batches go through both, and outputs and every gradient must
agree to 1e-5. Then it trains each model for ``--batches`` batches, alternating one classic and one
course batch so that both see the same load on a shared machine, and prints reviews per second
for each and their ratio. Nothing here runs at import time.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from .batching import BucketBatchSampler, PaddedRNN, collate_batch
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


def bench_batching(
    n_batches: int = 30, batch_size: int = 32, seed: int = 0, warmup: int = 2, min_freq: int = 1,
    device: str = "cpu",
) -> dict[str, float]:
    """Run the benchmark described in the module docstring; return reviews/s for both and the ratio."""
    from .data import default_data_dir, load_imdb, train_valid_split

    device = torch.device(device)
    start = time.perf_counter()
    train, _ = train_valid_split(load_imdb("train"))
    tokens = tokenize_all([text for text, _ in train], cache_dir=default_data_dir() / "cache")
    vocab = Vocab.build(tokens, min_freq=min_freq)
    data = [(vocab.encode(t), label) for t, (_, label) in zip(tokens, train)]
    lengths = [len(ids) for ids, _ in data]
    print(f"IMDb training split: {len(data):,} reviews, vocabulary {len(vocab):,} tokens "
          f"(min_freq={min_freq}), loaded in {time.perf_counter() - start:.1f} s")

    # the classic way: a random permutation cut into batches; the course's way: length buckets
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    random_batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    bucket_batches = list(BucketBatchSampler(lengths, batch_size, seed=seed))
    needed = warmup + n_batches
    if needed > min(len(random_batches), len(bucket_batches)):
        raise ValueError(f"--batches {n_batches} is more than one epoch holds.")

    def batch(indices: list[int]) -> tuple:
        return collate_batch([data[i] for i in indices])

    torch.manual_seed(seed)
    packed, bucketed = PackedTutorialLSTM(len(vocab)), BucketedTutorialLSTM(len(vocab))
    assert_same_results(packed, bucketed, [batch(random_batches[0]), batch(bucket_batches[0])])
    print("identical results: same weights and same batches give the same outputs and gradients (atol 1e-5)")

    timings = {"classic": Timing(), "course": Timing()}
    runs = {
        "classic": (packed.to(device), random_batches),
        "course": (bucketed.to(device), bucket_batches),
    }
    optimizers = {name: torch.optim.Adam(model.parameters(), lr=1e-3) for name, (model, _) in runs.items()}
    for step in range(needed):  # alternate the two, so that both share the machine's ups and downs
        for name, (model, batches) in runs.items():
            b = batch(batches[step])
            seconds = train_step(model, optimizers[name], b, device)
            if step >= warmup:
                timings[name].add(seconds, b[2])

    rates = {}
    print(f"\n{'':<52}{'reviews/s':>10}{'tokens/s':>10}{'s/batch':>9}")
    labels = {
        "classic": "classic: random batches + pack_padded_sequence",
        "course": "course: BucketBatchSampler + PaddedRNN",
    }
    for name, t in timings.items():
        rates[name] = t.reviews / t.seconds
        print(f"{labels[name]:<52}{rates[name]:>10.0f}{t.tokens / t.seconds:>10.0f}"
              f"{t.seconds / n_batches:>9.3f}")
    rates["ratio"] = rates["course"] / rates["classic"]
    token_ratio = (timings["course"].tokens / timings["course"].seconds) / (
        timings["classic"].tokens / timings["classic"].seconds)
    print(f"\nspeed-up of the course's way: {rates['ratio']:.1f}x in reviews/s "
          f"({token_ratio:.1f}x in real tokens/s), over {n_batches} batches of {batch_size} each "
          f"after {warmup} warm-up batches, on {device.type} with {torch.get_num_threads()} thread(s)")
    return rates


def main(argv: Optional[Sequence[str]] = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["grading"]:  # the grading benchmark (course_utils.grading.bench) has options of its own
        from .grading.bench import main as grading_main
        raise SystemExit(grading_main(argv[1:]))
    parser = argparse.ArgumentParser(prog="python -m course_utils.bench", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    sub.add_parser("grading", help="grade a generated class with --jobs 1, --jobs 2 and in 2 shards (see its --help)")
    p = sub.add_parser("batching", help="classic packed training vs the course's bucketed PaddedRNN")
    p.add_argument("--batches", type=int, default=30, help="timed batches per method (default 30)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--warmup", type=int, default=2, help="untimed batches first (default 2)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--min-freq", type=int, default=1, help="vocabulary cut-off (default 1, as the tutorials)")
    p.add_argument("--device", default="cpu", help="cpu (the target) or cuda")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads for PyTorch (default: PyTorch's own choice, all cores)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.bench == "batching":
        bench_batching(args.batches, args.batch_size, args.seed, args.warmup, args.min_freq, args.device)


if __name__ == "__main__":
    main()
