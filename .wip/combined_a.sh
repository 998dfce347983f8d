#!/bin/bash
# One lock: the last two learning rates of the full-size minGRU, the recipe set to the best, then session A.
cd /work/wt/h4 && source /work/main/.venv/bin/activate
echo "=== search $(date +%T)"
PYTHONPATH=/tmp/h4/frozen IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz python /tmp/h4/lrsearch.py mingru 1.6e-2,2.4e-2 > /tmp/h4/lr-full-mingru2.jsonl 2> /tmp/h4/lr-full-mingru2.log
python /tmp/h4/update_mingru.py
/tmp/h4/record_a.sh
