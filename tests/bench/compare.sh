#!/usr/bin/env bash
# Kafka and the original backend side by side, in one run, with one client (kafka-load):
# prepares the original (SHARED/peer/setup.sh, cached in $CARGO_TARGET_DIR/peer), builds the
# release binaries, starts both servers on loopback and runs `kafka-load compare`, which
# prints the machine, the command and a Markdown table of every run. See docs/performance.md.
#
# Usage: tests/bench/compare.sh [--shared DIR] [kafka-load compare options...]
#   --shared DIR   the shared directory holding peer/ (default: ../shared from the repo root)
#   e.g. tests/bench/compare.sh --repeat 3 --duration 5
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
shared=$repo/../shared
if [[ ${1:-} == --shared ]]; then
    shared=${2:?--shared needs a directory}
    shift 2
fi
target=${CARGO_TARGET_DIR:-$repo/target}
peer=$target/peer

echo "== preparing the original in $peer (cached)" >&2
"$shared/peer/setup.sh" "$peer" >&2
echo "== building the release binaries" >&2
(cd "$repo" && cargo build --release --locked -p kafka-tests --bin kafka-load >&2 \
    && cargo build --release --locked -p kafka-server --bin kafka-server >&2)

model=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
memory=$(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)
echo "# Kafka vs the original, side by side"
echo
echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "- commit: $(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- . || echo ' (with uncommitted changes)')"
echo "- machine: $(nproc) cores ($model), $memory"
echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "- command: tests/bench/compare.sh $*"
echo
status=0
"$target/release/kafka-load" compare --kafka-bin "$target/release/kafka-server" \
    --spawn-original "$peer" "$@" || status=$?
echo
echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
