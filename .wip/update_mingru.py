"""Adds the mingru search results to LEARNING_RATE_SEARCH and sets the recipe's lr to the best value."""
import json, re
from pathlib import Path
rows = [json.loads(line) for line in open("/tmp/h4/lr-full-mingru2.jsonl")]
p = Path("/work/wt/h4/course_utils/train.py"); s = p.read_text()
line = next(l for l in s.splitlines() if l.startswith('    "mingru": {'))
found = dict(re.findall(r"([0-9.e-]+): ([0-9.]+)", line))
values = {float(k): float(v) for k, v in found.items()}
for row in rows:
    values[row["lr"]] = row["best_val_acc"]
best = max(sorted(values), key=values.get)
fmt = lambda x: repr(x).replace("0.016", "1.6e-2").replace("0.024", "2.4e-2").replace("0.002", "2e-3").replace("0.004", "4e-3").replace("0.006", "6e-3").replace("0.01", "1e-2")
new_line = '    "mingru": {' + ", ".join(f"{fmt(k)}: {v}" for k, v in sorted(values.items())) + "},"
s = s.replace(line, new_line)
i = s.index('    "mingru": Recipe(')
j = s.index("    ),\n", i)
s = s[:i] + re.sub(r"lr=[0-9.e-]+", f"lr={fmt(best)}", s[i:j], count=1) + s[j:]
p.write_text(s)
print("mingru search:", values, "-> lr", best)
