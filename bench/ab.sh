#!/usr/bin/env bash
# Alternate bench/pipeline.py runs of several commits on this machine, so that a drift in the
# machine's speed falls on all of them (bench/results/ab-*.md were made this way).
#   bench/ab.sh ROUNDS "PIPELINE FLAGS" COMMIT...     e.g.
#   bench/ab.sh 3 "--duration 20 --latency-duration 5 --raw-messages 3000" ad865aa dd2ad7e HEAD
# Each commit runs from its own worktree with this checkout's .venv (PYTHONPATH first).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=$1; flags=$2; shift 2
out=$(mktemp -d /tmp/wegweiser-ab-XXXX)
for commit in "$@"; do git worktree add -q --detach "$out/$commit" "$commit"; done
trap 'for c in "$@"; do git worktree remove --force "$out/$c"; done' EXIT
for round in $(seq "$rounds"); do
  for commit in "$@"; do
    log="$out/$commit-$round.log"
    (cd "$out/$commit" && PYTHONPATH="$out/$commit" "$OLDPWD/.venv/bin/python" bench/pipeline.py $flags > "$log" 2>&1)
    echo "$commit round $round: $(grep -o "'publish_msg_s': [0-9.]*" "$log" | head -1)" \
      "$(grep -o "'referrals_s': [0-9.]*" "$log" | head -1)" \
      "latency $(grep -o "'p50_ms': [0-9.]*" "$log" | tail -1) $(grep -o "'p99_ms': [0-9.]*" "$log" | tail -1)"
  done
done
