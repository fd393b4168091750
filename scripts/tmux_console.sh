#!/usr/bin/env bash
# Start the real console (`labconsole`, no arguments) in a detached tmux pane (160x48 by default),
# wait until it has drawn, optionally press keys and wait for some text, then print the captured
# screen as plain text.
#
#   scripts/tmux_console.sh [--runs DIR] [--presets DIR] [--size COLSxROWS] [--ready TEXT]
#                           [--keys "KEY ..."] [--wait TEXT] [--timeout SECONDS]
#
#   --ready  text that must be on screen before the keys are sent (repeatable), e.g. a sweep
#            in the sidebar: --ready "increments ·" --keys w opens the sweep view
#   --keys   tmux key names sent one by one after the console is up, e.g. --keys "Down a"
#   --wait   text that must be on screen before the capture; repeat it for several
#            (default: the footer's "Quit")
#
# Polls the pane instead of sleeping; exits 1 (printing the last capture) if the text never shows.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
python="$root/.venv/bin/python"
[ -x "$python" ] || python="python3"
runs="$root/runs"
presets="$root/presets"
size="160x48"
keys=""
waits=()
readies=()
timeout=30

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --presets) presets="$2"; shift 2 ;;
    --size) size="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --ready) readies+=("$2"); shift 2 ;;
    --wait) waits+=("$2"); shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown option: $1 (see --help)" >&2; exit 2 ;;
  esac
done

cols="${size%x*}"
rows="${size#*x}"
session="labconsole-$$"
cleanup() { tmux kill-session -t "$session" 2>/dev/null || true; }
trap cleanup EXIT

# wait_text TEXT: poll the pane every 0.2 s until TEXT is on it, or fail after $timeout seconds.
wait_text() {
  local deadline=$(( $(date +%s) + timeout ))
  until tmux capture-pane -p -t "$session" | grep -qF -- "$1"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "timed out after ${timeout}s waiting for: $1" >&2
      tmux capture-pane -p -t "$session"
      return 1
    fi
    sleep 0.2
  done
}

# wait_stable: poll until two captures 0.25 s apart are the same (the console redraws at most
# 4 times a second), or $timeout seconds pass.
wait_stable() {
  local deadline=$(( $(date +%s) + timeout )) before after
  before="$(tmux capture-pane -p -t "$session")"
  while :; do
    sleep 0.25
    after="$(tmux capture-pane -p -t "$session")"
    [ "$after" = "$before" ] || [ "$(date +%s)" -ge "$deadline" ] && break
    before="$after"
  done
}

# Size the window first, then start the console in it, so it never draws at a default size.
tmux new-session -d -s "$session" -x "$cols" -y "$rows" "sleep 600"
tmux resize-window -t "$session" -x "$cols" -y "$rows" 2>/dev/null || true
# COLUMNS and LINES would override the pane size (a caller such as pytest may export them).
tmux respawn-pane -k -t "$session" \
  "cd '$root' && env -u COLUMNS -u LINES TERM=xterm-256color '$python' -m labconsole.cli --runs-dir '$runs' --presets-dir '$presets'; sleep 30"
wait_text "Quit"
for text in "${readies[@]+"${readies[@]}"}"; do
  wait_text "$text"
done
for key in $keys; do
  tmux send-keys -t "$session" "$key"
  sleep 0.3  # let the console handle one key before the next (a key is not text to poll for)
done
for text in "${waits[@]+"${waits[@]}"}"; do
  wait_text "$text"
done
wait_stable
tmux capture-pane -p -t "$session"
