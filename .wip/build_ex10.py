import nbformat
from nbformat.v4 import new_markdown_cell, new_code_cell, new_notebook

def meta(grade_id, kind, points=None):
    m = {"grade": kind == "test", "grade_id": grade_id, "locked": kind != "answer", "schema_version": 3,
         "solution": kind == "answer", "task": False}
    if points:
        m["points"] = points
    return {"nbgrader": m}

cells = []
def md(grade_id, text):
    cells.append(new_markdown_cell(text.strip("\n"), metadata=meta(grade_id, "text")))
def code(grade_id, text, kind="text", points=None):
    cells.append(new_code_cell(text.strip("\n"), metadata=meta(grade_id, kind, points)))

md("intro", r"""
# Exercises of lesson 10 — RNNs today

Three exercises, 10 points: the parallel scan that lets a linear recurrence train without a loop
over time, the mask that keeps self-attention away from padding (and from the future), and the
minGRU of the lesson computed with your scan. Write your code in place of
`raise NotImplementedError()` in the cells marked *your answer*, run the cell, then run the test
cell below it: the checker compares your code with the step-by-step definition and either prints ✅
or names the mistake. The grader runs the same checks and a few hidden ones.

Conventions:

- time is dimension 1: `a`, `b`, `x` are (batch, time, ...); states are returned for every step,
  $h_1 \dots h_T$ (not $h_0$);
- **no Python loop over the time steps** in exercises 1 and 3: the checkers count the tensor
  operations your function makes on a sequence of 1,000 steps (a loop makes thousands, a scan a
  few dozen);
- the checkers put their tensors on the notebook's `device` (the GPU when there is one): create
  any new tensor on the inputs' device (`torch.ones(..., device=a.device)`).
""")

code("setup", r'''
# NBVAL_IGNORE_OUTPUT
# Setup: on Google Colab, install the course's helper package first (elsewhere it is already installed).
# A fork points this address (and the README's badges) at itself: python -m course_utils.course set-repository OWNER/NAME
import sys
if "google.colab" in sys.modules:
    import subprocess
    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/rnn-course/rnn-pytorch-course"], check=True)

import torch
import torch.nn.functional as F
from torch import nn

from course_utils.course import print_versions
from course_utils.modern import g  # the minGRU's activation for candidates (exercise 3)

torch.manual_seed(0)
device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
print_versions(device)
''')

md("ex1_text", r"""
## Exercise 1 (4 points): the parallel scan of a linear recurrence

Write `linear_scan(a, b, h0)` for the recurrence

$$h_t = a_t \, h_{t-1} + b_t, \qquad t = 1, \dots, T,$$

where `a` and `b` are (batch, time, hidden) and `h0` is (batch, hidden). Return every state
$h_1, \dots, h_T$ as (batch, time, hidden), **without a loop over time**. Unrolled, the recurrence is

$$h_t = A_t \Big( h_0 + \sum_{k=1}^{t} \frac{b_k}{A_k} \Big), \qquad A_t = a_1 a_2 \cdots a_t,$$

two cumulative operations over dimension 1: `torch.cumprod` and `torch.cumsum`. The checker's
`a` lie in [0.5, 1), as gates do; `b` and `h0` have both signs. (The lesson computes the same in
logarithms, which survives products too small for floating point; here the sequences are short
enough for the plain form.)
""")

code("scan_answer", r'''
def linear_scan(a, b, h0):
    ### BEGIN SOLUTION
    A = torch.cumprod(a, dim=1)
    return A * (h0.unsqueeze(1) + torch.cumsum(b / A, dim=1))
    ### END SOLUTION
''', kind="answer")

code("scan_test", r'''
from course_utils.checks import fresh_checks
checks = fresh_checks(10)
checks.check_linear_scan(linear_scan, device=device)
### BEGIN HIDDEN TESTS
checks.check_linear_scan(linear_scan, seed=5, device=device)
# float32, as a model would call it, against the loop
_g = torch.Generator().manual_seed(1001)
_a, _b, _h0 = 0.5 + 0.5 * torch.rand(3, 25, 4, generator=_g), torch.randn(3, 25, 4, generator=_g), torch.randn(3, 4, generator=_g)
_h, _expected = _h0, []
for _t in range(25):
    _h = _a[:, _t] * _h + _b[:, _t]
    _expected.append(_h)
_got = linear_scan(_a.to(device), _b.to(device), _h0.to(device))
assert _got.shape == (3, 25, 4) and torch.allclose(_got.cpu(), torch.stack(_expected, 1), rtol=1e-4, atol=1e-4)
### END HIDDEN TESTS
''', kind="test", points=4)

