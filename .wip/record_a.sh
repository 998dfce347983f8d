#!/bin/bash
# Session A (one lock): the best recipe again, lesson 6's bilstm, and lesson 10's four recipes, recorded on this 2-core CPU.
cd /work/wt/h4 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
for name in best mingru transformer bilstm-small transformer-small mingru-small; do
  echo "=== $name $(date +%T)"
  python -m course_utils.recorded run $name -- python -m course_utils.train --model $name --json --no-progress
done
echo "=== done $(date +%T)"
