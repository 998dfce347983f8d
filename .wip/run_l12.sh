#!/bin/bash
# Executes lesson 1 and exercises 01/02 in place, then times nbval of the old and new versions (all under one lock).
cd /work/wt/h4 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
set -x
for nb in notebooks/01_rnn_by_hand.ipynb notebooks/exercises/01_exercises.ipynb notebooks/exercises/02_exercises.ipynb; do
  jupyter nbconvert --to notebook --execute --inplace $nb 2>&1 | grep -v WARNING
  python tests/notebook_hygiene.py $nb
done
cp /tmp/h4/orig/*.ipynb /tmp/h4/origrun/ 2>/dev/null || (mkdir -p /tmp/h4/origrun && cp /tmp/h4/orig/*.ipynb /tmp/h4/origrun/)
for round in 1 2; do
  python -m pytest -q /tmp/h4/origrun/01_rnn_by_hand.ipynb /tmp/h4/origrun/01_exercises.ipynb /tmp/h4/origrun/02_exercises.ipynb -o addopts="--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=0" 2>&1 | grep -E "s call|passed|failed|in all|\.ipynb"
  python -m pytest -q notebooks/01_rnn_by_hand.ipynb notebooks/exercises/01_exercises.ipynb notebooks/exercises/02_exercises.ipynb -o addopts="--nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider --durations=0" 2>&1 | grep -E "passed|failed|in all|\.ipynb$|ipynb  "
done
