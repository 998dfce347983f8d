"""Tests of course_utils.batching: collate, length bucketing, masks, and PaddedRNN == packing."""

import random

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils.batching import (
    BucketBatchSampler,
    PaddedRNN,
    collate_batch,
    last_real_output,
    masked_max,
    masked_mean,
    padding_mask,
    reverse_within_length,
)
from course_utils.text import PAD_INDEX

# --- collate_batch -----------------------------------------------------------------------------


def test_collate_pads_on_the_right_and_keeps_the_order():
    ids, labels, lengths = collate_batch([([5, 6], 1), ([7, 8, 9, 10], 0), ([11], 1)])
    assert ids.tolist() == [[5, 6, 0, 0], [7, 8, 9, 10], [11, 0, 0, 0]]
    assert labels.tolist() == [1.0, 0.0, 1.0]
    assert lengths.tolist() == [2, 4, 1]


def test_collate_dtypes_and_devices():
    ids, labels, lengths = collate_batch([(torch.tensor([3, 4]), 1), ([2], 0)])
    assert ids.dtype == torch.long and labels.dtype == torch.float32 and lengths.dtype == torch.long
    assert lengths.device.type == "cpu"  # pack_padded_sequence wants CPU lengths
    assert PAD_INDEX == 0


def test_collate_custom_pad_index():
    ids, _, _ = collate_batch([([5], 1), ([6, 7], 0)], pad_index=9)
    assert ids.tolist() == [[5, 9], [6, 7]]


def test_collate_rejects_empty_inputs():
    with pytest.raises(ValueError, match="empty batch"):
        collate_batch([])
    with pytest.raises(ValueError, match="empty sequence"):
        collate_batch([([1, 2], 1), ([], 0)])


def test_collate_works_in_a_dataloader():
    data = [([i] * (i % 5 + 1), i % 2) for i in range(10)]
    loader = torch.utils.data.DataLoader(data, batch_size=4, collate_fn=collate_batch)
    shapes = [tuple(ids.shape) for ids, _, _ in loader]
    assert shapes == [(4, 4), (4, 5), (2, 5)]


# --- BucketBatchSampler ------------------------------------------------------------------------


def random_lengths(n, seed=0):
    rng = random.Random(seed)
    return [rng.randint(1, 1000) for _ in range(n)]


@pytest.mark.parametrize("n, batch_size, pool_batches", [(1000, 32, 50), (1001, 32, 4), (7, 3, 2), (5, 10, 50)])
def test_every_index_exactly_once_per_epoch(n, batch_size, pool_batches):
    sampler = BucketBatchSampler(random_lengths(n), batch_size, seed=1, pool_batches=pool_batches)
    for _ in range(3):  # three epochs
        batches = list(sampler)
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(n))
        assert all(1 <= len(batch) <= batch_size for batch in batches)
        assert len(batches) == len(sampler)


def test_same_seed_same_batches_other_seed_other_batches():
    lengths = random_lengths(500)
    a = BucketBatchSampler(lengths, 16, seed=3)
    b = BucketBatchSampler(lengths, 16, seed=3)
    c = BucketBatchSampler(lengths, 16, seed=4)
    epochs_a = [list(a) for _ in range(2)]
    assert epochs_a == [list(b) for _ in range(2)]
    assert epochs_a[0] != list(c)
    assert epochs_a[0] != epochs_a[1]  # each epoch is shuffled anew


def test_buckets_hold_similar_lengths():
    lengths = random_lengths(3200)
    def padding_fraction(batches):
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        return 1 - sum(lengths) / padded
    bucketed = padding_fraction(list(BucketBatchSampler(lengths, 32, seed=0)))
    order = torch.randperm(len(lengths), generator=torch.Generator().manual_seed(0)).tolist()
    randomly = padding_fraction([order[i:i + 32] for i in range(0, len(order), 32)])
    assert bucketed < 0.05 < 0.4 < randomly


