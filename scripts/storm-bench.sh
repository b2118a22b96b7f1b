#!/bin/bash
# storm-bench.sh: issue 10's reconnect storm at 1M accounts (BENCHMARKS.md).
# 10,000 clients reconnect within a second; 990,000 other accounts with the
# storm's profiles; 100 stored pushes, half to everyone, half by Condition.
# The bench runs a bare coder/websocket server writing the same frames
# first, then the same clients against timd.
#
#   scripts/storm-bench.sh TIMD_BINARY [RUNS] [extra timd bench flags]
#
# WORK (default /tmp/timd-storm) holds the generated accounts, a pristine
# store imported once, and each run's copy. SYNC=1 adds /v1/sync after the
# last run. Needs ulimit -n 20000 and, for the figures in BENCHMARKS.md,
# sysctl net.core.somaxconn=65535 net.ipv4.tcp_max_syn_backlog=65535.
set -euo pipefail
BIN=$(realpath "$1"); RUNS=${2:-1}; shift $(( $# >= 2 ? 2 : 1 ))
WORK=${WORK:-/tmp/timd-storm}; PORT=${PORT:-27462}
KEY=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e
mkdir -p "$WORK"; cd "$WORK"
if [ ! -s acc990k.jsonl ]; then
	seq 0 989999 | awk '{printf "{\"UserID\":\"bench%07d\",\"Attrs\":{\"city\":\"c%d\",\"tier\":\"t%d\",\"lang\":\"l%d\"},\"Tags\":[\"tag%d\",\"tag%d\"]}\n", $1, $1%5, $1%3, $1%2, $1%10, 10+$1%7}' > acc990k.jsonl
fi
if [ ! -d S.pristine ]; then
	rm -rf S; "$BIN" serve --listen 127.0.0.1:$PORT --store S --app 1400000001:$KEY:administrator > serve0.log 2>&1 &
	sp=$!; sleep 3; kill $sp; wait $sp || true
	"$BIN" import --store S --sdkappid 1400000001 --attr-names city,tier,lang acc990k.jsonl
	mv S S.pristine
fi
ulimit -n 20000
for run in $(seq "$RUNS"); do
	rm -rf RUN; cp -a S.pristine RUN
	"$BIN" serve --listen 127.0.0.1:$PORT --store RUN --app 1400000001:$KEY:administrator --limits off --log-level warn > serve.log 2>&1 &
	sp=$!
	for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz > /dev/null && break; sleep 0.2; done
	echo "== run $run $(date -u +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
	"$BIN" bench --addr http://127.0.0.1:$PORT --sdkappid 1400000001 --key $KEY --prepare=false \
		--storm 10000 --stored 100 --storm-wait 3m "$@"
	if [ "${SYNC:-}" = 1 ] && [ "$run" = "$RUNS" ]; then
		"$BIN" bench --addr http://127.0.0.1:$PORT --sdkappid 1400000001 --key $KEY --prepare=false \
			--storm 10000 --stored 0 --sync --duration 10s --concurrency 1
	fi
	kill $sp; wait $sp || true
done