md("ex2_text", r"""
## Exercise 2 (3 points): the attention mask

Self-attention lets every position (a *query* $i$) read every position (a *key* $j$). Two
things must stay hidden: **padding** (keys $j \ge$ the sequence's length), and, in a model that
generates text, the **future** (keys $j > i$: a *causal* mask).

Write `attention_mask(lengths, steps, causal)`: `lengths` (batch,) holds each sequence's number of
real steps, `steps` is the padded length. Return a boolean tensor (batch, steps, steps) with

$$\text{mask}[b, i, j] = (j < \text{lengths}[b]) \;\text{and}\; (\text{not causal} \;\text{or}\; j \le i).$$

`True` means *may attend*, the convention of `F.scaled_dot_product_attention`'s boolean
`attn_mask`. (Beware: `nn.MultiheadAttention`'s `key_padding_mask` uses the opposite, `True` =
ignore. The checker uses your mask in `scaled_dot_product_attention` and compares with
`nn.MultiheadAttention` given its own masks.) Padded *queries* keep their rows: their outputs are
ignored later, and a row with no `True` would make the softmax divide 0 by 0.
""")

code("mask_answer", r'''
def attention_mask(lengths, steps, causal):
    ### BEGIN SOLUTION
    positions = torch.arange(steps, device=lengths.device)
    mask = (positions < lengths.unsqueeze(1)).unsqueeze(1).expand(-1, steps, -1)  # real keys, for every query
    if causal:
        mask = mask & (positions.unsqueeze(1) >= positions.unsqueeze(0))  # key j <= query i
    return mask
    ### END SOLUTION
''', kind="answer")

code("mask_test", r'''
from course_utils.checks import fresh_checks
checks = fresh_checks(10)
checks.check_attention_mask(attention_mask, device=device)
### BEGIN HIDDEN TESTS
checks.check_attention_mask(attention_mask, seed=5, device=device)
# with no padding, the causal mask is PyTorch's is_causal=True
_g = torch.Generator().manual_seed(1002)
_q, _k, _v = (torch.randn(2, 6, 4, generator=_g).to(device) for _ in range(3))
_mask = attention_mask(torch.tensor([6, 6], device=device), 6, True)
assert torch.allclose(F.scaled_dot_product_attention(_q, _k, _v, attn_mask=_mask),
                      F.scaled_dot_product_attention(_q, _k, _v, is_causal=True), atol=1e-5)
### END HIDDEN TESTS
''', kind="test", points=3)

md("ex3_text", r"""
## Exercise 3 (3 points): the minGRU, in parallel

The lesson's minGRU computes its gate and its candidate from the input $x_t$ alone:

$$z_t = \sigma(\text{linear\_z}(x_t)), \qquad \tilde h_t = g(\text{linear\_h}(x_t)), \qquad
h_t = (1 - z_t)\, h_{t-1} + z_t\, \tilde h_t,$$

so it is the recurrence of exercise 1 with $a_t = 1 - z_t$ and $b_t = z_t \tilde h_t$, and every
$a_t, b_t$ is known before the first step. Write `min_gru(x, h0, linear_z, linear_h)`: `x` is
(batch, time, features), `h0` (batch, hidden) is positive, `linear_z` and `linear_h` are
`nn.Linear(features, hidden)` layers, and `g` is imported in the setup cell
(`course_utils.modern.g`). Return every state (batch, time, hidden), with your `linear_scan` and
no loop over time.
""")

code("mingru_answer", r'''
def min_gru(x, h0, linear_z, linear_h):
    ### BEGIN SOLUTION
    z = torch.sigmoid(linear_z(x))
    return linear_scan(1 - z, z * g(linear_h(x)), h0)
    ### END SOLUTION
''', kind="answer")

code("mingru_test", r'''
from course_utils.checks import fresh_checks
checks = fresh_checks(10)
checks.check_min_gru(min_gru, device=device)
### BEGIN HIDDEN TESTS
checks.check_min_gru(min_gru, seed=5, device=device)
# the lesson's layer, step by step, gives the same states
from course_utils.modern import MinGRU
torch.manual_seed(1003)
_cell = MinGRU(5, 7).to(device)
_x, _h0 = torch.randn(3, 20, 5, device=device), torch.rand(3, 7, device=device) + 0.1
with torch.no_grad():
    assert torch.allclose(min_gru(_x, _h0, _cell.linear_z, _cell.linear_h), _cell.loop(_x, _h0), rtol=1e-4, atol=1e-5)
### END HIDDEN TESTS
''', kind="test", points=3)

md("outro", r"""
That's all. Lesson 10 uses the same pieces: `course_utils.modern.log_space_scan` is exercise 1 in
logarithms (so that 800 gates below 1 do not underflow), `MinGRU` is exercise 3 with it, and
`PaddedTransformer` hands PyTorch a padding mask like that of exercise 2 (in
`nn.TransformerEncoder`'s convention, `True` = ignore).
""")

nb = new_notebook(cells=cells, metadata={
    "kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"},
    "language_info": {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                      "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                      "pygments_lexer": "ipython3", "version": "3.11.7"}})
nbformat.write(nb, "notebooks/exercises/10_exercises.ipynb")
