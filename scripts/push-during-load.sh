#!/bin/bash
# push-during-load.sh: push latency before, during and after a 1M-account
# load over REST (issue 10 point 4; BENCHMARKS.md). A fresh store; 1,000
# accounts prepared; then back-to-back 30 s windows of a stored push every
# EVERY (default 100ms) to a rotating Condition. The load (1M accounts:
# multiaccount_import + set_attr + add_tag, 16 callers) starts with the
# third window; the run ends three windows after it finished. Each window
# prints the bench's "all" row: pushes, failures, call p50, p99, max.
#
#   scripts/push-during-load.sh TIMD_BINARY
set -euo pipefail
BIN=$(realpath "$1")
WORK=${WORK:-/tmp/timd-pushload}; PORT=${PORT:-27480}
KEY=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e
mkdir -p "$WORK"; cd "$WORK"; rm -rf B; ulimit -n 20000
"$BIN" serve --listen 127.0.0.1:$PORT --store B --limits off --log-level warn --app 1400000001:$KEY:administrator > serve.log 2>&1 &
sp=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz > /dev/null && break; sleep 0.2; done
B=("$BIN" bench --addr http://127.0.0.1:$PORT --sdkappid 1400000001 --key $KEY)
"${B[@]}" --ops "" --duration 1ms --accounts 1000 > /dev/null
rm -f loaddone; after=0
for w in $(seq 20); do
	if [ "$w" = 3 ]; then
		( s=$(date +%s.%N); "${B[@]}" --ops "" --duration 1ms --accounts 1000000 > load.log 2>&1
		  echo "load wall $(echo "$(date +%s.%N) - $s" | bc) s" >> load.log; touch loaddone ) &
	fi
	st=$(date -u +%T); l=$(cut -d' ' -f1 /proc/loadavg)
	r=$("${B[@]}" --ops "" --push-every "${EVERY:-100ms}" --duration 30s --prepare=false --accounts 1000 --baseline=false 2>&1 | grep -E "^ +all " | head -1)
	echo "window $w $st load=$l load-done=$([ -f loaddone ] && echo y || echo n): $r"
	if [ -f loaddone ]; then after=$((after + 1)); [ "$after" -ge 3 ] && break; fi
done
tail -1 load.log
kill $sp; wait $sp || true
