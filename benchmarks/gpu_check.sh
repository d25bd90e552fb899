#!/usr/bin/env bash
# The acceptance command of issue 16 (the GPU path): bash benchmarks/gpu_check.sh [OUT] [--dry-run]
# On a machine with CUDA it runs every section of benchmarks/gpu_check.py on the GPU within
# 9 minutes and writes OUT/gpu_check.log and OUT/summary.md (default OUT: benchmarks/results/);
# without CUDA, or with --dry-run, a tiny version of every section runs on the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
exec timeout 570 "$PYTHON" benchmarks/gpu_check.py "$@"
