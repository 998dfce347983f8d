# Lesson 9 search probe: starts x rates at N labelled reviews; prints val acc and time per run
import sys, time, random, torch
from course_utils import lm, finetune
from course_utils.splits import prepare_imdb
from course_utils.models import build_model
from course_utils.training import make_loader, truncate, set_seed
torch.set_num_threads(2)
N = int(sys.argv[1]); MAX_LEN = int(sys.argv[2]); EPOCHS = int(sys.argv[3]); VALID = 2000
rates = [float(x) for x in sys.argv[4].split(",")]
starts = sys.argv[5].split(",")
data = prepare_imdb(); lm_data = lm.prepare_lm_data(data=data)
fwd, info = lm.load_or_train(lm.LESSON8, lm_data)
print("forward LM", info["valid_perplexity"], info["trained_now"], flush=True)
CLASSIFIER = dict(embedding_dim=100, hidden_size=64, pooling="last+max+mean", dropout=0.4, embedding_dropout=0.4)
STARTS = {"random": dict(copy=None, factor=1.0, gradual=False), "embedding": dict(copy="embedding", factor=1.0, gradual=False),
          "plain": dict(copy="both", factor=1.0, gradual=False), "ulmfit": dict(copy="both", factor=2.6, gradual=True),
          "ulmfit-nogradual": dict(copy="both", factor=2.6, gradual=False), "ulmfit-flat": dict(copy="both", factor=1.0, gradual=True)}
labelled = random.Random(0).sample(data.train, 20000)
cut = lambda ex: [(truncate(i, MAX_LEN), y) for i, y in ex]
valid = make_loader(cut(data.valid[:VALID]), 256, shuffle=False)
for start in starts:
    for lr in rates:
        o = STARTS[start]; set_seed(0)
        m = build_model(len(data.vocab), **CLASSIFIER)
        if o["copy"]: lm.copy_into_classifier(fwd, m, lm_data.vocab, data.vocab, rnn=o["copy"] != "embedding")
        t = time.perf_counter()
        h = finetune.fine_tune(m, make_loader(cut(labelled[:N]), 32, seed=0), valid, EPOCHS, lr, factor=o["factor"], gradual=o["gradual"])
        print(f"N={N} L={MAX_LEN} E={EPOCHS} {start:16} lr={lr:g}: val {[round(a,4) for a in h.val_acc]} best {h.best_val_acc:.4f} ({time.perf_counter()-t:.0f}s)", flush=True)
