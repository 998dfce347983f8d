import time, torch, random
from course_utils.splits import prepare_imdb
from course_utils.models import build_model
from course_utils.training import fit, make_loader, truncate, set_seed, evaluate
torch.set_num_threads(2)
data = prepare_imdb()
few = random.Random(0).sample(data.train, 2000)
for L in (256, 400):
    tl = make_loader([(truncate(i, L), y) for i, y in few], 32, seed=0)
    vl = make_loader([(truncate(i, L), y) for i, y in data.valid[:2000]], 256, shuffle=False)
    ntok = sum(len(truncate(i, L)) for i, _ in few)
    for H, bi in ((64, False), (64, True), (128, False), (256, False), (400, False)):
        set_seed(0)
        m = build_model(len(data.vocab), embedding_dim=100, hidden_size=H, bidirectional=bi, pooling="last+max+mean")
        t = time.perf_counter()
        h = fit(m, tl, None, epochs=1, lr=3e-3, progress=False, log=None)
        tt = time.perf_counter() - t
        t = time.perf_counter(); evaluate(m, vl, progress=False); te = time.perf_counter() - t
        print(f"L={L} H={H} bi={bi}: train {ntok/tt:,.0f} tok/s ({tt:.1f}s for 2000 reviews), eval {ntok/te:,.0f} tok/s ({te:.1f}s)", flush=True)
