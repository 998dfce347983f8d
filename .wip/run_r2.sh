#!/bin/bash
# Batch 2 of the lesson-8 LM probes: each probe takes the heavy-work lock on its own.
cd /work/wt/h3 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
W=.wip
flock /tmp/cpu-heavy.lock python $W/probe_r.py w13M_cut 13e6 "dict(lr=2e-2, cutoffs=(1000, 6000))" > $W/probe_w13M_cut.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w10M_s1 10e6 "dict(lr=2e-2, seed=1)" > $W/probe_w10M_s1.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w7M_h128 7e6 "dict(lr=2e-2, hidden_size=128)" > $W/probe_w7M_h128.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w025M_tied 0.25e6 "dict(lr=2e-2, output='tied')" > $W/probe_w025M_tied.log 2>&1
flock /tmp/cpu-heavy.lock python $W/probe_r.py w025M_base 0.25e6 "dict(lr=2e-2)" > $W/probe_w025M_base.log 2>&1
echo done > $W/run_r2.done
