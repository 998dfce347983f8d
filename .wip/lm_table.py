"""Collect the RESULT and GEN lines of .wip/probe_*.log (probe_r.py) into a markdown table."""
import glob, json
big = json.load(open("/tmp/h3/bigram.json"))
rows = []
for path in sorted(glob.glob(".wip/probe_*.log")):
    res = gen = None
    for line in open(path):
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
        elif line.startswith("GEN "):
            gen = json.loads(line[4:])
    if res:
        rows.append((res, gen))
rows.sort(key=lambda r: r[0]["seconds"])
print("| probe | words | hidden | output / cut-offs | lr | seed | train s | words/s | ppl subset | ppl full | full / bigram | prompts differ | TV |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r, g in rows:
    out = r.get("output", "adaptive")
    out = f"{out} {tuple(r.get('cutoffs', (2000, 10000)))}" if out == "adaptive" else out
    print(f"| {r['tag']} | {r['words']/1e6:g}M | {r['hidden_size']} | {out} | {r['lr']:g} | {r['seed']} | {r['seconds']:.0f} | "
          f"{r['tokens_per_s']:,} | {r['ppl_sub']:.1f} | {r['ppl_full']:.1f} | {r['ppl_full']/big['full']['best']:.3f} | "
          f"{'yes' if g and g['differ_seed0_30w'] and g['every_prompt_own_text'] else 'no'} | {g['tv_distance'] if g else ''} |")
print(f"\nbigram, subset ({big['sub']['words']:,} words): mix 0.7 {big['sub']['mix0.7']:.1f}, best mix {big['sub']['best_mix']} {big['sub']['best']:.1f}")
print(f"bigram, full validation rows ({big['full']['words']:,} words): mix 0.7 {big['full']['mix0.7']:.1f}, best mix {big['full']['best_mix']} {big['full']['best']:.1f}")
