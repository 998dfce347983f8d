import hashlib
import nbformat

PATH = "/work/wt/h3/notebooks/exercises/09_exercises.ipynb"
cells = []


def cell(kind, grade_id, source, solution=False, grade=False, points=None, locked=None):
    source = source.strip("\n")
    c = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
    meta = {"grade": grade, "grade_id": grade_id, "locked": (not solution) if locked is None else locked,
            "schema_version": 3, "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    c.metadata["nbgrader"] = meta
    c.id = hashlib.sha1(f"ex9:{grade_id}".encode()).hexdigest()[:8]
    cells.append(c)


cell("md", "intro", r"""
# Exercises of lesson 9 — Reading without labels

Three exercises, 10 points: the tools ULMFiT uses to fine-tune a classifier that starts from a
language model ([lesson 9](../09_unlabeled_text.ipynb)), on tiny models, so the notebook runs in
seconds. Write your code in place of `raise NotImplementedError()` in the cells marked *your
answer*, run the cell, then run the test cell below it: the checker compares your code with the
model's own layers and ULMFiT's formulas and either prints ✅ or names the mistake. The grader
runs the same checks and a few hidden ones.

Exercise 1, the discriminative learning rates, carries the lesson's key idea (4 points):
different layers of a pretrained model know different things and should change at different
speeds. Exercises 2 and 3 (3 points each) are the schedule and the order in which the layers
start to train.
""")

cell("code", "setup", r"""
# NBVAL_IGNORE_OUTPUT
# Setup: on Google Colab, install the course's helper package first (elsewhere it is already installed).
# A fork points this address (and the README's badges) at itself: python -m course_utils.course set-repository OWNER/NAME
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/rnn-course/rnn-pytorch-course"], check=True)

import math

import torch
from torch import nn

from course_utils.models import build_model
from course_utils.course import print_versions

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print_versions(device)
""")

cell("md", "ex1_text", r"""
## Exercise 1 (4 points): parameter groups with discriminative learning rates

A classifier started from a language model has layers that know different things: the
embedding holds what each word means (learned from millions of words), the recurrent layers how
words combine, and the head is new. ULMFiT gives each **layer group** its own learning rate: the
top group (the head) the full rate `lr`, and each group below it `factor` times less (2.6 in the
paper). With 3 groups and `factor=2.6`: embedding `lr / 2.6**2`, LSTM `lr / 2.6`, head `lr`.

A PyTorch optimizer takes such groups directly: a list of dicts, each with its `"params"` (a
list of parameters) and its own `"lr"`:

```python
torch.optim.AdamW([{"params": [...], "lr": 0.001}, {"params": [...], "lr": 0.0026}, ...])
```

The course's classifier (`build_model`, the cell below shows one) has the layers
`model.embedding`, `model.rnn.layers` (a list with one entry per recurrent layer; in a
bidirectional model each entry holds both directions) and `model.head`. Write
`discriminative_param_groups(model, lr, factor)` that returns the list of groups **from the
input up**: `[embedding], [recurrent layer 0], [layer 1], ..., [head]`, each parameter of the
model in exactly one group, group `i` of `n` with the rate `lr / factor ** (n - 1 - i)`.
""")

cell("code", "model_look", r"""
model = build_model(50, embedding_dim=8, hidden_size=6, num_layers=2, bidirectional=True, pooling="last+max+mean")
for name, parameter in model.named_parameters():
    print(f"{name:40} {tuple(parameter.shape)}")
print("recurrent layers:", len(model.rnn.layers))
""")

cell("code", "groups_answer", r"""
def discriminative_param_groups(model, lr, factor=2.6):
    ### BEGIN SOLUTION
    groups = [list(model.embedding.parameters())]
    groups += [list(layer.parameters()) for layer in model.rnn.layers]
    groups.append(list(model.head.parameters()))
    top = len(groups) - 1
    return [{"params": params, "lr": lr / factor ** (top - i)} for i, params in enumerate(groups)]
    ### END SOLUTION
""", solution=True)

cell("code", "groups_test", r"""
from course_utils.checks import fresh_checks
checks = fresh_checks(9)
checks.check_discriminative_param_groups(discriminative_param_groups, device=device)
rates = [group["lr"] for group in discriminative_param_groups(model, 1.0, 2.0)]
assert rates == [1 / 8, 1 / 4, 1 / 2, 1.0], rates   # embedding, layer 0, layer 1, head
### BEGIN HIDDEN TESTS
checks.check_discriminative_param_groups(discriminative_param_groups, seed=5, device=device)
_optimizer = torch.optim.AdamW(discriminative_param_groups(model, 1e-2, 2.6))
assert len(_optimizer.param_groups) == 4
### END HIDDEN TESTS
""", grade=True, points=4)

cell("md", "ex2_text", r"""
## Exercise 2 (3 points): the slanted triangular learning rate

ULMFiT's schedule rises quickly and falls slowly (equation 3 of the paper). Over `T` steps
(`step` = 0 .. T - 1), with `cut = floor(T * cut_frac)`:

$$p = \begin{cases} \dfrac{t}{\text{cut}} & t < \text{cut} \\[1ex]
1 - \dfrac{t - \text{cut}}{\text{cut} \cdot (1 / \text{cut\_frac} - 1)} & \text{otherwise}\end{cases}
\qquad \eta_t = \eta_{\max} \cdot \frac{1 + p\,(\text{ratio} - 1)}{\text{ratio}}$$

So the rate climbs from $\eta_{\max} / \text{ratio}$ to $\eta_{\max}$ over the first `cut` steps
and falls back towards $\eta_{\max} / \text{ratio}$ over the others: it never reaches 0. With
`T = 100, cut_frac = 0.1, ratio = 32, lr_max = 0.01`: 0.0003125 at step 0, 0.01 at step 10,
0.00515625 at step 55 (halfway down: p = 0.5).

Write `slanted_triangular_lr(step, total_steps, lr_max, cut_frac=0.1, ratio=32)` that returns
$\eta_t$ as a Python number. (The checker uses `total_steps` for which `total_steps * cut_frac`
is a whole number.)
""")

cell("code", "stlr_answer", r"""
def slanted_triangular_lr(step, total_steps, lr_max, cut_frac=0.1, ratio=32):
    ### BEGIN SOLUTION
    cut = math.floor(total_steps * cut_frac)
    if step < cut:
        p = step / cut
    else:
        p = 1 - (step - cut) / (cut * (1 / cut_frac - 1))
    return lr_max * (1 + p * (ratio - 1)) / ratio
    ### END SOLUTION
""", solution=True)

cell("code", "stlr_test", r"""
from course_utils.checks import fresh_checks
checks = fresh_checks(9)
checks.check_slanted_triangular_lr(slanted_triangular_lr)
assert abs(slanted_triangular_lr(10, 100, 0.01) - 0.01) < 1e-12
### BEGIN HIDDEN TESTS
checks.check_slanted_triangular_lr(slanted_triangular_lr, seed=5)
assert abs(slanted_triangular_lr(55, 100, 0.01) - 0.00515625) < 1e-9
### END HIDDEN TESTS
""", grade=True, points=3)

cell("md", "ex3_text", r"""
## Exercise 3 (3 points): gradual unfreezing

A new head on top of pretrained layers sends large, random gradients down in its first steps.
ULMFiT therefore trains the head alone in the first epoch and unfreezes one more group per
epoch, from the top down: with `groups` listed from the input up (as in exercise 1), epoch 0
trains the last group only, epoch 1 the last two, ..., and from epoch `len(groups) - 1` on,
every group.

A parameter is frozen with `parameter.requires_grad_(False)`: autograd computes no gradient for
it and the optimizer leaves it unchanged. Write `unfreeze(groups, epoch)` that makes the
`epoch + 1` top groups trainable (`requires_grad_(True)`) and freezes all the others, whatever
they were before. `groups` is a list of lists of parameters; change only their `requires_grad`
(not the lists, not the values). Beware of Python's `groups[-0:]`.
""")

cell("code", "unfreeze_answer", r"""
def unfreeze(groups, epoch):
    ### BEGIN SOLUTION
    first_trainable = len(groups) - (epoch + 1)
    for i, group in enumerate(groups):
        for parameter in group:
            parameter.requires_grad_(i >= first_trainable)
    ### END SOLUTION
""", solution=True)

cell("code", "unfreeze_test", r"""
from course_utils.checks import fresh_checks
checks = fresh_checks(9)
checks.check_unfreeze(unfreeze, device=device)
_groups = [[nn.Parameter(torch.zeros(1))] for _ in range(3)]
unfreeze(_groups, 0)
assert [g[0].requires_grad for g in _groups] == [False, False, True]
### BEGIN HIDDEN TESTS
checks.check_unfreeze(unfreeze, seed=5, device=device)
unfreeze(_groups, 7)
assert all(g[0].requires_grad for g in _groups)
### END HIDDEN TESTS
""", grade=True, points=3)

cell("md", "outro", r"""
That's all. Lesson 9 puts these pieces together (`course_utils.finetune.fine_tune`): a classifier
started from lesson 8's language model, compared with one started from random weights, each with
its learning rate chosen on the validation reviews, from 250 to 4,000 labelled reviews.
""")

nb = nbformat.v4.new_notebook()
nb.metadata = {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
               "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                                 "pygments_lexer": "ipython3", "version": "3.11.7"}}
nb.cells = cells
nbformat.write(nb, PATH)
print("ok")
