#!/usr/bin/env bash
# The paper-size model on one CUDA GPU, in under 5 minutes: training steps/s at batch 16 and 128
# (bf16 autocast, channels_last, fused AdamW, data on the device; eager, then torch.compile) and
# the projected time of a 320,000-step paper run (the paper: ~6 h on an A100). See bench/gpu.py.
#
#   bench/gpu.sh [--no-compile] [--steps N] [--batches 16 128]   # options go to bench/gpu.py
#   bench/gpu.sh --pack [--ks 1 2 4 8] [--steps N]   # runs per GPU: sweep throughput (bench/gpu_pack.py)
#
# Uses .venv/bin/python beside this checkout if there is one, else python3 on PATH. Exits 3 with
# one line when that Python's torch sees no CUDA device; the whole run is capped at 290 s.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || python="python3"

if ! "$python" -c "import torch" 2>/dev/null; then
  echo "gpu.sh: $python cannot import torch; install the project first (pip install -e .)" >&2
  exit 3
fi
if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  version="$("$python" -c "import torch; print(torch.__version__, 'CUDA', torch.version.cuda or 'none')")"
  gpus="$(command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | head -1 || echo 'nvidia-smi: not found')"
  echo "gpu.sh: no CUDA device for $python (torch $version; $gpus): run this on a machine with one NVIDIA GPU" >&2
  exit 3
fi
cd "$root"
if [ "${1:-}" = "--pack" ]; then
  shift
  exec timeout --signal=INT --kill-after=10 290 "$python" -u bench/gpu_pack.py "$@"
fi
exec timeout --signal=INT --kill-after=10 290 "$python" -u bench/gpu.py "$@"
