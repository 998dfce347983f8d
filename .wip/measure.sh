#!/bin/bash
cd /work/wt/h4 && source /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/h4/frozen
uptime
python /tmp/h4/bench_try.py
python /tmp/h4/gen_try.py
python /tmp/h4/bench_try.py
python /tmp/h4/gen_try.py
