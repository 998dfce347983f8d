"""Learning-rate search on the 5,000 validation reviews only (the test split is never read)."""
import dataclasses, json, sys, time
import torch
from course_utils.train import RECIPES, prepare_imdb
from course_utils.models import build_model, count_parameters
from course_utils.training import fit, make_loader, set_seed, get_device

names = sys.argv[1].split(",")
lrs = [float(x) for x in sys.argv[2].split(",")]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else None
data = prepare_imdb()
for name in names:
    for lr in lrs:
        recipe = dataclasses.replace(RECIPES[name], lr=lr)
        set_seed(0)
        model = build_model(len(data.vocab), **recipe.model)
        train_loader = make_loader(recipe.shorten(data.train), recipe.batch_size, shuffle=True, seed=0)
        valid_loader = make_loader(recipe.shorten(data.valid), 256, shuffle=False)
        start = time.perf_counter()
        h = fit(model, train_loader, valid_loader, epochs=epochs or recipe.epochs, lr=lr, clip=recipe.clip,
                schedule=recipe.schedule, weight_decay=recipe.weight_decay, device=get_device(), progress=False,
                log=lambda m: print("   ", m, file=sys.stderr, flush=True))
        print(json.dumps({"model": name, "lr": lr, "val_acc": [round(v, 4) for v in h.val_acc],
                          "best_val_acc": round(h.best_val_acc, 4), "seconds_per_epoch": round(sum(h.seconds) / len(h.seconds), 1),
                          "parameters": count_parameters(model)}), flush=True)
