#!/bin/bash
# Batch 1 of the lesson-8 LM probes: each probe takes the heavy-work lock on its own.
cd /work/wt/h3 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
W=.wip
flock /tmp/cpu-heavy.lock python $W/probe_r.py bigram > $W/probe_bigram.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w10M 10e6 "dict(lr=2e-2)" > $W/probe_w10M.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w5M_lr3 5e6 "dict(lr=3e-2)" > $W/probe_w5M_lr3.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w5M_h128 5e6 "dict(lr=2e-2, hidden_size=128)" > $W/probe_w5M_h128.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w5M_cut 5e6 "dict(lr=2e-2, cutoffs=(1000, 6000))" > $W/probe_w5M_cut.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w5M_base 5e6 "dict(lr=2e-2)" > $W/probe_w5M_base.log 2>&1
echo done > $W/run_r1.done
