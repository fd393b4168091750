#!/usr/bin/env bash
# Every benchmark in full mode, one after another, on an idle machine (see docs/benchmarks.md):
# each prints its tables and a SUMMARY line; this ends by repeating the SUMMARY lines.
# Takes about 46 minutes on the 2-core dev box when idle (sampling.py alone ~18: it trains a
# quick model and samples 500 labels with 1000-step DDPM).
#
#   bench/run_all.sh [--quick] [--save DIR] [--compare DIR] [--app]
#
#   --quick        every script's smoke mode instead (~4 min idle)
#   --save DIR     write DIR/<script>.json (the figures of each script)
#   --compare DIR  print each script's figures beside DIR/<script>.json from an earlier run
#   --app          bench/stream.py also measures the real console attached in tmux
# The output is also kept in bench-<date>.log in the working directory.
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || python="python3"
quick=() save="" compare="" app=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=(--quick); shift ;;
    --save) save="$2"; shift 2 ;;
    --compare) compare="$2"; shift 2 ;;
    --app) app=(--app); shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "run_all.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done
[ -n "$save" ] && mkdir -p "$save"
log="bench-$(date +%Y%m%d-%H%M%S).log"
failed=0

run() {  # run NAME ARGS...: one script, its own flags, then --save / --compare when asked
  local name="$1"; shift
  local extra=()
  [ -n "$save" ] && extra+=(--save "$save/$name.json")
  [ -n "$compare" ] && [ -f "$compare/$name.json" ] && extra+=(--compare "$compare/$name.json")
  echo; echo "=== $name $(date +%H:%M:%S) (load $(cut -d' ' -f1 /proc/loadavg)) ==="
  local start=$SECONDS
  "$python" -u "$root/bench/$name.py" "${quick[@]}" "$@" "${extra[@]}" \
    || { echo "!!! $name failed"; failed=1; }
  echo "=== $name took $((SECONDS - start)) s"
}

{
  echo "labconsole benchmarks: $(date), $(nproc) cores, $("$python" -c 'import torch; print("torch", torch.__version__)')"
  run train_throughput
  run sampling
  run eval_cost
  run stream "${app[@]}"
  run time_to_c
  run console_open
  run report_cost
  run sweep_view
  run failure_modes
  echo; echo "=== umap_cache (first manifold_r2 of a process, with and without the numba cache)"
  "$python" -u "$root/bench/umap_cache.py" || { echo "!!! umap_cache failed"; failed=1; }
  echo; echo "=== gpu.sh"
  "$root/bench/gpu.sh"; rc=$?
  [ $rc -eq 3 ] && echo "(no CUDA device here: gpu.sh skipped)" || { [ $rc -ne 0 ] && failed=1; }
  exit $failed
} 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
echo; echo "=== summaries"
grep '^SUMMARY' "$log"
echo "(full output: $log)"
exit "$status"
