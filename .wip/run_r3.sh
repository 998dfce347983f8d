#!/bin/bash
# Batch 3 of the lesson-8 LM probes (after batch 2): each probe takes the heavy-work lock on its own.
cd /work/wt/h3 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
W=.wip
while [ ! -e $W/run_r2.done ]; do sleep 5; done
flock /tmp/cpu-heavy.lock python $W/probe_r.py w8M_lr1_LESSON8 8e6 "dict(lr=1e-2)" > $W/probe_w8M_lr1_LESSON8.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w8M 8e6 "dict(lr=2e-2)" > $W/probe_w8M.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w7M_h128_s1 7e6 "dict(lr=2e-2, hidden_size=128, seed=1)" > $W/probe_w7M_h128_s1.log 2>&1
echo done > $W/run_r3.done
