"""Tests of course_utils.training: loops, best-checkpoint keeping and restoring, helpers."""

import random

import pytest
import torch

from course_utils import training
from course_utils.models import build_model
from course_utils.training import (
    History,
    accuracy_of,
    classification_loss,
    count_correct,
    evaluate,
    fit,
    load_checkpoint,
    make_loader,
    make_scheduler,
    predict_probabilities,
    save_checkpoint,
    set_seed,
    train_epoch,
    truncate,
)

VOCAB = 20
KEYWORD = 5


def keyword_task(n, seed=0):
    """Random reviews of 3-15 tokens; positive exactly when the token KEYWORD appears."""
    rng = random.Random(seed)
    examples = []
    for i in range(n):
        ids = [rng.choice([t for t in range(2, VOCAB) if t != KEYWORD]) for _ in range(rng.randint(3, 15))]
        label = i % 2
        if label:
            ids[rng.randrange(len(ids))] = KEYWORD
        examples.append((ids, label))
    return examples


def small_model(**options):
    set_seed(0)
    return build_model(VOCAB, embedding_dim=8, hidden_size=16, **options)


def test_one_epoch_learns_a_tiny_task():
    model = small_model(cell="lstm", pooling="max")
    train = make_loader(keyword_task(3000), batch_size=32, seed=0)
    valid = make_loader(keyword_task(500, seed=1), batch_size=100, shuffle=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    before_loss, before_acc = evaluate(model, valid, progress=False)
    loss, acc = train_epoch(model, train, optimizer, clip=1.0, progress=False)
    after_loss, after_acc = evaluate(model, valid, progress=False)
    assert 0.0 < loss and 0.0 <= acc <= 1.0
    assert before_acc < 0.7
    assert after_acc > 0.95, after_acc
    assert after_loss < before_loss


def test_evaluate_changes_nothing():
    model = small_model()
    loader = make_loader(keyword_task(64), batch_size=16, shuffle=False)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    first = evaluate(model, loader, progress=False)
    assert not model.training
    assert evaluate(model, loader, progress=False) == first
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_fit_restores_the_best_epoch(monkeypatch, tmp_path):
    """Validation accuracies 0.6, 0.9, 0.7: the model must end with the weights of epoch 2."""
    model = small_model()
    loader = make_loader(keyword_task(64), batch_size=16)
    scripted = iter([(0.5, 0.6), (0.4, 0.9), (0.45, 0.7)])
    states = []

    def fake_evaluate(model, loader, device=None, progress=True):
        states.append({k: v.clone() for k, v in model.state_dict().items()})
        return next(scripted)

    monkeypatch.setattr(training, "evaluate", fake_evaluate)
    lines = []
    history = fit(model, loader, loader, epochs=3, lr=1e-2, checkpoint=tmp_path / "best.pt",
                  checkpoint_extra={"note": "hello"}, progress=False, log=lines.append)
    assert history.best_epoch == 2 and history.best_val_acc == 0.9
    assert history.val_acc == [0.6, 0.9, 0.7]
    assert len(history.train_loss) == len(history.seconds) == len(history.reviews_per_second) == 3
    assert not all(torch.equal(states[1][k], states[2][k]) for k in states[1])  # epoch 3 did change weights
    for key, value in model.state_dict().items():
        assert torch.equal(value, states[1][key]), key
    restored, checkpoint = load_checkpoint(tmp_path / "best.pt")
    assert checkpoint["epoch"] == 2 and checkpoint["val_acc"] == 0.9 and checkpoint["note"] == "hello"
    for key, value in restored.state_dict().items():
        assert torch.equal(value, states[1][key]), key
    assert len(lines) == 3 and "*best*" in lines[1] and "*best*" not in lines[2]


def test_fit_without_validation_keeps_the_last_epoch(monkeypatch, tmp_path):
    """valid_loader=None (the refit): nothing is evaluated, every epoch is kept in turn, the last one stays."""
    model = small_model()
    loader = make_loader(keyword_task(64), batch_size=16, seed=0)

    def no_evaluation(*args, **kwargs):
        raise AssertionError("fit() evaluated without a validation loader")

    monkeypatch.setattr(training, "evaluate", no_evaluation)
    lines = []
    history = fit(model, loader, None, epochs=2, lr=1e-2, checkpoint=tmp_path / "last.pt", progress=False,
                  log=lines.append)
    assert history.val_acc == [] and history.val_loss == [] and history.best_val_acc is None
    assert history.best_epoch == 2 and len(history.train_loss) == 2
    restored, checkpoint = load_checkpoint(tmp_path / "last.pt")
    assert checkpoint["epoch"] == 2
    for key, value in model.state_dict().items():
        assert torch.equal(value, restored.state_dict()[key]), key
    assert all("no validation" in line and "*best*" not in line for line in lines)


def test_fit_is_repeatable_with_the_same_seed():
    histories = []
    for _ in range(2):
        model = small_model()
        loader = make_loader(keyword_task(200), batch_size=16, seed=3)
        histories.append(fit(model, loader, loader, epochs=1, lr=1e-2, progress=False, log=None))
    assert histories[0].train_loss == histories[1].train_loss
    assert histories[0].val_acc == histories[1].val_acc


def test_checkpoint_round_trip(tmp_path):
    model = small_model(cell="gru", bidirectional=True, pooling="max+mean").eval()
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, {"vocab": ["<pad>", "<unk>", "a"]})
    assert path.exists() and not path.with_suffix(".pt.partial").exists()
    again, checkpoint = load_checkpoint(path)
    ids, labels, lengths = next(iter(make_loader(keyword_task(8), batch_size=8, shuffle=False)))
    assert torch.equal(again(ids, lengths), model(ids, lengths))
    assert checkpoint["vocab"] == ["<pad>", "<unk>", "a"]
    assert again.config == model.config


