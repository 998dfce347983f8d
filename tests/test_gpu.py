"""Everything of the course on a GPU, for a few batches (issue 21). Skipped without CUDA.

    pytest tests/test_gpu.py                          # on a machine with an NVIDIA GPU
    COURSE_TEST_DEVICE=cpu pytest tests/test_gpu.py   # the same tests on the CPU (to check the tests themselves)

What runs on the device:

* every recipe of ``course_utils.train`` (lessons 5-10), trained for one epoch on a tiny IMDb-shaped
  folder, tested, saved, loaded back as a ``Predictor`` and asked for a prediction word by word;
* lesson 4's claim that ``PaddedRNN`` equals a packed ``nn.LSTM``, in full float32
  (``training.full_float32``: cuDNN uses TF32 by default on Ampere and newer GPUs);
* lesson 7's date translator and lesson 8's language model, trained for a few batches and used;
* lesson 10's parallel scan (equal to the loop) and its Transformer encoder;
* every exercise notebook, solutions and test cells with their hidden tests, with its ``device``
  set to the device under test: so every checker runs with ``device="cuda"``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course_utils import lm, seq2seq
from course_utils.batching import PaddedRNN
from course_utils.modern import MinGRU, PaddedTransformer, linear_recurrence_loop, log_space_scan
from course_utils.predict import load_predictor
from course_utils.train import RECIPES, prepare_imdb, train_model
from course_utils.training import full_float32
from test_train_cli import write_tiny_imdb, write_unlabeled

ROOT = Path(__file__).resolve().parent.parent
DEVICE = torch.device(os.environ.get("COURSE_TEST_DEVICE", "cuda"))
SETUP_LINE = 'device = torch.device("cuda" if torch.cuda.is_available() else "cpu")'

pytestmark = pytest.mark.skipif(
    DEVICE.type == "cuda" and not torch.cuda.is_available(),
    reason="no CUDA GPU (COURSE_TEST_DEVICE=cpu runs these tests on the CPU)")


def on_device(module: nn.Module) -> bool:
    return all(p.device.type == DEVICE.type for p in module.parameters())


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    folder = write_tiny_imdb(tmp_path_factory.mktemp("imdb"), star_words=True)
    write_unlabeled(folder)
    return folder


@pytest.fixture
def private_data_dir(tmp_path, monkeypatch):
    """Checkpoints go to a temporary folder, never to the repository's data/."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("IMDB_ARCHIVE", raising=False)


# --- lessons 5-10: every recipe ------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_trains_tests_and_predicts_on_the_device(name, tiny_folder, private_data_dir, monkeypatch):
    recipe = RECIPES[name]
    if recipe.pretrain_minutes is not None:
        monkeypatch.setattr(recipe, "pretrain_minutes", 0.02)  # about a second of language-model pretraining
    data = prepare_imdb(folder=tiny_folder, target=recipe.target)
    result = train_model(name, data, epochs=1, device=DEVICE, progress=False, log=None, folder=tiny_folder)
    assert result.device == str(DEVICE) and on_device(result.model)
    assert math.isfinite(result.test_loss) and 0 <= result.test_acc <= 1
    assert result.test_probabilities.shape[0] == len(data.test)
    if recipe.target == "polarity":
        predictor = load_predictor(result.checkpoint, DEVICE)
        assert on_device(predictor.model)
        assert 0 <= predictor("a wonderful film, I loved it") <= 1
        words, probabilities = predictor.by_word("the plot was dull but the actor was superb")
        assert len(words) == len(probabilities) > 0


