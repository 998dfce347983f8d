"""Tests of course_utils.lm: streams, the language model, truncated BPTT, baselines, generation,
checkpoints, handing weights to a classifier, and the command line (on tiny data only)."""

import json
import math
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course_utils import lm
from course_utils.data import load_imdb, load_unlabeled, train_valid_split
from course_utils.lm import (
    EOS_TOKEN,
    LMCheckpointError,
    LMConfig,
    batchify,
    bigram_perplexity,
    build_lm,
    copy_into_classifier,
    detach_state,
    evaluate_lm,
    generate,
    lm_vocab,
    load_lm,
    make_stream,
    next_word_batch,
    next_word_probabilities,
    perplexity,
    prepare_lm_data,
    save_lm,
    tbptt_step,
    train_lm,
    unigram_perplexity,
)
from course_utils.models import build_model
from course_utils.text import PAD_INDEX, UNK_INDEX, Vocab, tokenize
from course_utils.training import save_checkpoint

WORDS = ["the", "movie", "film", "was", "good", "bad", "a", "plot", "actor", "and", "it", "great"]
VOCAB = lm_vocab(Vocab(["<pad>", "<unk>", *WORDS]))  # 15 ids, <eos> = 2
EOS = VOCAB.stoi[EOS_TOKEN]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These models are tiny: on a shared 2-core CPU, a second thread costs more than it gains (10x here)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def private_data_dir(tmp_path, monkeypatch):
    """Checkpoints and caches of these tests go to a temporary folder, never to the repository's data/."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)


def tiny_lm(output="full", seed=0, vocab_size=len(VOCAB), **options):
    torch.manual_seed(seed)
    options = {"embedding_dim": 8, "hidden_size": 16, "cutoffs": (5, 10), **options}
    return build_lm(vocab_size, output=output, **options)


# ------------------------------------------------------------------ streams


def test_lm_vocab_puts_eos_with_the_frequent_words_and_keeps_the_order():
    base = Vocab(["<pad>", "<unk>", "a", "b", "c"])
    vocab = lm_vocab(base)
    assert vocab.itos == ["<pad>", "<unk>", EOS_TOKEN, "a", "b", "c"]
    assert lm_vocab(base, max_size=4).itos == ["<pad>", "<unk>", EOS_TOKEN, "a"]
    with pytest.raises(ValueError, match="already"):
        lm_vocab(vocab)
    with pytest.raises(ValueError, match="max_size"):
        lm_vocab(base, max_size=3)


def test_eos_is_in_the_head_of_the_adaptive_softmax():
    model = build_lm(len(VOCAB), embedding_dim=8, hidden_size=16, cutoffs=(5, 10))
    head_words = model.adaptive.shortlist_size  # ids below it get a score of their own in the head
    assert EOS < head_words


def test_make_stream_puts_eos_after_each_review_and_reverses_within_reviews():
    reviews = [["the", "movie", "was"], ["good"], ["zzz", "film"]]
    the, movie, was, good, film = (VOCAB.stoi[w] for w in ("the", "movie", "was", "good", "film"))
    forward = make_stream(reviews, VOCAB)
    assert forward.dtype == torch.long and forward.dim() == 1
    assert forward.tolist() == [the, movie, was, EOS, good, EOS, UNK_INDEX, film, EOS]
    assert EOS == 2
    backward = make_stream(reviews, VOCAB, backward=True)
    assert backward.tolist() == [was, movie, the, EOS, good, EOS, film, UNK_INDEX, EOS]


@pytest.mark.parametrize("bad, message", [([], "no reviews"), (["the movie"], "token lists")])
def test_make_stream_refuses_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        make_stream(bad, VOCAB)


def test_make_stream_needs_an_eos_in_the_vocabulary():
    with pytest.raises(ValueError, match="lm_vocab"):
        make_stream([["the"]], Vocab(["<pad>", "<unk>", "the"]))


def test_batchify_cuts_the_stream_into_contiguous_rows():
    stream = torch.arange(23)
    data = batchify(stream, 4)
    assert data.shape == (4, 5)  # 3 ids of remainder dropped
    for row in range(4):
        assert data[row].tolist() == list(range(5 * row, 5 * row + 5))
    with pytest.raises(ValueError, match="too short"):
        batchify(torch.arange(7), 4)
    with pytest.raises(ValueError, match="1-D"):
        batchify(data, 2)


def test_next_word_batch_shifts_targets_by_one_word():
    data = batchify(torch.arange(40), 2)  # rows 0..19 and 20..39
    inputs, targets = next_word_batch(data, 4, 6)
    assert inputs.shape == targets.shape == (2, 6)
    assert inputs[0].tolist() == [4, 5, 6, 7, 8, 9]
    assert torch.equal(targets[:, :-1], inputs[:, 1:])
    assert targets[:, -1].tolist() == [10, 30]  # the word after the chunk
    last_inputs, last_targets = next_word_batch(data, 16, 6)  # only 3 words left that have a next word
    assert last_inputs[0].tolist() == [16, 17, 18] and last_targets[0].tolist() == [17, 18, 19]
    predicted = torch.cat([next_word_batch(data, s, 6)[1] for s in range(0, 19, 6)], dim=1)
    assert torch.equal(predicted, data[:, 1:])  # every word but the first of a row, exactly once
    with pytest.raises(ValueError, match="start"):
        next_word_batch(data, 19, 6)


# ------------------------------------------------------------------ the model


def test_config_is_validated_and_cutoffs_are_clipped():
    with pytest.raises(ValueError, match="output"):
        LMConfig(vocab_size=100, output="softmax")
    with pytest.raises(ValueError, match="dropout"):
        LMConfig(vocab_size=100, dropout=1.0)
    with pytest.raises(ValueError, match="cutoffs"):
        LMConfig(vocab_size=100, cutoffs=(50, 20))
    with pytest.raises(ValueError, match="hidden_size"):
        LMConfig(vocab_size=100_000, hidden_size=8)  # 2 clusters: the rarest gets 8 // 16 = 0 features
    config = LMConfig(vocab_size=30)
    assert config.clipped_cutoffs() == [29]
    assert LMConfig(**config.to_dict()) == config


@pytest.mark.parametrize("output", ["full", "tied", "adaptive"])
def test_outputs_are_distributions_and_loss_is_their_nll(output):
    model = tiny_lm(output).eval()
    ids = torch.randint(1, len(VOCAB), (3, 7))
    targets = torch.randint(1, len(VOCAB), (3, 7))
    hidden, (h, c) = model(ids)
    assert hidden.shape == (3, 7, 16) and h.shape == c.shape == (1, 3, 16)
    log_probs = model.log_probs(hidden)
    assert log_probs.shape == (3, 7, len(VOCAB))
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(3, 7), atol=1e-5)
    loss, _ = model.loss(ids, targets)
    nll = -log_probs.gather(-1, targets.unsqueeze(-1)).mean()
    assert torch.allclose(loss, nll, atol=1e-5)


def test_tied_output_shares_the_embedding_matrix():
    tied, full = tiny_lm("tied"), tiny_lm("full")
    assert tied.decoder.weight is tied.embedding.weight
    assert tied.projection is not None and tied.projection.out_features == 8  # hidden 16 -> embedding 8
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(full) - count(tied) == 16 * len(VOCAB) - (16 * 8 + 8)
    assert tiny_lm("tied", hidden_size=8).projection is None


def test_untrained_perplexity_is_near_the_vocabulary_size():
    torch.manual_seed(1)
    data = batchify(torch.randint(1, len(VOCAB), (2000,)), 10)
    for output in ("full", "tied"):
        ppl = perplexity(evaluate_lm(tiny_lm(output), data, bptt=20))
        assert 0.85 * len(VOCAB) < ppl < 1.2 * len(VOCAB), (output, ppl)


# ------------------------------------------------------------------ truncated BPTT


def chunks(n=3):
    data = batchify(torch.randint(1, len(VOCAB), (4 * 10 * n + 4,), generator=torch.Generator().manual_seed(0)), 4)
    return [next_word_batch(data, s, 10) for s in range(0, 10 * n, 10)]


def test_tbptt_step_detaches_the_state_it_is_given():
    model = tiny_lm()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    (x1, y1), (x2, y2), (x3, y3) = chunks()
    loss, state = tbptt_step(model, x1, y1, None, optimizer)
    assert isinstance(loss, float)
    assert state[0].grad_fn is not None  # returned still attached ...
    loss, state = tbptt_step(model, x2, y2, state, optimizer)  # ... and detached inside the next step
    h0 = torch.zeros(1, 4, 16, requires_grad=True)
    tbptt_step(model, x3, y3, (h0, torch.zeros(1, 4, 16)), optimizer)
    assert h0.grad is None  # backward() stopped at the start of the chunk
    assert detach_state(state)[0].grad_fn is None and detach_state(None) is None


def test_without_detach_the_second_step_fails(monkeypatch):
    """The test above can fail: without the detach, backward() goes back into the freed graph."""
    monkeypatch.setattr(lm, "detach_state", lambda state: state)
    model = tiny_lm()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    (x1, y1), (x2, y2), _ = chunks()
    _, state = tbptt_step(model, x1, y1, None, optimizer)
    with pytest.raises(RuntimeError):
        tbptt_step(model, x2, y2, state, optimizer)
    h0 = torch.zeros(1, 4, 16, requires_grad=True)
    tbptt_step(model, x1, y1, (h0, torch.zeros(1, 4, 16)), optimizer)
    assert h0.grad is not None  # the gradient reached the state of the chunk before


def test_evaluate_lm_carries_the_state_across_chunks():
    """With the state carried, cutting the rows into chunks changes nothing."""
    model = tiny_lm("adaptive")
    data = batchify(torch.randint(1, len(VOCAB), (300,), generator=torch.Generator().manual_seed(0)), 3)
    whole = evaluate_lm(model, data, bptt=1000)
    for bptt in (1, 7, 64):
        assert evaluate_lm(model, data, bptt=bptt) == pytest.approx(whole, rel=1e-5)


def test_train_lm_learns_a_pattern_that_needs_the_carried_state():
    """After "a" comes "b" or "c", alternately: only the word before "a" tells which.

    Evaluated with bptt=1, each chunk is one word, so only the carried state remembers it.
    """
    a, b, c = VOCAB.stoi["the"], VOCAB.stoi["movie"], VOCAB.stoi["film"]
    data = batchify(torch.tensor([a, b, a, c] * 200), 8)
    model = tiny_lm("full")
    before = perplexity(evaluate_lm(model, data, bptt=1))
    history = train_lm(model, data, data, bptt=8, lr=0.03, epochs=5, log=None)
    after = perplexity(evaluate_lm(model, data, bptt=1))
    # Forgetting the word before "a" would leave a coin flip after every "a": perplexity sqrt(2) = 1.41.
    assert before > 8 and after < 1.15, (before, after)
    assert history.epochs == 5 and len(history.valid_loss) == 5 and not history.stopped_early
    assert history.tokens == 5 * 8 * 99 and history.tokens_per_second > 0
    assert perplexity(history.valid_loss[-1]) == pytest.approx(after, rel=1e-4)


def test_train_lm_carries_the_state_and_resets_it_each_epoch(monkeypatch):
    calls = []

    def recording_step(model, inputs, targets, state, optimizer, clip=0.25):
        loss, new_state = tbptt_step(model, inputs, targets, state, optimizer, clip)  # the real one
        calls.append((state, new_state))
        return loss, new_state

    monkeypatch.setattr(lm, "tbptt_step", recording_step)
    data = batchify(torch.randint(1, len(VOCAB), (200,)), 4)  # 50 steps: chunks of 10, 10, 10, 10, 9
    train_lm(tiny_lm(), data, bptt=10, epochs=2, log=None)
    assert len(calls) == 10
    for i, (state_in, _) in enumerate(calls):
        if i % 5 == 0:
            assert state_in is None  # each epoch starts from zeros
        else:
            assert state_in is calls[i - 1][1]  # the state the chunk before returned


def test_train_lm_stops_at_max_seconds_and_calls_on_time():
    model = tiny_lm("adaptive")
    data = batchify(torch.randint(1, len(VOCAB), (4000,)), 4)
    times = []
    history = train_lm(model, data, data[:, :50], bptt=5, epochs=None, max_seconds=0.3, log=None,
                       on_time=lambda m, seconds: times.append(seconds))
    assert history.stopped_early and history.seconds >= 0.3
    assert times == sorted(times) and times[-1] == history.seconds
    assert len(history.valid_loss) == 1 and history.train_loss
    with pytest.raises(ValueError, match="never stop"):
        train_lm(model, data, epochs=None)


# ------------------------------------------------------------------ baselines


def test_a_uniform_unigram_has_the_vocabulary_size_as_perplexity():
    train = torch.arange(10).repeat(5)  # every id equally often
    evaluated = torch.tensor([3, 1, 4, 1, 5, 9, 2, 6])
    assert unigram_perplexity(train, evaluated, 10) == pytest.approx(10)
    assert unigram_perplexity(train, evaluated, 10, smoothing=100) == pytest.approx(10)


def test_unigram_and_bigram_exact_values_on_toy_streams():
    # unigram, add-1: counts [0, 0, 2, 1] -> P = [1, 1, 3, 2] / 7; scored words: 3, 2
    assert unigram_perplexity(torch.tensor([2, 2, 3]), torch.tensor([2, 3, 2]), 4) == pytest.approx(7 / math.sqrt(6))
    train = torch.tensor([2, 3, 2, 3, 2])  # P_unigram = [1, 1, 4, 3] / 9; 2 -> 3 twice, 3 -> 2 twice
    # P(3 | 2) = 0.5 * 2/2 + 0.5 * 3/9 = 2/3;  P(1 | 3) = 0.5 * 0/2 + 0.5 * 1/9 = 1/18
    assert bigram_perplexity(train, torch.tensor([2, 3, 1]), 4, mix=0.5) == pytest.approx(math.sqrt(27))
    # 1 never comes before anything in training: P(2 | 1) = P_unigram(2) = 4/9
    assert bigram_perplexity(train, torch.tensor([1, 2]), 4, mix=0.5) == pytest.approx(9 / 4)
    assert bigram_perplexity(train, train, 4, mix=1.0) == pytest.approx(1.0)  # a certain, right model
    assert bigram_perplexity(train, torch.tensor([2, 3, 1]), 4, mix=0.0) == pytest.approx(
        unigram_perplexity(train, torch.tensor([2, 3, 1]), 4))


def test_baselines_refuse_bad_streams():
    with pytest.raises(ValueError, match="outside"):
        unigram_perplexity(torch.tensor([1, 2, 7]), torch.tensor([1, 2]), 5)
    with pytest.raises(ValueError, match="1-D"):
        bigram_perplexity(torch.ones(2, 3, dtype=torch.long), torch.tensor([1, 2]), 5)
    with pytest.raises(ValueError, match="smoothing"):
        unigram_perplexity(torch.tensor([1, 2]), torch.tensor([1, 2]), 5, smoothing=0)


# ------------------------------------------------------------------ generation


def test_temperature_divides_before_the_softmax_and_top_k_renormalises():
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0])
    assert torch.allclose(next_word_probabilities(logits, 0.5), torch.softmax(logits / 0.5, -1))
    log_probs = torch.log_softmax(logits, -1)  # the same distribution as the logits
    assert torch.allclose(next_word_probabilities(log_probs, 2.0), next_word_probabilities(logits, 2.0))
    top2 = next_word_probabilities(logits, top_k=2)
    assert top2[2:].tolist() == [0.0, 0.0] and top2.sum().item() == pytest.approx(1.0)
    assert top2[0].item() == pytest.approx(math.e / (math.e + 1))
    assert next_word_probabilities(logits, 0.01)[0].item() > 0.999  # cold: nearly greedy
    flat = next_word_probabilities(logits, 100.0)
    assert (flat - 0.25).abs().max() < 0.01  # hot: nearly uniform


@pytest.mark.parametrize("options, message", [({"temperature": 0}, "temperature"), ({"temperature": -1.0}, "temperature"),
                                              ({"top_k": 0}, "top_k")])
def test_bad_sampling_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        next_word_probabilities(torch.zeros(5), **options)
    with pytest.raises(ValueError, match=message):
        generate(tiny_lm(), VOCAB, "the movie", **options)


def chatty_lm():
    """An untrained model that rarely ends a review, so that its texts are long enough to compare."""
    model = tiny_lm()
    with torch.no_grad():
        model.decoder.bias[EOS] = -10.0
    return model


def test_generation_is_reproducible_and_greedy_equals_top_1():
    model = chatty_lm()
    first = generate(model, VOCAB, "the movie was", words=20, seed=1)
    assert first == generate(model, VOCAB, "the movie was", words=20, seed=1)
    assert first != generate(model, VOCAB, "the movie was", words=20, seed=2)
    assert len(first.split()) == 20
    greedy = generate(model, VOCAB, "the movie was", words=20, greedy=True)
    assert greedy == generate(model, VOCAB, "the movie was", words=20, top_k=1, seed=5)
    assert greedy == generate(model, VOCAB, "the movie was", words=20, temperature=1e-4, seed=5)
    assert model.training  # generate() runs in eval mode and leaves the model in the mode it found


def test_generation_never_emits_pad_or_unk_and_stops_at_eos():
    model = chatty_lm()
    with torch.no_grad():
        model.decoder.bias[[PAD_INDEX, UNK_INDEX]] = 20.0  # the model now loves <pad> and <unk>
    text = generate(model, VOCAB, "the movie", words=15, seed=0)
    assert len(text.split()) == 15 and "<pad>" not in text and "<unk>" not in text
    assert "<unk>" in generate(model, VOCAB, "the movie", words=15, ban_unknown=False)
    with torch.no_grad():
        model.decoder.bias[EOS] = 40.0
    assert generate(model, VOCAB, "the movie", words=15) == ""


@pytest.mark.parametrize("prompt, message", [("", "empty"), ("  \n ", "empty"), ("zzz qqq", "vocabulary"), ("!!!", "vocabulary")])
def test_bad_prompts_are_refused(prompt, message):
    with pytest.raises(ValueError, match=message):
        generate(tiny_lm(), VOCAB, prompt)


def test_generate_needs_the_language_model_vocabulary():
    with pytest.raises(ValueError, match="lm_vocab"):
        generate(tiny_lm(vocab_size=14), Vocab(["<pad>", "<unk>", *WORDS]), "the movie")


def test_show_end_marks_a_review_the_model_ended():
    model = chatty_lm()
    assert not generate(model, VOCAB, "the movie", words=15, show_end=True).endswith(EOS_TOKEN)  # cut at 15 words
    with torch.no_grad():
        model.decoder.bias[EOS] = 40.0
    assert generate(model, VOCAB, "the movie", words=15, show_end=True) == EOS_TOKEN  # ended at once


# ------------------------------------------------------------------ checkpoints and classifiers


@pytest.mark.parametrize("output", ["tied", "adaptive"])
def test_save_and_load_give_the_same_model(tmp_path, output):
    model = tiny_lm(output, num_layers=2, dropout=0.1).eval()
    path = save_lm(tmp_path / "sub" / "lm.pt", model, VOCAB, extra={"pretraining_seconds": 12.5})
    loaded, vocab, checkpoint = load_lm(path)
    assert vocab.itos == VOCAB.itos and checkpoint["pretraining_seconds"] == 12.5
    assert loaded.config == model.config and not loaded.training
    ids = torch.randint(1, len(VOCAB), (2, 6))
    assert torch.equal(loaded.log_probs(loaded(ids)[0]), model.log_probs(model(ids)[0]))
    assert generate(loaded, vocab, "the film", seed=3) == generate(model, VOCAB, "the film", seed=3)
    with pytest.raises(ValueError, match="extra"):
        save_lm(path, model, VOCAB, extra={"vocab": []})


def test_load_lm_explains_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(LMCheckpointError, match="python -m course_utils.lm train"):
        load_lm(tmp_path / "none.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(LMCheckpointError, match="cannot be read"):
        load_lm(corrupt)
    classifier = save_checkpoint(tmp_path / "classifier.pt", build_model(14, embedding_dim=8, hidden_size=16))
    with pytest.raises(LMCheckpointError, match="not a language-model checkpoint"):
        load_lm(classifier)


CLASSIFIER_VOCAB = Vocab(["<pad>", "<unk>", *WORDS])  # the same words, ids one lower than VOCAB's


def test_copy_into_classifier_copies_embedding_rows_word_by_word_and_the_first_lstm_layer():
    forward_lm, backward_lm = tiny_lm("tied", seed=1), tiny_lm("adaptive", seed=2)
    classifier = build_model(len(CLASSIFIER_VOCAB), embedding_dim=8, hidden_size=16, bidirectional=True, num_layers=2)
    upper = classifier.rnn.layers[1][0].weight_ih_l0.clone()
    copy_into_classifier(forward_lm, classifier, VOCAB, CLASSIFIER_VOCAB, 0)
    copy_into_classifier(backward_lm, classifier, VOCAB, CLASSIFIER_VOCAB, direction=1)
    for word in WORDS:  # the last copy wins
        assert torch.equal(classifier.embedding.weight[CLASSIFIER_VOCAB.stoi[word]],
                           backward_lm.embedding.weight[VOCAB.stoi[word]]), word
    assert torch.equal(classifier.embedding.weight[UNK_INDEX], backward_lm.embedding.weight[UNK_INDEX])
    assert classifier.embedding.weight[PAD_INDEX].abs().sum() == 0
    for direction, source in ((0, forward_lm), (1, backward_lm)):
        target = classifier.rnn.layers[0][direction]
        for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
            assert torch.equal(getattr(target, name), getattr(source.rnn, name)), (direction, name)
    assert torch.equal(classifier.rnn.layers[1][0].weight_ih_l0, upper)  # layer 1 untouched


def test_copy_into_classifier_can_copy_the_embedding_alone_and_gives_unknown_words_the_unk_row():
    small = lm_vocab(CLASSIFIER_VOCAB, max_size=6)  # <pad> <unk> <eos> the movie film
    model = tiny_lm(vocab_size=len(small), cutoffs=(3, 4))
    classifier = build_model(len(CLASSIFIER_VOCAB), embedding_dim=8, hidden_size=4)  # another LSTM size: no LSTM copy
    lstm = classifier.rnn.layers[0][0].weight_hh_l0.clone()
    copy_into_classifier(model, classifier, small, CLASSIFIER_VOCAB, rnn=False)
    assert torch.equal(classifier.rnn.layers[0][0].weight_hh_l0, lstm)
    assert torch.equal(classifier.embedding.weight[CLASSIFIER_VOCAB.stoi["film"]], model.embedding.weight[small.stoi["film"]])
    for word in ("great", "plot"):  # not in the language model's vocabulary: read as <unk>
        assert torch.equal(classifier.embedding.weight[CLASSIFIER_VOCAB.stoi[word]], model.embedding.weight[UNK_INDEX])


@pytest.mark.parametrize("options, direction, message", [
    ({"hidden_size": 32}, 0, "Hidden sizes"),
    ({"embedding_dim": 4}, 0, "Embedding sizes"),
    ({"cell": "gru"}, 0, "lstm"),
    ({}, 1, "not bidirectional"),
    ({"vocab_size": 20}, 0, "classifier_vocabulary has 14 words"),
])
def test_copy_into_classifier_names_what_does_not_match(options, direction, message):
    settings = {"vocab_size": 14, "embedding_dim": 8, "hidden_size": 16, **options}
    classifier = build_model(settings.pop("vocab_size"), **settings)
    with pytest.raises(ValueError, match=message):
        copy_into_classifier(tiny_lm(), classifier, VOCAB, CLASSIFIER_VOCAB, direction)


def test_copy_into_classifier_checks_the_language_model_vocabulary():
    classifier = build_model(len(CLASSIFIER_VOCAB), embedding_dim=8, hidden_size=16)
    with pytest.raises(ValueError, match="not the language model's"):
        copy_into_classifier(tiny_lm(), classifier, CLASSIFIER_VOCAB, CLASSIFIER_VOCAB)
    with pytest.raises(ValueError, match="not the language model's"):
        copy_into_classifier(tiny_lm(vocab_size=20), classifier, VOCAB, CLASSIFIER_VOCAB)


# ------------------------------------------------------------------ IMDb text and the command line

GOOD, BAD = ["great", "wonderful", "loved"], ["awful", "boring", "hated"]
NEUTRAL = ["the", "movie", "film", "plot", "actor", "was", "a", "and", "it"]


def write_tiny_imdb(root: Path, per_folder: int = 15, unlabeled: int = 30) -> Path:
    """An aclImdb-shaped folder; every test review holds the word "testonly", no training review does."""
    rng = random.Random(0)
    folder = root / "aclImdb"

    def review(words):
        tokens = rng.choices(NEUTRAL, k=rng.randint(4, 10)) + rng.choices(words, k=2)
        rng.shuffle(tokens)
        return " ".join(tokens) + ".<br />"

    for split in ("train", "test"):
        for name, words in (("pos", GOOD), ("neg", BAD)):
            directory = folder / split / name
            directory.mkdir(parents=True)
            for i in range(per_folder):
                rating = rng.choice([7, 8, 9, 10] if name == "pos" else [1, 2, 3, 4])
                text = review(words) + (" testonly" * 6 if split == "test" else "")
                (directory / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    (folder / "train" / "unsup").mkdir()
    for i in range(unlabeled):
        (folder / "train" / "unsup" / f"{i}_0.txt").write_text(review(GOOD + BAD), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def tiny_imdb(tmp_path_factory):
    return write_tiny_imdb(tmp_path_factory.mktemp("imdb"))


def test_prepare_lm_data_uses_the_classifier_vocabulary_and_never_the_test_split(tiny_imdb):
    from course_utils.train import prepare_imdb

    data = prepare_lm_data(folder=tiny_imdb)
    assert data.vocab.itos == lm_vocab(prepare_imdb(folder=tiny_imdb).vocab).itos
    train, valid = train_valid_split(load_imdb("train", folder=tiny_imdb), n_valid=6)
    texts = [text for text, _ in train] + load_unlabeled(folder=tiny_imdb)
    assert data.train_reviews == len(texts) == 24 + 30
    assert data.train.numel() == sum(len(tokenize(t)) + 1 for t in texts)  # test reviews would add words
    assert data.valid.numel() == sum(len(tokenize(t)) + 1 for t, _ in valid)
    assert (data.train == data.vocab.stoi[EOS_TOKEN]).sum() == 54
    backward = prepare_lm_data(folder=tiny_imdb, backward=True)
    assert sorted(backward.train.tolist()) == sorted(data.train.tolist()) and not torch.equal(backward.train, data.train)


def run_main(capsys, *args):
    code = lm.main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_trains_resumes_and_generates(capsys, tiny_imdb, tmp_path):
    checkpoint = tmp_path / "lm.pt"
    code, out, err = run_main(capsys, "train", "--imdb-folder", tiny_imdb, "--minutes", "0.01", "--json",
                              "--no-progress", "--hidden-size", "16", "--embedding-dim", "8", "--checkpoint", checkpoint)
    assert code == 0, err
    result = json.loads(out)  # stdout is exactly one JSON object
    for key in ("train_perplexity", "valid_perplexity", "tokens", "seconds", "tokens_per_second", "checkpoint"):
        assert key in result, key
    assert result["checkpoint"] == str(checkpoint) and result["tokens"] > 0
    first_seconds = load_lm(checkpoint)[2]["pretraining_seconds"]
    assert first_seconds == pytest.approx(result["seconds"], abs=0.01) and first_seconds >= 0.6

    code, out, err = run_main(capsys, "train", "--imdb-folder", tiny_imdb, "--minutes", "0.01", "--json",
                              "--no-progress", "--resume", "--checkpoint", checkpoint)
    assert code == 0, err
    model, _, saved = load_lm(checkpoint)
    assert saved["pretraining_seconds"] == pytest.approx(first_seconds + json.loads(out)["seconds"], abs=0.01)
    assert model.config.hidden_size == 16  # the resumed model, not a new default one

    outputs = []
    for seed in range(10):  # tiny reviews are short: a draw may end the review (<eos>) at once
        code, out, err = run_main(capsys, "generate", "the movie", "--words", "5", "--seed", seed,
                                  "--checkpoint", checkpoint)
        assert code == 0 and err == "" and out.startswith("the movie") and out.count("\n") == 1
        assert len(out.split()) <= 2 + 5 and "<" not in out
        outputs.append(out)
    assert max(len(out.split()) for out in outputs) > 2  # some seed wrote words
    again = run_main(capsys, "generate", "the movie", "--words", "5", "--seed", "9", "--checkpoint", checkpoint)[1]
    assert again == outputs[9]


def test_cli_resume_refuses_other_data(capsys, tiny_imdb, tmp_path):
    checkpoint = save_lm(tmp_path / "lm.pt", tiny_lm(), VOCAB)
    code, out, err = run_main(capsys, "train", "--imdb-folder", tiny_imdb, "--minutes", "0.01", "--resume",
                              "--checkpoint", checkpoint)
    assert code != 0 and err.count("\n") == 1 and "vocabulary" in err


def one_error_line(err: str) -> str:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_cli_errors_are_one_line(capsys, tmp_path):
    missing = tmp_path / "missing.pt"
    code, _, err = run_main(capsys, "generate", "the movie", "--checkpoint", missing)
    assert code != 0 and str(missing) in one_error_line(err) and "python -m course_utils.lm train" in err
    path = save_lm(tmp_path / "lm.pt", tiny_lm(), VOCAB)
    code, _, err = run_main(capsys, "generate", "  ", "--checkpoint", path)
    assert code != 0 and "empty" in one_error_line(err)
    for bad in (["--temperature", "0"], ["--temperature", "hot"], ["--top-k", "0"]):
        with pytest.raises(SystemExit) as exit_info:
            lm.main(["generate", "the movie", "--checkpoint", str(path), *bad])
        assert exit_info.value.code != 0 and bad[0] in one_error_line(capsys.readouterr().err)
    code, _, err = run_main(capsys, "train", "--imdb-folder", tmp_path, "--minutes", "0.01")
    assert code != 0 and "not an aclImdb folder" in one_error_line(err)


def test_cli_in_a_real_process_prints_no_traceback(tmp_path):
    missing = tmp_path / "missing.pt"
    done = subprocess.run([sys.executable, "-m", "course_utils.lm", "generate", "the movie", "--checkpoint", str(missing)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode != 0 and done.stdout == ""
    assert str(missing) in one_error_line(done.stderr)


def test_a_recipe_trains_a_fixed_number_of_words_and_load_or_train_reuses_only_its_own_model(tiny_imdb, tmp_path):
    data = prepare_lm_data(folder=tiny_imdb)
    recipe = lm.LMRecipe(embedding_dim=8, hidden_size=16, batch_size=4, bptt=8, lr=1e-2, schedule="onecycle", words=200)
    rows = recipe.rows(data.train)
    assert rows.shape == (4, 200 // 4 + 1) and torch.equal(rows[0], data.train[: rows.size(1)])
    path = tmp_path / "lm.pt"
    model, info = lm.load_or_train(recipe, data, path, log=None)
    assert info["trained_now"] and info["pretraining_tokens"] == 200 and path.is_file()
    again, info = lm.load_or_train(recipe, data, path, log=None)
    assert not info["trained_now"] and info["recipe"]["words"] == 200
    assert torch.equal(again.rnn.weight_hh_l0, model.rnn.weight_hh_l0)
    other = lm.LMRecipe(**{**recipe.__dict__, "words": 100})
    assert lm.load_or_train(other, data, path, log=None)[1]["trained_now"]  # another recipe: trained over
    backward = prepare_lm_data(folder=tiny_imdb, backward=True)
    assert lm.load_or_train(other, backward, path, log=None)[1]["trained_now"]  # another direction: trained over
    assert lm.load_lm(path)[2]["backward"] is True


def test_train_lm_follows_a_one_cycle_schedule_over_all_its_chunks(monkeypatch):
    seen = []
    real_step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        seen.append(self.param_groups[0]["lr"])
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    data = batchify(torch.randint(3, len(VOCAB), (400,)), 4)  # 100 steps per row: 13 chunks of 8
    lm.train_lm(tiny_lm(), data, bptt=8, lr=1e-2, epochs=2, schedule="onecycle", log=None)
    assert len(seen) == 2 * 13
    peak = seen.index(max(seen))
    assert max(seen) == pytest.approx(1e-2, rel=1e-3) and 0 < peak < len(seen) // 4   # a short warm-up
    assert seen[-1] < 1e-2 / 100 and seen[0] < 1e-2 / 10                               # then down to nearly zero
    with pytest.raises(ValueError, match="epochs"):
        lm.train_lm(tiny_lm(), data, epochs=None, max_seconds=1, schedule="onecycle", log=None)
