#!/bin/bash
cd /work/wt/h4 && source /work/main/.venv/bin/activate && export PYTHONPATH=$PWD IMDB_ARCHIVE=/work/shared/data/aclImdb_v1.tar.gz
echo "=== test_gpu on the CPU $(date +%T)"
COURSE_TEST_DEVICE=cpu python -m pytest -q tests/test_gpu.py -p no:nbval -o addopts="-p no:cacheprovider --durations=10" 2>&1 | tail -25
echo "=== grading $(date +%T)"
python -m pytest -q tests/test_grading_exercises.py -p no:nbval -o addopts="-p no:cacheprovider" 2>&1 | tail -15
echo "=== done $(date +%T)"