def test_no_shuffle_is_sorted_pools_in_order():
    sampler = BucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, shuffle=False, pool_batches=1)
    assert list(sampler) == [[1, 0], [3, 2], [4, 5]]
    sampler = BucketBatchSampler([5, 1, 4, 2, 3, 6], batch_size=2, shuffle=False, pool_batches=3)
    assert list(sampler) == [[1, 3], [4, 2], [0, 5]]


def test_sampler_in_a_dataloader():
    data = [([1] * n, n % 2) for n in random_lengths(100)]
    sampler = BucketBatchSampler([len(ids) for ids, _ in data], batch_size=8, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_sampler=sampler, collate_fn=collate_batch)
    assert sum(len(labels) for _, labels, _ in loader) == 100


def test_sampler_checks_batch_size():
    with pytest.raises(ValueError):
        BucketBatchSampler([1, 2, 3], batch_size=0)


# --- masks, gathering, reversing, pooling ------------------------------------------------------


def batch_with_lengths(lengths, features=3, seed=0):
    torch.manual_seed(seed)
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), features)
    return x * padding_mask(lengths, x.size(1)).unsqueeze(2), lengths


def test_padding_mask():
    assert padding_mask(torch.tensor([1, 3, 2]), 4).tolist() == [
        [True, False, False, False], [True, True, True, False], [True, True, False, False]]


def test_last_real_output():
    x, lengths = batch_with_lengths([2, 5, 1, 5])
    expected = torch.stack([x[b, n - 1] for b, n in enumerate(lengths.tolist())])
    assert torch.equal(last_real_output(x, lengths), expected)


def test_reverse_within_length():
    x = torch.tensor([[1, 2, 3, 0, 0], [4, 5, 6, 7, 8], [9, 0, 0, 0, 0]])
    lengths = torch.tensor([3, 5, 1])
    assert reverse_within_length(x, lengths).tolist() == [[3, 2, 1, 0, 0], [8, 7, 6, 5, 4], [9, 0, 0, 0, 0]]
    y, lengths = batch_with_lengths([4, 2, 7])
    assert torch.equal(reverse_within_length(reverse_within_length(y, lengths), lengths), y)


def test_masked_mean_and_max_ignore_padding():
    x, lengths = batch_with_lengths([2, 6, 3])
    x = x + 100 * ~padding_mask(lengths, x.size(1)).unsqueeze(2)  # huge values in the padding
    for b, n in enumerate(lengths.tolist()):
        assert torch.allclose(masked_mean(x, lengths)[b], x[b, :n].mean(0))
        assert torch.equal(masked_max(x, lengths)[b], x[b, :n].amax(0))


# --- PaddedRNN == pack_padded_sequence ---------------------------------------------------------

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}


def run_packed(rnn, x, lengths):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    output, state = rnn(packed)
    h_n = state[0] if isinstance(state, tuple) else state
    output, _ = pad_packed_sequence(output, batch_first=True, total_length=x.size(1))
    return output, h_n


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_padded_rnn_equals_packing(cell, bidirectional, num_layers):
    torch.manual_seed(0)
    input_size, hidden = 5, 7
    reference = CELLS[cell](input_size, hidden, num_layers=num_layers, bidirectional=bidirectional,
                            batch_first=True)
    ours = PaddedRNN(cell, input_size, hidden, num_layers=num_layers, bidirectional=bidirectional)
    ours.copy_weights_from(reference)
    lengths = torch.tensor([6, 1, 9, 4, 9, 2])
    x = torch.randn(len(lengths), int(lengths.max()), input_size)
    # random weights for a loss that uses every output and every final state
    w_out = torch.randn(len(lengths), x.size(1), hidden * (2 if bidirectional else 1))
    w_h = torch.randn(num_layers * (2 if bidirectional else 1), len(lengths), hidden)

    results = []
    for model, run in ((reference, run_packed), (ours, lambda m, xx, ll: m(xx, ll))):
        xx = x.clone().requires_grad_()
        output, h_n = run(model, xx, lengths)
        ((output * w_out).sum() + (h_n * w_h).sum()).backward()
        results.append((output, h_n, xx.grad, model))

    (out_ref, h_ref, gx_ref, _), (out, h, gx, _) = results
    assert torch.allclose(out, out_ref, atol=1e-5), "outputs differ"
    assert torch.allclose(h, h_ref, atol=1e-5), "final states differ"
    assert torch.allclose(gx, gx_ref, atol=1e-5), "input gradients differ"
    directions = 2 if bidirectional else 1
    for layer in range(num_layers):
        for direction in range(directions):
            single = ours.layers[layer][direction]
            suffix = f"_l{layer}" + ("_reverse" if direction else "")
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                got = getattr(single, f"{name}_l0").grad
                expected = getattr(reference, name + suffix).grad
                assert torch.allclose(got, expected, atol=1e-5), f"gradient of {name + suffix} differs"