# --- lesson 4: PaddedRNN equals packing, on the device --------------------------------------------------
def test_padded_rnn_equals_the_packed_lstm_on_the_device_in_full_float32():
    torch.manual_seed(0)
    lstm = nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True).to(DEVICE)
    padded = PaddedRNN("lstm", 5, 7, num_layers=2, bidirectional=True).to(DEVICE)
    padded.copy_weights_from(lstm)
    x, lengths = torch.randn(4, 9, 5, device=DEVICE), torch.tensor([9, 2, 6, 4])
    with full_float32():
        packed, (h_n, _) = lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
        expected, _ = pad_packed_sequence(packed, batch_first=True, total_length=9)
        output, final = padded(x, lengths)
    torch.testing.assert_close(output, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(final, h_n, rtol=1e-5, atol=1e-5)


# --- lesson 7: the date translator -------------------------------------------------------------------------
def test_the_date_translator_trains_and_translates_on_the_device():
    torch.manual_seed(0)
    dates = seq2seq.date_data(n_train=128, n_valid=16, n_test=16, n_long=8)
    vocab = seq2seq.CharVocab()
    model = seq2seq.Seq2Seq(len(vocab), embedding_dim=8, hidden_size=16).to(DEVICE)
    losses = seq2seq.train_seq2seq(model, dates.train, vocab, epochs=1, batch_size=32, log=None)
    assert on_device(model) and math.isfinite(losses[0])
    assert 0 <= seq2seq.exact_match(model, dates.test, vocab) <= 1
    assert isinstance(seq2seq.translate(model, "3 nov 2026", vocab), str)


# --- lesson 8: the language model ---------------------------------------------------------------------------
def test_the_language_model_trains_evaluates_and_writes_on_the_device(tiny_folder):
    lm_data = lm.prepare_lm_data(folder=tiny_folder)
    torch.manual_seed(0)
    model = lm.build_lm(len(lm_data.vocab), embedding_dim=8, hidden_size=16).to(DEVICE)
    train, valid = lm.batchify(lm_data.train, 4), lm.batchify(lm_data.valid, 2)
    history = lm.train_lm(model, train, valid, bptt=8, epochs=1, log=None, device=DEVICE)
    assert on_device(model) and math.isfinite(history.valid_loss[-1])
    assert math.isfinite(lm.evaluate_lm(model, valid.to(DEVICE), bptt=8))
    assert isinstance(lm.generate(model, lm_data.vocab, "the movie was", words=5, seed=0), str)


# --- lesson 10: the parallel scan and the Transformer -------------------------------------------------------
def test_the_scan_equals_the_loop_on_the_device():
    torch.manual_seed(0)
    a = (torch.rand(3, 800, 8, dtype=torch.float64) * 0.9 + 0.05).to(DEVICE)
    b = (torch.rand(3, 800, 8, dtype=torch.float64) + 0.01).to(DEVICE)
    torch.testing.assert_close(torch.exp(log_space_scan(a.log(), b.log())), linear_recurrence_loop(a, b),
                               rtol=1e-9, atol=0)
    cell = MinGRU(4, 6).to(DEVICE)  # parallel=None: the scan on a GPU, the loop on a CPU
    x = torch.randn(2, 300, 4, device=DEVICE, requires_grad=True)
    scanned, looped = cell.scan(x), cell.loop(x)
    torch.testing.assert_close(scanned, looped, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(cell(x)[0], scanned if DEVICE.type != "cpu" else looped)
    (gradient,) = torch.autograd.grad(scanned.sum(), x)
    assert gradient.device.type == DEVICE.type and torch.isfinite(gradient).all()


def test_the_transformer_encoder_ignores_padding_on_the_device():
    torch.manual_seed(0)
    layer = PaddedTransformer(16, num_heads=4, feedforward=32, num_layers=2).to(DEVICE).eval()
    x, lengths = torch.randn(3, 12, 16, device=DEVICE), torch.tensor([12, 3, 7])
    with torch.no_grad(), full_float32():
        output, _ = layer(x, lengths)
        longer, _ = layer(torch.cat([x, torch.randn(3, 5, 16, device=DEVICE)], 1), lengths)
    torch.testing.assert_close(longer[:, :12], output, rtol=1e-4, atol=1e-4)


# --- every exercise notebook, with its hidden tests, on the device ------------------------------------------
EXERCISES = sorted((ROOT / "notebooks" / "exercises").glob("[0-9][0-9]_exercises.ipynb"))


@pytest.mark.parametrize("path", EXERCISES, ids=[p.stem for p in EXERCISES])
def test_each_exercise_notebook_passes_its_hidden_tests_on_the_device(path, tmp_path):
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    setup = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert setup.source.count(SETUP_LINE) == 1, "the setup cell's device line changed: update SETUP_LINE"
    setup.source = setup.source.replace(SETUP_LINE, f'device = torch.device("{DEVICE}")')
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, with the cell and its error, if any cell fails
    printed = "".join(output.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for output in cell.outputs)
    assert f"device: {DEVICE.type}" in printed
