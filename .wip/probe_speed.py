import time, torch
from course_utils import lm
torch.set_num_threads(2)
V = 27081
p = 1.0 / torch.arange(1, V + 1).double()
stream = torch.multinomial(p / p.sum(), 3_000_000, replacement=True)
def speed(B, bptt, H, E=100, cutoffs=(2000, 10000), steps=12, output="adaptive", cell=None):
    rows = lm.batchify(stream, B)
    torch.manual_seed(0)
    m = lm.build_lm(V, embedding_dim=E, hidden_size=H, cutoffs=cutoffs, output=output)
    opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
    state = None
    for k in range(2):
        x, y = lm.next_word_batch(rows, k * bptt, bptt); _, state = lm.tbptt_step(m, x, y, state, opt)
    t = time.perf_counter(); n = 0
    for k in range(2, 2 + steps):
        x, y = lm.next_word_batch(rows, k * bptt, bptt); _, state = lm.tbptt_step(m, x, y, state, opt); n += y.numel()
    return n / (time.perf_counter() - t)
configs = [dict(B=64, bptt=64, H=64), dict(B=128, bptt=64, H=64), dict(B=256, bptt=64, H=64), dict(B=64, bptt=128, H=64),
           dict(B=64, bptt=64, H=64, cutoffs=(1000, 6000)), dict(B=128, bptt=64, H=64, cutoffs=(1000, 6000)),
           dict(B=64, bptt=64, H=128), dict(B=128, bptt=64, H=128), dict(B=128, bptt=64, H=128, cutoffs=(1000, 6000)),
           dict(B=128, bptt=64, H=256), dict(B=64, bptt=64, H=64, E=64)]
for rep in range(2):
    for c in configs:
        print(rep, c, f"{speed(**c):,.0f} tok/s", flush=True)
