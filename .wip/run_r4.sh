#!/bin/bash
# Batch 4: the cut-offs (1000, 6000) at the recommended 10M words (one variable against w10M).
cd /work/wt/h3 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
W=.wip
flock /tmp/cpu-heavy.lock python $W/probe_r.py w10M_cut 10e6 "dict(lr=2e-2, cutoffs=(1000, 6000))" > $W/probe_w10M_cut.log 2>&1
echo done > $W/run_r4.done
