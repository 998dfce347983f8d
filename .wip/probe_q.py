import sys, time, math, torch, os
from course_utils import lm
from course_utils.splits import prepare_imdb
torch.set_num_threads(2)
cache = "/tmp/h3/streams.pt"
if os.path.exists(cache):
    d = torch.load(cache); train, valid, V = d["train"], d["valid"], d["V"]
else:
    data = prepare_imdb(); lmd = lm.prepare_lm_data(data=data)
    train, valid, V = lmd.train, lmd.valid, len(lmd.vocab)
    torch.save({"train": train, "valid": valid, "V": V, "itos": lmd.vocab.itos}, cache)
vrows = lm.batchify(valid, 64)
vsub = vrows[:, :6000]
print("bigram (sub)", lm.bigram_perplexity(train, vsub, V), flush=True)
WORDS = float(sys.argv[1])
for a in sys.argv[2:]:
    cfg = eval(a)
    B = cfg.pop("B", 64); bptt = cfg.pop("bptt", 64); lr = cfg.pop("lr", 3e-3); sched = cfg.pop("schedule", None); clip = cfg.pop("clip", 0.25)
    rows = lm.batchify(train, B)
    steps = int(WORDS / B)
    torch.manual_seed(0)
    model = lm.build_lm(V, **{"embedding_dim": 100, "hidden_size": 64, **cfg})
    h = lm.train_lm(model, rows[:, :steps + 1], None, bptt=bptt, lr=lr, clip=clip, epochs=1, schedule=sched, log=None)
    vl = lm.evaluate_lm(model, vsub, bptt)
    print(f"B={B} bptt={bptt} lr={lr} clip={clip} {sched} {cfg}: {h.tokens:,} tok in {h.seconds:.0f}s = {h.tokens_per_second:,.0f}/s; ppl {math.exp(vl):.1f}", flush=True)
