#!/bin/bash
# Session B (one lock): the other models lessons 6 and 7 train, recorded for lesson 10's closing table.
cd /work/wt/h4 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
for name in classic rnn gru lstm bilstm-concat bilstm-attention; do
  echo "=== $name $(date +%T)"
  python -m course_utils.recorded run $name -- python -m course_utils.train --model $name --json --no-progress
done
echo "=== done $(date +%T)"
