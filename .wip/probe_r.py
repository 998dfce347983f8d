"""Lesson 8 LM recipe probes (issue 19): train for a fixed number of words, score on the 6,000-column subset
and on the full validation rows (the lesson's valid_rows = batchify(valid, 64)), check that generation
depends on the prompt. Run under the lock, one invocation per probe:

    flock /tmp/cpu-heavy.lock python .wip/probe_r.py bigram > .wip/probe_bigram.log 2>&1
    flock /tmp/cpu-heavy.lock python .wip/probe_r.py TAG WORDS "dict(lr=2e-2, ...)" > .wip/probe_TAG.log 2>&1

Keys of the dict: B, bptt, lr, schedule (default "onecycle"), clip (default 0.25); the rest go to lm.build_lm
(defaults embedding_dim=100, hidden_size=64, output "adaptive" with cutoffs (2000, 10000), lm.py's default).
"""
import json, math, os, sys, time
import torch
from course_utils import lm
from course_utils.text import Vocab

torch.set_num_threads(2)
CACHE = "/tmp/h3/streams.pt"
if os.path.exists(CACHE):
    d = torch.load(CACHE)
    train, valid, V, itos = d["train"], d["valid"], d["V"], d["itos"]
else:
    from course_utils.splits import prepare_imdb
    lmd = lm.prepare_lm_data(data=prepare_imdb())
    train, valid, V, itos = lmd.train, lmd.valid, len(lmd.vocab), lmd.vocab.itos
    os.makedirs(os.path.dirname(CACHE), exist_ok=True)
    torch.save({"train": train, "valid": valid, "V": V, "itos": itos}, CACHE)
vocab = Vocab(itos)
assert vocab.itos[2] == "<eos>" and (valid == 2).sum() == 5000
vrows = lm.batchify(valid, 64)          # the lesson's valid_rows
vsub = vrows[:, :6000]                  # yesterday's subset
MIXES = (0.5, 0.6, 0.7, 0.8, 0.9)

if sys.argv[1] == "bigram":
    out = {}
    for name, rows in (("sub", vsub), ("full", vrows)):
        t = time.perf_counter()
        by_mix = {m: lm.bigram_perplexity(train, rows, V, mix=m) for m in MIXES}
        best = min(by_mix, key=by_mix.get)
        out[name] = {"by_mix": by_mix, "best_mix": best, "best": by_mix[best], "mix0.7": by_mix[0.7],
                     "words": rows[:, 1:].numel(), "seconds": time.perf_counter() - t}
        print(name, json.dumps(out[name]), flush=True)
    with open("/tmp/h3/bigram.json", "w") as f:
        json.dump(out, f)
    sys.exit(0)

TAG, WORDS = sys.argv[1], int(float(sys.argv[2]))
cfg = eval(sys.argv[3]) if len(sys.argv) > 3 else {}
B = cfg.pop("B", 64); bptt = cfg.pop("bptt", 64); lr = cfg.pop("lr", 2e-2)
sched = cfg.pop("schedule", "onecycle"); clip = cfg.pop("clip", 0.25); seed = cfg.pop("seed", 0)
sizes = {"embedding_dim": 100, "hidden_size": 64, **cfg}
rows = lm.batchify(train, B)
rows = rows[:, : WORDS // B + 1]        # as LMRecipe.rows: the first part of each row
torch.manual_seed(seed)
model = lm.build_lm(V, **sizes)
params = sum(p.numel() for p in model.parameters())
print(f"{TAG}: seed={seed} words={WORDS:,} B={B} bptt={bptt} lr={lr} {sched} clip={clip} {sizes} params={params:,}", flush=True)
h = lm.train_lm(model, rows, None, bptt=bptt, lr=lr, clip=clip, epochs=1, schedule=sched, log=print,
                log_every=max(1, rows.size(1) // bptt // 4))
t = time.perf_counter(); sub = lm.perplexity(lm.evaluate_lm(model, vsub, bptt)); t_sub = time.perf_counter() - t
t = time.perf_counter(); full = lm.perplexity(lm.evaluate_lm(model, vrows, 64)); t_full = time.perf_counter() - t
torch.save(model.state_dict(), f"/tmp/h3/m_{TAG}.pt")
res = {"tag": TAG, "seed": seed, "words": WORDS, "B": B, "bptt": bptt, "lr": lr, "clip": clip, "schedule": sched, **sizes,
       "params": params, "tokens": h.tokens, "seconds": round(h.seconds, 1), "tokens_per_s": round(h.tokens_per_second),
       "ppl_sub": round(sub, 2), "ppl_full": round(full, 2), "eval_sub_s": round(t_sub, 1), "eval_full_s": round(t_full, 1)}
if os.path.exists("/tmp/h3/bigram.json"):
    big = json.load(open("/tmp/h3/bigram.json"))
    res.update({"bigram_sub": round(big["sub"]["mix0.7"], 2), "bigram_full_best": round(big["full"]["best"], 2),
                "ratio_sub": round(sub / big["sub"]["mix0.7"], 4), "ratio_full": round(full / big["full"]["best"], 4)})
print("RESULT", json.dumps(res), flush=True)

# Generation: does the continuation depend on the prompt? (the lesson's writing checks)
prompts = ("the acting was", "the worst part of this film", "i laughed so hard")
long = {p: lm.generate(model, vocab, p, words=30, seed=0, show_end=True) for p in prompts[:2]}
for p, text in long.items():
    print(f"seed 0, T=1, 30 words | {p} | {text}")
box = {s: {p: lm.generate(model, vocab, p, words=12, temperature=0.8, seed=s, show_end=True) for p in prompts}
       for s in range(3)}
for s, row in box.items():
    for p, text in row.items():
        print(f"seed {s}, T=0.8, 12 words | {p} | {text}")


def next_word(text):
    with torch.no_grad():
        hidden, _ = model(torch.tensor([vocab.encode(text.split())]))
        return model.log_probs(hidden[0, -1]).exp()


dists = {p: next_word(p) for p in prompts}
tv = 0.5 * (dists[prompts[0]] - dists[prompts[1]]).abs().sum().item()
gen = {"differ_seed0_30w": long[prompts[0]] != long[prompts[1]],
       "every_prompt_own_text": all(len(set(r.values())) == len(prompts) for r in box.values()),
       "immediate_eos": sum(t == "<eos>" for r in box.values() for t in r.values()) + sum(t == "<eos>" for t in long.values()),
       "tv_distance": round(tv, 3), "top5": {p: [vocab.itos[i] for i in dists[p].topk(5).indices] for p in prompts}}
print("GEN", json.dumps(gen), flush=True)
