#!/bin/sh
# Issue 15's GPU checks as one prepared device call: the CUDA kernels' tests on the real GPU,
# then benchmarks/kernels.py --device gpu at 16384x4096, the size (it prints the host
# overhead per call first). From the repository root on the GPU machine (the device tool's
# `run`, one call, timeout_s=480):
#
#     sh benchmarks/gpu_check_kernels.sh
#
# Needs numba-cuda, CuPy, pytest, pytest-timeout and nvidia-ml-py (the H100/H200 images hold
# them); nothing from this repository is installed: PYTHONPATH is the checkout. Logs go to
# $OUT (the device tool brings them back), else to ./gpu-check. Each step has its own time
# limit, under 6 minutes in all, so the call ends inside the tool's 10 with what ran so far.
# The tests take about 3 minutes in the CUDA simulator on cpu-2c.
set -u
out=${OUT:-gpu-check}
mkdir -p "$out"
export PYTHONPATH=. PYTHONUNBUFFERED=1 NUMBA_CACHE_DIR=/tmp/aiinfra-numba-cache
py=${PYTHON:-python3}
{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv
    $py -m pip list 2>/dev/null | grep -i -E '^(numba|numba-cuda|cupy[a-z0-9-]*|llvmlite|numpy) '
} >"$out/machine.txt" 2>&1
cat "$out/machine.txt"
timeout 200 $py -m pytest -q -p no:cacheprovider -o addopts= \
    tests/kernels/test_kernels_gpu.py tests/kernels/test_kernels_cuda.py >"$out/gpu-tests.txt" 2>&1
echo "gpu tests rc $?"
tail -5 "$out/gpu-tests.txt"
timeout 150 $py benchmarks/kernels.py --device gpu --scale 0.5 >"$out/kernels-16384x4096.txt" 2>&1
echo "kernels.py --device gpu --scale 0.5 rc $?"
grep -v '^|' "$out/kernels-16384x4096.txt"
