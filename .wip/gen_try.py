import time, math, statistics, torch
import torch.nn.functional as F
from torch import nn
from course_utils.modern import MinGRU
torch.manual_seed(0)
device = torch.device("cpu")
WIDTH, LAYERS, HEADS = 256, 4, 4

class CachedSelfAttention(nn.Module):
    """One decoder layer (pre-norm) that generates one token at a time with a key/value cache."""
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)
        self.feedforward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
    def step(self, x, cache):
        """x (batch, width): the new token; cache (keys, values, t): room for more keys, t of them filled."""
        batch, width = x.shape
        keys, values, t = cache
        q, k, v = self.qkv(self.norm1(x)).view(batch, 3, self.heads, 1, width // self.heads).unbind(1)
        keys[:, :, t:t + 1], values[:, :, t:t + 1] = k, v  # written in place: no copy of the cache
        attended = F.scaled_dot_product_attention(q, keys[:, :, :t + 1], values[:, :, :t + 1])
        x = x + self.out(attended.reshape(batch, width))
        return x + self.feedforward(self.norm2(x)), (k, v)

class MinGRUBlock(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(width), nn.LayerNorm(width)
        self.cell = MinGRU(width, width)
        self.feedforward = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width))
    def step(self, x, h):
        h = self.cell.step(self.norm1(x), h)
        x = x + h
        return x + self.feedforward(self.norm2(x)), h

attn = nn.ModuleList(CachedSelfAttention(WIDTH, HEADS) for _ in range(LAYERS)).eval()
rec = nn.ModuleList(MinGRUBlock(WIDTH) for _ in range(LAYERS)).eval()
def nbytes(state): return sum(t.numel() * t.element_size() for s in state for t in (s if isinstance(s, tuple) else (s,)) if torch.is_tensor(t))
@torch.no_grad()
def ms_per_token(layers, states, repeats=30):
    x = torch.randn(1, WIDTH)
    times = []
    for _ in range(5):
        y = x
        for layer, state in zip(layers, states):
            y, _ = layer.step(y, state)
    for _ in range(repeats):
        start = time.perf_counter()
        y = x
        for layer, state in zip(layers, states):
            y, _ = layer.step(y, state)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
for t in (64, 256, 1024, 4096):
    cache = [(torch.randn(1, HEADS, t + 1, WIDTH // HEADS), torch.randn(1, HEADS, t + 1, WIDTH // HEADS), t) for _ in range(LAYERS)]
    h = [torch.rand(1, WIDTH) for _ in range(LAYERS)]
    print(t, f"kv {nbytes(cache)/1e6:.2f} MB {ms_per_token(attn, cache):.3f} ms | state {nbytes(h)} B {ms_per_token(rec, h):.3f} ms")
