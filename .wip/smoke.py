import nbformat, sys
from nbclient import NotebookClient
nb = nbformat.read("notebooks/10_rnns_today.ipynb", as_version=4)
subs = [("data = prepare_imdb()", "data = prepare_imdb(limit=600)"),
        ("LENGTHS = [64, 128, 256, 512, 1024, 2048]", "LENGTHS = [16, 32, 64, 128]"),
        ("for tokens in (64, 256, 1024, 4096):", "for tokens in (64, 256):"),
        ('recorded = {name: recorded_run(name)["summary"] for name in ("bilstm-small", "transformer-small", "mingru-small")}',
         'recorded = {name: r.summary() for name, r in results.items()}'),
        ('assert {"best", "transformer", "mingru"} <= set(runs)', 'pass'),
        ("results[name] = r = train_model(name, data)", "results[name] = r = train_model(name, data, save=False)"),
        ('train_model("mingru-small", data)', 'train_model("mingru-small", data, save=False)'),
        ("if device.type == \"cpu\":\n    # attention", "if False:\n    # attention"), ("if device.type == \"cpu\":  # one token", "if False:  # one token"),
        ("    assert seconds[\"minGRU, scan\"][-1] < seconds[\"minGRU, loop\"][-1]", "    pass  #"),
       ]
for cell in nb.cells:
    for a, b in subs:
        cell.source = cell.source.replace(a, b)
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "notebooks"}})
try:
    client.execute()
finally:
    nbformat.write(nb, "/tmp/h4/smoke_out.ipynb")
