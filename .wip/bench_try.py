import time, math, torch
from torch import nn
from course_utils.modern import MinGRU, PaddedTransformer
torch.manual_seed(0)
device = torch.device("cpu")
BATCH, WIDTH = 16, 64
LENGTHS = [64, 128, 256, 512, 1024, 2048]
def fb_seconds(run, length, repeats=3):
    x = torch.randn(BATCH, length, WIDTH, device=device, requires_grad=True)
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        run(x).sum().backward()
        best = min(best, time.perf_counter() - start)
    return best
lstm = nn.LSTM(WIDTH, WIDTH, batch_first=True)
attention = PaddedTransformer(WIDTH, num_heads=4, feedforward=2 * WIDTH, num_layers=1)
gru = MinGRU(WIDTH, WIDTH)
models = {
    "nn.LSTM": lambda x: lstm(x)[0],
    "Transformer layer": lambda x: attention(x, torch.full((x.size(0),), x.size(1)))[0],
    "minGRU, scan": lambda x: gru.scan(x),
    "minGRU, loop": lambda x: gru.loop(x),
}
t0 = time.perf_counter()
times = {name: [fb_seconds(run, n) for n in LENGTHS] for name, run in models.items()}
print("total", time.perf_counter() - t0)
for name, ts in times.items():
    slope = (math.log(ts[-1]) - math.log(ts[-3])) / (math.log(LENGTHS[-1]) - math.log(LENGTHS[-3]))
    print(f"{name:20s}", " ".join(f"{t*1000:8.1f}" for t in ts), f"slope {slope:.2f}")
