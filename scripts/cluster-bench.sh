#!/usr/bin/env bash
# cluster-bench.sh: one node vs three nodes on one PostgreSQL and NATS,
# alternating in one run (BENCHMARKS.md, issue 11). For each cluster:
# - push fan-out: N live clients (`timd bench --live N --push-once`) spread
#   round-robin over the nodes, one push to everyone through the first node;
# - write throughput: the REST op mix OPS (default set_attr) for DUR with C
#   callers, each request to the next node in turn (`--rest-addr`), on
#   ACCOUNTS prepared accounts.
# Needs PostgreSQL (psql, trust auth) and NATS on 127.0.0.1.
set -u
cd "$(dirname "$0")/.."
T=${TIMD:-/tmp/timd-cluster-bench}; N=${N:-2000}
OPS=${OPS:-set_attr}; DUR=${DUR:-15s}; C=${C:-16}; ACCOUNTS=${ACCOUNTS:-20000}
go build -o "$T" ./cmd/timd
KEY=5bd2850fff3ecb11d7c805251c51ee463a25727bddc2385f3fa8bfee1bb93b5e; APP=1400000001
PG=postgres://postgres@127.0.0.1:5432/test
for nodes in 1 3 1 3; do
  s=clbench$nodes$RANDOM
  psql -q -h 127.0.0.1 -U postgres test -c "create schema $s"
  store="$PG?search_path=$s"
  $T migrate --store "$store" >/dev/null
  pids=(); addrs=()
  for i in $(seq 1 $nodes); do
    port=$((18200+i))
    $T serve --listen 127.0.0.1:$port --store "$store" --nats nats://127.0.0.1:4222 --nats-prefix $s --limits off --log-level warn \
      --app $APP:$KEY:administrator >/dev/null 2>/tmp/clbench-$port.log &
    pids+=($!); addrs+=(http://127.0.0.1:$port)
    for _ in $(seq 1 100); do curl -fsS http://127.0.0.1:$port/healthz >/dev/null 2>&1 && break; sleep 0.3; done
  done
  sleep 3 # heartbeats: each node hears the others
  live=$(IFS=,; echo "${addrs[*]}")
  echo "== $nodes node(s), $N clients round-robin over them, push through the first"
  $T bench --addr ${addrs[0]} --live-addr "$live" --sdkappid $APP --key $KEY --live $N --push-once --baseline=false --accounts 1000 2>/dev/null | grep -v "^timd:"
  echo "== $nodes node(s), writes ($OPS, $C callers, $DUR) round-robin over them"
  $T bench --addr ${addrs[0]} --rest-addr "$live" --sdkappid $APP --key $KEY --ops "$OPS" --concurrency $C \
    --duration $DUR --accounts $ACCOUNTS --baseline=false 2>/dev/null | grep -v "^timd:"
  for p in "${pids[@]}"; do kill -TERM $p; done; wait
  psql -q -h 127.0.0.1 -U postgres test -c "drop schema $s cascade" 2>/dev/null
done
