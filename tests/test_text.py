"""Tests of course_utils.text: the tokenizer, the vocabulary and the cached tokenization."""

import pickle

import pytest

from course_utils import text
from course_utils.text import PAD_INDEX, PAD_TOKEN, UNK_INDEX, UNK_TOKEN, Vocab, tokenize, tokenize_all


# --- tokenize ---------------------------------------------------------------------------------

def test_docstring_example():
    assert tokenize("Great film!<br /><br />I'd watch it again :D") == [
        "great", "film", "i'd", "watch", "it", "again", ":D"]


@pytest.mark.parametrize("raw, expected", [
    ("one<br />two<br /><br />three", ["one", "two", "three"]),   # a tag separates words
    ("<i>Casablanca</i> is <b>great</b>", ["casablanca", "is", "great"]),
    ("<p>Spoiler <hr> below</p>", ["spoiler", "below"]),
    ("<<<sigh>", []),                                              # "<sigh>" is read as a tag
])
def test_html_tags_are_removed(raw, expected):
    assert tokenize(raw) == expected


def test_no_html_leftovers_in_tokens():
    tokens = tokenize("Line one.<br />Line two.<br/>Line <BR>three")
    assert "br" not in tokens and tokens == ["line", "one", "line", "two", "line", "three"]


@pytest.mark.parametrize("emoticon", [":)", ":(", ";)", ";(", ":-)", ";-(", ":D", ":-D", "=)", ":P", ":p", "=P"])
def test_emoticons_are_kept(emoticon):
    assert tokenize(f"I liked it {emoticon} really") == ["i", "liked", "it", emoticon, "really"]


def test_emoticons_keep_their_case_and_position():
    assert tokenize("Fun:) sad ;-( end :D") == ["fun", ":)", "sad", ";-(", "end", ":D"]


def test_no_emoticon_inside_words():
    # ":D" followed by letters is punctuation + a word, not an emoticon
    assert tokenize("Rating:Decent. Note:Poor.") == ["rating", "decent", "note", "poor"]
    assert tokenize(":d") == ["d"]  # a lower-case d is not a mouth


def test_lower_case_and_punctuation():
    assert tokenize("WOW!!! The BEST, (really) the best...") == ["wow", "the", "best", "really", "the", "best"]


def test_apostrophes_digits_and_hyphens():
    assert tokenize("Don't miss it: 10/10, 7.5 stars; well-known 'classic'") == [
        "don't", "miss", "it", "10", "10", "7", "5", "stars", "well", "known", "classic"]


def test_empty_and_blank_strings():
    assert tokenize("") == []
    assert tokenize("   \n\t ") == []
    assert tokenize("<br /><br />") == []
    assert tokenize("?!... --") == []


def test_non_ascii_words():
    assert tokenize("Amélie, CAFÉ naïve Ñandú — 東京物語 Ölçü") == [
        "amélie", "café", "naïve", "ñandú", "東京物語", "ölçü"]


def test_tokenize_rejects_non_strings():
    with pytest.raises(TypeError, match="expects a string"):
        tokenize(None)
    with pytest.raises(TypeError):
        tokenize(["a", "list"])


# --- Vocab ------------------------------------------------------------------------------------

TEXTS = [["the", "movie", "was", "good"], ["the", "plot", "was", "bad"], ["the", "end", ":)"]]


def test_specials_come_first():
    vocab = Vocab.build(TEXTS)
    assert (PAD_INDEX, UNK_INDEX) == (0, 1)
    assert vocab.itos[:2] == [PAD_TOKEN, UNK_TOKEN]
    assert vocab[PAD_TOKEN] == PAD_INDEX and vocab[UNK_TOKEN] == UNK_INDEX


def test_order_is_frequency_then_alphabet():
    vocab = Vocab.build(TEXTS)
    # "the" x3, "was" x2, then the rest (once each) alphabetically
    assert vocab.itos == ["<pad>", "<unk>", "the", "was", ":)", "bad", "end", "good", "movie", "plot"]
    assert len(vocab) == 10


def test_min_freq_cut_off():
    assert Vocab.build(TEXTS, min_freq=2).itos == ["<pad>", "<unk>", "the", "was"]
    assert Vocab.build(TEXTS, min_freq=3).itos == ["<pad>", "<unk>", "the"]
    assert Vocab.build(TEXTS, min_freq=4).itos == ["<pad>", "<unk>"]


def test_max_size_counts_the_specials():
    assert Vocab.build(TEXTS, max_size=4).itos == ["<pad>", "<unk>", "the", "was"]
    assert len(Vocab.build(TEXTS, max_size=2)) == 2
    assert len(Vocab.build(TEXTS, max_size=1000)) == 10  # no more tokens than there are
    assert Vocab.build(TEXTS, min_freq=2, max_size=3).itos == ["<pad>", "<unk>", "the"]


