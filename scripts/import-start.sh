#!/bin/bash
# import-start.sh: `timd import --store` of a JSON Lines file into a new
# store, then the first `timd serve` on it, timed from exec to /healthz
# 200 (issue 10, points 4 and 6; BENCHMARKS.md).
#
#   scripts/import-start.sh TIMD_BINARY FILE.jsonl ATTR_NAMES
#
# WORK (default /tmp/timd-import) holds the store, which each run replaces.
set -euo pipefail
BIN=$(realpath "$1"); FILE=$(realpath "$2"); NAMES=$3
WORK=${WORK:-/tmp/timd-import}; PORT=${PORT:-27490}
KEY=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e
mkdir -p "$WORK"; cd "$WORK"; rm -rf S
"$BIN" serve --listen 127.0.0.1:$PORT --store S --app 1400000001:$KEY:administrator > serve0.log 2>&1 &
sp=$!; for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz > /dev/null && break; sleep 0.1; done
kill $sp; wait $sp || true
echo "== import $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
/usr/bin/time -f "import: %e s wall, %U s user, %S s system, max RSS %M KB" \
	"$BIN" import --store S --sdkappid 1400000001 --attr-names "$NAMES" --progress 1h "$FILE" 2> import.err
grep -v "^timd import: line" import.err || true
echo "== first start $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
s=$(date +%s.%N)
"$BIN" serve --listen 127.0.0.1:$PORT --store S --app 1400000001:$KEY:administrator --log-level info > serve.log 2>&1 &
sp=$!
until curl -sf http://127.0.0.1:$PORT/healthz > /dev/null; do sleep 0.05; done
echo "healthz 200 after $(echo "$(date +%s.%N) - $s" | bc) s; RSS $(ps -o rss= -p $sp) KB"
grep -o 'msg="audience index ready".*' serve.log
kill $sp; wait $sp || true