def test_predict_probabilities_keeps_the_order():
    model = small_model().eval()
    examples = keyword_task(50)
    probabilities = predict_probabilities(model, examples, batch_size=7, progress=False)
    one_by_one = torch.stack([
        torch.sigmoid(model(torch.tensor([ids]), torch.tensor([len(ids)])))[0] for ids, _ in examples
    ])
    assert torch.allclose(probabilities, one_by_one, atol=1e-6)


def test_make_loader_gives_every_example_once_in_buckets():
    examples = keyword_task(300)
    loader = make_loader(examples, batch_size=10, seed=1)
    seen = sorted(i for batch in loader.batch_sampler for i in batch)
    assert seen == list(range(300))
    ids, labels, lengths = next(iter(loader))
    assert ids.shape[0] == labels.shape[0] == lengths.shape[0] == 10
    assert ids.shape[1] == lengths.max()


def test_accuracy_of_reads_above_one_half_as_positive():
    probabilities = torch.tensor([0.9, 0.2, 0.51, 0.5])
    assert training.accuracy_of(probabilities, [1, 0, 1, 1]) == 0.75  # 0.5 itself is "negative"
    assert training.accuracy_of(probabilities, torch.tensor([0.0, 1.0, 0.0, 0.0])) == 0.25


def test_truncate_keeps_head_and_tail():
    ids = list(range(10))
    assert truncate(ids, None) == ids
    assert truncate(ids, 20) == ids
    assert truncate(ids, 4) == [0, 1, 8, 9]
    assert truncate(ids, 4, head=1.0) == [0, 1, 2, 3]
    assert truncate(ids, 4, head=0.0) == [6, 7, 8, 9]
    assert len(truncate(ids, 5, head=0.5)) == 5


def test_schedules():
    parameter = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([parameter], lr=1.0)
    assert make_scheduler(optimizer, None, 1.0, 10) is None
    linear = make_scheduler(optimizer, "linear", 1.0, 10)
    for _ in range(5):
        optimizer.step()
        linear.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="schedule"):
        make_scheduler(optimizer, "cosine-ish", 1.0, 10)


def test_history_to_dict_and_best():
    history = History(val_acc=[0.5, 0.8], best_epoch=2)
    assert history.best_val_acc == 0.8
    assert history.to_dict()["best_epoch"] == 2


