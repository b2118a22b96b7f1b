#!/usr/bin/env bash
# cluster.sh starts a local three-node timd cluster on one PostgreSQL
# database and one NATS server: the layout of cmd/timd's TestE2EThreeNodes
# (same flags; the test picks free ports and a private schema and subject
# prefix). It runs in the foreground; Ctrl-C stops the three nodes.
#
#   TIMD_STORE   postgres:// URL   [postgres://postgres@127.0.0.1:5432/test]
#   TIMD_NATS    NATS URL          [nats://127.0.0.1:4222]
#   PREFIX       --nats-prefix     [timd-local]
#   PORTS        the three ports   ["8081 8082 8083"]
#   TIMD         the timd binary   [built from this checkout into $DIR]
#   DIR          logs and binary   [./cluster-run]
#   TIMD_APP     the app, SDKAPPID:KEY:ADMIN (optional; as --app)
#
# Other TIMD_* variables (TIMD_LIMITS, TIMD_LOG_LEVEL, ...) reach every node.
set -euo pipefail
cd "$(dirname "$0")/.."
export TIMD_STORE="${TIMD_STORE:-postgres://postgres@127.0.0.1:5432/test}"
export TIMD_NATS="${TIMD_NATS:-nats://127.0.0.1:4222}"
export TIMD_NATS_PREFIX="${PREFIX:-timd-local}"
PORTS="${PORTS:-8081 8082 8083}"
DIR="${DIR:-./cluster-run}"
mkdir -p "$DIR"
if [ -z "${TIMD:-}" ]; then
  TIMD="$DIR/timd"
  go build -o "$TIMD" ./cmd/timd
fi

# The schema first, once, so that three nodes do not race to create it.
"$TIMD" migrate --store "$TIMD_STORE"

pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait
}
trap stop INT TERM EXIT
start() { # port
  "$TIMD" serve --listen "127.0.0.1:$1" >"$DIR/node-$1.out" 2>"$DIR/node-$1.log" &
  pids+=("$!")
}
healthy() { # port
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$1/healthz" >/dev/null 2>&1 && { echo "node http://127.0.0.1:$1 up (log: $DIR/node-$1.log)"; return 0; }
    sleep 0.5
  done
  echo "node on port $1 did not come up; see $DIR/node-$1.log" >&2
  return 1
}
# One node first: on an empty store without TIMD_APP it creates the
# development app, which the others then find.
set -- $PORTS
start "$1"; healthy "$1"
first=$1; shift
for port in "$@"; do start "$port"; done
for port in "$@"; do healthy "$port"; done
cat "$DIR/node-$first.out"  # a first start prints the development app, once
echo "three nodes on $TIMD_STORE, NATS $TIMD_NATS (prefix $TIMD_NATS_PREFIX); Ctrl-C stops them"
wait
