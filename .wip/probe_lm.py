import sys, time, math, torch
from course_utils import lm
from course_utils.splits import prepare_imdb
torch.set_num_threads(2)
t=time.perf_counter()
data = prepare_imdb()
lmd = lm.prepare_lm_data(data=data)
print("data", time.perf_counter()-t, flush=True)
V0 = len(lmd.vocab); EOS0 = V0-1
def remap(stream, V):
    # keep ids < V-1 (freq-sorted), eos -> V-1, others -> unk
    if V is None: return stream
    s = stream.clone()
    s[(stream >= V-1) & (stream != EOS0)] = 1
    s[stream == EOS0] = V-1
    return s
SECONDS = float(sys.argv[1])
configs = [eval(a) for a in sys.argv[2:]]
for cfg in configs:
    V = cfg.pop("V", None); B = cfg.pop("B", 64); bptt = cfg.pop("bptt", 64); lr = cfg.pop("lr", 3e-3)
    tr = remap(lmd.train, V); va = remap(lmd.valid, V)
    vs = V or V0
    rows = lm.batchify(tr, B); vrows = lm.batchify(va[:400_000], 64)
    big = lm.bigram_perplexity(tr, va[:400_000], vs)
    torch.manual_seed(0)
    model = lm.build_lm(vs, **cfg)
    h = lm.train_lm(model, rows, None, bptt=bptt, lr=lr, epochs=None, max_seconds=SECONDS, log=None)
    ev = time.perf_counter()
    vl = lm.evaluate_lm(model, vrows, bptt)
    print(f"V={vs} B={B} bptt={bptt} lr={lr} {cfg}: {h.tokens:,} tok in {h.seconds:.0f}s = {h.tokens_per_second:,.0f}/s; "
          f"ppl {math.exp(vl):.1f} vs bigram {big:.1f} (eval {time.perf_counter()-ev:.0f}s) unk={(va==1).float().mean():.3f}", flush=True)