def test_get_device_is_a_torch_device():
    device = training.get_device()
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")


def test_the_plots_of_lessons_5_and_6_draw():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from course_utils import plots

    history = History(train_loss=[0.6, 0.4], train_acc=[0.7, 0.8], val_loss=[0.5, 0.45], val_acc=[0.75, 0.8],
                      best_epoch=2)
    axes = plots.plot_history(history)
    assert axes[1].get_ylabel() == "accuracy" and len(axes[0].get_legend().get_texts()) == 3
    assert plots.plot_histories({"a": history, "b": history.to_dict()}).get_ylabel() == "validation accuracy"
    assert len(plots.plot_loss_curves({"rnn": [0.7] * 30, "lstm": [0.5] * 30}, smooth=10).lines) == 3
    ax = plots.plot_confusion_matrix([[5, 1], [2, 7]])
    assert [t.get_text() for t in ax.texts] == ["5", "1", "2", "7"]
    ax = plots.plot_accuracy_by_length([10, 20, 150, 160], [True, False, True, True], [0, 100, 200])
    assert [round(p.get_height(), 2) for p in ax.patches] == [0.5, 1.0]
    ax = plots.plot_prediction_by_word(["good", "bad"], [0.8, 0.3])
    assert ax.get_ylim() == (0, 1)
    plt.close("all")


@pytest.mark.parametrize("progress", [False, True])
def test_train_epoch_is_the_plain_loop_on_the_same_batches(progress):
    """Lesson 6 writes the loop by hand and checks it against train_epoch: same batches, same numbers."""

    def plain_epoch(model, loader, optimizer):
        loss_fn = torch.nn.BCEWithLogitsLoss()
        model.train()
        total, correct, count = 0.0, 0, 0
        for ids, labels, lengths in loader:
            logits = model(ids, lengths)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            total += loss.item() * len(labels)
            correct += ((logits > 0).float() == labels).sum().item()
            count += len(labels)
        return total / count, correct / count

    def run(one_epoch):
        set_seed(0)
        model = small_model(dropout=0.2)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
        loader = make_loader(keyword_task(96), batch_size=16, shuffle=True, seed=0)  # a shuffling sampler
        return [one_epoch(model, loader, optimizer) for _ in range(2)], model

    plain, plain_model = run(plain_epoch)
    library, library_model = run(lambda m, l, o: train_epoch(m, l, o, clip=1.0, progress=progress))
    assert library == plain  # the progress bar must not start an extra pass (it would move the sampler on)
    for a, b in zip(plain_model.state_dict().values(), library_model.state_dict().values()):
        assert torch.equal(a, b)


def three_class_task(n, seed=0):
    """Reviews of 3-15 tokens whose class (0, 1 or 2) is told by one keyword among them (5, 6 or 7)."""
    rng = random.Random(seed)
    keywords = [5, 6, 7]
    examples = []
    for i in range(n):
        label = i % 3
        ids = [rng.choice([t for t in range(2, VOCAB) if t not in keywords]) for _ in range(rng.randint(3, 15))]
        ids[rng.randrange(len(ids))] = keywords[label]
        examples.append((ids, label))
    return examples


def test_classification_loss_is_bce_for_one_logit_and_cross_entropy_for_many():
    logits = torch.tensor([2.0, -1.0, 0.5])
    labels = torch.tensor([1.0, 0.0, 0.0])
    assert torch.equal(classification_loss(logits, labels), torch.nn.BCEWithLogitsLoss()(logits, labels))
    many = torch.tensor([[2.0, 0.0, -1.0], [0.1, 0.2, 3.0]])
    classes = torch.tensor([0.0, 1.0])  # collate_batch gives float labels
    expected = -(torch.log_softmax(many, dim=1)[[0, 1], [0, 1]]).mean()  # -log p(true class), averaged
    assert torch.allclose(classification_loss(many, classes), expected)
    assert torch.allclose(classification_loss(many, classes, reduction="sum"), 2 * expected)
    assert count_correct(logits, labels) == 2  # 2.0 -> 1 right, -1.0 -> 0 right, 0.5 -> 1 wrong
    assert count_correct(many, classes) == 1  # argmax 0 right, argmax 2 wrong