def test_padded_rnn_output_is_zero_at_padding_and_shapes():
    rnn = PaddedRNN("gru", 4, 6, num_layers=2, bidirectional=True)
    lengths = torch.tensor([3, 5])
    output, h_n = rnn(torch.randn(2, 5, 4), lengths)
    assert output.shape == (2, 5, 12) and h_n.shape == (4, 2, 6)
    assert torch.all(output[0, 3:] == 0)


def test_padded_rnn_ignores_what_is_in_the_padding():
    rnn = PaddedRNN("lstm", 4, 6, bidirectional=True)
    x, lengths = batch_with_lengths([3, 5, 2], features=4)
    noisy = x + 50 * ~padding_mask(lengths, x.size(1)).unsqueeze(2)
    out_a, h_a = rnn(x, lengths)
    out_b, h_b = rnn(noisy, lengths)
    assert torch.allclose(out_a, out_b) and torch.allclose(h_a, h_b)


def test_padded_rnn_rejects_unknown_cells():
    with pytest.raises(ValueError, match="cell must be one of"):
        PaddedRNN("transformer", 3, 3)


# --- the benchmark's two tutorial models ---------------------------------------------------------


def test_bench_models_compute_the_same_thing():
    from course_utils.bench import BucketedTutorialLSTM, PackedTutorialLSTM, assert_same_results

    torch.manual_seed(0)
    packed, bucketed = PackedTutorialLSTM(50), BucketedTutorialLSTM(50)
    batch = collate_batch([([random.Random(i).randint(2, 49) for _ in range(n)], i % 2)
                           for i, n in enumerate([7, 3, 12, 1, 5])])
    assert_same_results(packed, bucketed, [batch])  # copies the weights, then compares

    class ReadsThePadding(BucketedTutorialLSTM):  # takes the state after the LAST time step
        def forward(self, ids, lengths):
            output, _ = self.rnn(self.embedding(ids), torch.full_like(lengths, ids.size(1)))
            return self.fc2(torch.relu(self.fc1(output[:, -1]))).squeeze(1)

    with pytest.raises(AssertionError, match="outputs differ"):
        assert_same_results(packed, ReadsThePadding(50), [batch])


def test_bench_times_the_four_ways_on_the_same_reviews():
    from course_utils.bench import WAYS, same_reviews_two_ways

    lengths = [random.Random(i).randint(1, 500) for i in range(400)]
    random_batches, bucket_batches = same_reviews_two_ways(lengths, n_batches=6, batch_size=8, seed=0)
    assert len(random_batches) == len(bucket_batches) == 6
    assert sorted(sum(random_batches, [])) == sorted(sum(bucket_batches, []))  # the same 48 reviews

    def padding(batches):
        return sum(len(b) * max(lengths[i] for i in b) - sum(lengths[i] for i in b) for b in batches)
    assert padding(bucket_batches) < padding(random_batches) / 2
    assert sorted(WAYS) == sorted((b, layer) for b in ("random", "bucketed") for layer in ("packed", "PaddedRNN"))
    with pytest.raises(ValueError, match="needs 4,800 reviews"):
        same_reviews_two_ways(lengths, n_batches=600, batch_size=8, seed=0)


def test_bench_command_line_answers_bad_input_in_one_line(capsys):
    from course_utils.bench import main

    with pytest.raises(SystemExit):
        main(["batching", "--batches", "0"])
    error = capsys.readouterr().err
    assert "expected a positive integer" in error and len(error.strip().splitlines()) == 1
