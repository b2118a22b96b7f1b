#!/bin/bash
# rss-bench.sh: process RSS per account at 1M accounts with 3 attributes
# and 2 tags each, after a REST load and after a 10-minute op mix (issue 10
# point 3; BENCHMARKS.md, "Memory per account").
#
#   scripts/rss-bench.sh TIMD_BINARY [MIX_DURATION]
set -euo pipefail
BIN=$(realpath "$1"); MIX=${2:-10m}
WORK=${WORK:-/tmp/timd-rss}; PORT=${PORT:-27500}; PPROF=${PPROF:-27501}
KEY=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e
mkdir -p "$WORK"; cd "$WORK"; rm -rf S
"$BIN" serve --listen 127.0.0.1:$PORT --store S --limits off --log-level warn --pprof-listen 127.0.0.1:$PPROF \
	--app 1400000001:$KEY:administrator > serve.log 2>&1 &
sp=$!
for _ in $(seq 100); do curl -sf http://127.0.0.1:$PORT/healthz > /dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS/ {print $2 * 1024}' /proc/$sp/status; }
heap() { curl -s http://127.0.0.1:$PORT/metrics | awk '/^go_memstats_heap_inuse_bytes|^go_gc_heap_live_bytes|^go_memstats_heap_idle_bytes|^go_memstats_heap_released_bytes/ {printf "%s=%.1fMB ", $1, $2/1e6}'; }
report() { r=$(rss); echo "$1: RSS $(echo "$r / 1000000" | bc -l | xargs printf %.1f) MB, $(echo "($r - $base) / 1000000" | bc) B/account over the start; $(heap)"; }
base=$(rss); echo "start: RSS $(echo "$base / 1000000" | bc -l | xargs printf %.1f) MB, load $(cut -d' ' -f1 /proc/loadavg)"
B=("$BIN" bench --addr http://127.0.0.1:$PORT --sdkappid 1400000001 --key $KEY)
s=$(date +%s)
"${B[@]}" --ops "" --duration 1ms --accounts 1000000 --concurrency 16 > load.log 2>&1
echo "load: $(( $(date +%s) - s )) s"
report "right after the load"
sleep 120
report "2 min after the load"
"${B[@]}" --ops set_attr,get_attr,add_tag,get_tag,remove_attr --duration "$MIX" --accounts 1000000 \
	--prepare=false --baseline=false > mix.log 2>&1
grep -E "^ +all " mix.log || tail -3 mix.log
report "right after the $MIX mix"
sleep 60
report "1 min after the mix"
curl -s -o heap.pprof "http://127.0.0.1:$PPROF/debug/pprof/heap?gc=1"
report "after a forced GC"
kill $sp; wait $sp || true
