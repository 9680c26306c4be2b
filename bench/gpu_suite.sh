#!/usr/bin/env bash
# The GPU suite in one command (bench/gpu_suite.py says what it runs); refuses without CUDA.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${PYTHON:-python}" bench/gpu_suite.py "$@"