def test_bad_cut_offs_are_refused():
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(TEXTS, min_freq=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocab.build(TEXTS, max_size=1)


def test_specials_in_the_texts_are_not_counted_twice():
    vocab = Vocab.build([["<pad>", "<unk>", "word", "<unk>"]])
    assert vocab.itos == ["<pad>", "<unk>", "word"]


def test_unknown_tokens_map_to_unk():
    vocab = Vocab.build(TEXTS)
    assert vocab.encode(["the", "zebra", "movie", "ZEBRA"]) == [2, UNK_INDEX, 8, UNK_INDEX]
    assert vocab["zebra"] == UNK_INDEX
    assert "zebra" not in vocab and "movie" in vocab


def test_encode_decode_round_trip():
    vocab = Vocab.build(TEXTS)
    for tokens in TEXTS:
        assert vocab.decode(vocab.encode(tokens)) == tokens
    assert vocab.decode(vocab.encode(["the", "zebra"])) == ["the", UNK_TOKEN]
    assert vocab.encode([]) == [] and vocab.decode([]) == []


def test_decode_accepts_tensors_and_shows_padding():
    torch = pytest.importorskip("torch")
    vocab = Vocab.build(TEXTS)
    assert vocab.decode(torch.tensor([2, 3, 0, 0])) == ["the", "was", "<pad>", "<pad>"]


def test_build_is_deterministic_and_accepts_generators():
    a = Vocab.build(TEXTS)
    b = Vocab.build(iter([list(t) for t in TEXTS]))
    assert a.itos == b.itos and a.stoi == b.stoi


def test_constructor_checks():
    with pytest.raises(ValueError):
        Vocab(["a", "b"])
    with pytest.raises(ValueError):
        Vocab(["<pad>", "<unk>", "a", "a"])
    vocab = Vocab(["<pad>", "<unk>", "x"])
    assert vocab.stoi == {"<pad>": 0, "<unk>": 1, "x": 2} and repr(vocab) == "Vocab(size=3)"


# --- tokenize_all ------------------------------------------------------------------------------

REVIEWS = ["Good :)", "Bad<br />movie", "", "Ça va, très bien!"]


def test_tokenize_all_without_cache(tmp_path):
    assert tokenize_all(REVIEWS) == [tokenize(r) for r in REVIEWS]
    assert list(tmp_path.iterdir()) == []


def test_tokenize_all_writes_then_reads_the_cache(tmp_path, monkeypatch):
    first = tokenize_all(REVIEWS, cache_dir=tmp_path / "cache")
    assert first == [tokenize(r) for r in REVIEWS]
    files = list((tmp_path / "cache").iterdir())
    assert len(files) == 1 and files[0].suffix == ".pkl"  # no temporary file left behind

    def fail(_):
        raise AssertionError("tokenize() called although the cache holds the result")

    monkeypatch.setattr(text, "tokenize", fail)
    assert tokenize_all(REVIEWS, cache_dir=tmp_path / "cache") == first


def test_other_texts_or_tokenizer_version_get_another_file(tmp_path, monkeypatch):
    tokenize_all(REVIEWS, cache_dir=tmp_path)
    tokenize_all(REVIEWS[:2], cache_dir=tmp_path)
    monkeypatch.setattr(text, "TOKENIZER_VERSION", text.TOKENIZER_VERSION + 1)
    tokenize_all(REVIEWS, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("tokens-*.pkl"))) == 3


@pytest.mark.parametrize("content", [b"not a pickle", pickle.dumps(["too", "short"]), b""])
def test_a_broken_cache_file_is_rewritten(tmp_path, content):
    tokenize_all(REVIEWS, cache_dir=tmp_path)
    (cache_file,) = tmp_path.glob("tokens-*.pkl")
    cache_file.write_bytes(content)
    assert tokenize_all(REVIEWS, cache_dir=tmp_path) == [tokenize(r) for r in REVIEWS]
    with open(cache_file, "rb") as f:
        assert pickle.load(f) == [tokenize(r) for r in REVIEWS]


def test_equal_tokens_are_one_object_after_a_cache_round_trip(tmp_path):
    reviews = ["the film, the end", "The END"]
    for _ in range(2):  # written, then read back
        result = tokenize_all(reviews, cache_dir=tmp_path)
        assert result == [["the", "film", "the", "end"], ["the", "end"]]
        assert result[0][0] is result[0][2] is result[1][0]
        assert result[0][3] is result[1][1]