def test_many_classes_train_with_cross_entropy():
    model = small_model(cell="gru", pooling="max", num_classes=3)
    train = make_loader(three_class_task(600), batch_size=32, seed=0)
    valid = make_loader(three_class_task(150, seed=1), batch_size=50, shuffle=False)
    before_loss, before_acc = evaluate(model, valid, progress=False)
    assert before_loss == pytest.approx(torch.log(torch.tensor(3.0)).item(), abs=0.1)  # about -log(1/3) untrained
    # evaluate's loss is the cross-entropy of the whole set, computed here by hand
    examples = three_class_task(150, seed=1)
    model.eval()
    by_hand = sum(
        -torch.log_softmax(model(torch.tensor([ids]), torch.tensor([len(ids)]))[0], dim=0)[label].item()
        for ids, label in examples
    ) / len(examples)
    assert before_loss == pytest.approx(by_hand, abs=1e-5)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    for _ in range(2):
        loss, acc = train_epoch(model, train, optimizer, clip=1.0, progress=False)
    after_loss, after_acc = evaluate(model, valid, progress=False)
    assert after_acc > 0.9 > before_acc + 0.3, (before_acc, after_acc)
    assert after_loss < before_loss


def test_predict_probabilities_of_many_classes_are_distributions_in_order():
    model = small_model(num_classes=4).eval()
    examples = three_class_task(30)
    probabilities = predict_probabilities(model, examples, batch_size=7, progress=False)
    assert probabilities.shape == (30, 4)
    assert torch.allclose(probabilities.sum(dim=1), torch.ones(30), atol=1e-6)
    one_by_one = torch.cat([
        torch.softmax(model(torch.tensor([ids]), torch.tensor([len(ids)])), dim=1) for ids, _ in examples
    ])
    assert torch.allclose(probabilities, one_by_one, atol=1e-6)
    labels = [label for _, label in examples]
    assert accuracy_of(probabilities, labels) == pytest.approx(
        sum(int(p.argmax()) == y for p, y in zip(one_by_one, labels)) / 30)


def test_accuracy_of_many_classes_reads_the_argmax():
    probabilities = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.4, 0.5, 0.1], [0.3, 0.3, 0.4]])
    assert accuracy_of(probabilities, [0, 2, 0, 2]) == 0.75


def test_a_checkpoint_saved_before_num_classes_existed_loads(tmp_path):
    model = small_model().eval()
    path = save_checkpoint(tmp_path / "old.pt", model, {"vocab": ["<pad>", "<unk>"]})
    payload = torch.load(path, weights_only=True)
    del payload["config"]["num_classes"]  # as lessons 5-7 saved them
    torch.save(payload, path)
    again, _ = load_checkpoint(path)
    assert again.config.num_classes == 1
    ids, labels, lengths = next(iter(make_loader(keyword_task(8), batch_size=8, shuffle=False)))
    assert torch.equal(again(ids, lengths), model(ids, lengths))


def test_a_many_class_checkpoint_round_trip(tmp_path):
    model = small_model(num_classes=8).eval()
    again, _ = load_checkpoint(save_checkpoint(tmp_path / "stars.pt", model))
    assert again.config.num_classes == 8
    ids, labels, lengths = next(iter(make_loader(keyword_task(8), batch_size=8, shuffle=False)))
    assert torch.equal(again(ids, lengths), model(ids, lengths))


def test_full_float32_turns_tf32_off_inside_and_restores_the_settings():
    settings = training._tf32_backends()
    before = [getattr(owner, name) for owner, name, _ in settings]
    with training.full_float32():
        assert [getattr(owner, name) for owner, name, _ in settings] == [exact for _, _, exact in settings]
    assert [getattr(owner, name) for owner, name, _ in settings] == before
    with pytest.raises(RuntimeError):
        with training.full_float32():
            raise RuntimeError("a failing check")
    assert [getattr(owner, name) for owner, name, _ in settings] == before  # restored after an error too
