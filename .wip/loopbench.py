import torch, time
torch.manual_seed(0)
B, T, H = 64, 800, 64
def t(f, reps=5):
    best = 1e9
    for _ in range(reps):
        s = time.perf_counter(); f(); best = min(best, time.perf_counter() - s)
    return round(best, 4)
k = torch.randn(B, T, H, requires_grad=True); v = torch.randn(B, T, H, requires_grad=True)
def coeffs():
    z = torch.sigmoid(k); return 1 - z, z * v
def loop_unbind():
    a, b = coeffs(); h = torch.zeros(B, H); out = []
    for at, bt in zip(a.unbind(1), b.unbind(1)):
        h = at * h + bt; out.append(h)
    return torch.stack(out, 1)
def loop_timemajor():
    a, b = coeffs()
    a, b = a.transpose(0, 1).contiguous(), b.transpose(0, 1).contiguous()
    h = torch.zeros(B, H); out = []
    for at, bt in zip(a.unbind(0), b.unbind(0)):
        h = at * h + bt; out.append(h)
    return torch.stack(out, 1)
def loop_addcmul():
    a, b = coeffs()
    a, b = a.transpose(0, 1).contiguous(), b.transpose(0, 1).contiguous()
    h = torch.zeros(B, H); out = []
    for at, bt in zip(a.unbind(0), b.unbind(0)):
        h = torch.addcmul(bt, at, h); out.append(h)
    return torch.stack(out, 1)
for name, f in [("unbind", loop_unbind), ("timemajor", loop_timemajor), ("addcmul", loop_addcmul)]:
    print(name, "fwd", t(f), "fwd+bwd", t(lambda: f().sum().backward()))
