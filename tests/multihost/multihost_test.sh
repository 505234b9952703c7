#!/usr/bin/env bash
# Multi-host test on one machine: the gateway, the router, two expert workers
# and the client each run in their own network namespace, joined by veth
# pairs to a bridge (10.77.0.0/24, reachable only from those namespaces).
#
#   1. generate through the gateway (greedy; the answer is remembered);
#   2. cut worker 1's link (ip link set down): the next request must end
#      with UNAVAILABLE within the router's dispatch deadline (+ slack);
#   3. restore the link: requests succeed again, with the same answer;
#   4. add 5 ms to worker 1's replies and report the decode slowdown
#      (tc netem; where the kernel has no netem, a user-space relay in the
#      worker's namespace delays its replies instead, and says so).
#
# Everything it creates (namespaces, bridge, veths, processes) is removed on
# every exit path. Exit 77 (ctest: skipped) with the reason where network
# namespaces cannot be created (not root, no CAP_NET_ADMIN, no iproute2).
#
# Usage: multihost_test.sh BIN_DIR MODEL_DIR
set -uo pipefail

BIN=${1:?usage: multihost_test.sh BIN_DIR MODEL_DIR}
MODEL=${2:?usage: multihost_test.sh BIN_DIR MODEL_DIR}
HERE="$(cd "$(dirname "$0")" && pwd)"
DISPATCH_DEADLINE_MS=2000
DELAY_MS=5
START=$(date +%s%N)

log() { printf '[multihost %5.1fs] %s\n' "$(( ($(date +%s%N) - START) / 1000000 ))e-3" "$*"; }
# Under scripts/test.sh (MOE_TEST_STRICT=1) a missing prerequisite fails the run.
skip() {
  if [ "${MOE_TEST_STRICT:-0}" = 1 ]; then echo "FAILED: prerequisite missing (MOE_TEST_STRICT=1): $*"; exit 1; fi
  echo "SKIPPED: $*"; exit 77
}
fail() { log "FAIL: $*"; FAILED=1; exit 1; }

for b in moe-expert-worker moe-router moe-gateway moe-client moe-health-probe; do
  [ -x "$BIN/$b" ] || fail "$BIN/$b is missing (build the project first)"
done
[ -f "$MODEL/config.json" ] || fail "$MODEL is not a model directory"

# --- can we make namespaces here? -------------------------------------------
command -v ip >/dev/null || skip "iproute2's ip is not installed (apt-get install iproute2)"
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root (CAP_NET_ADMIN); run as root to test across hosts"

ID=$(( $$ % 100000 ))
P="mh$ID"                      # names stay within IFNAMSIZ (15)
NS_GW="$P-gw" NS_RT="$P-rt" NS_W0="$P-w0" NS_W1="$P-w1" NS_CL="$P-cl"
BR="${P}br"
WORK=$(mktemp -d /tmp/moe-multihost.XXXXXX)
PIDS=()
CREATED_NS=()
HOST_LINKS=()
FAILED=0

cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  # Deleting our end of each veth deletes the pair even while the namespace
  # lingers (sockets still retransmitting over a cut link keep it alive).
  for link in "${HOST_LINKS[@]}"; do ip link del "$link" 2>/dev/null; done
  for ns in "${CREATED_NS[@]}"; do
    # Anything still running inside one of our namespaces was started by us.
    for pid in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
    ip netns del "$ns" 2>/dev/null
  done
  ip link del "$BR" 2>/dev/null
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    for f in "$WORK"/*.log; do [ -f "$f" ] && { echo "--- $(basename "$f")"; tail -n 20 "$f"; }; done
  fi
  rm -rf "$WORK"
  log "cleaned up (namespaces, links, processes)"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! err=$(ip netns add "$NS_GW" 2>&1); then
  skip "cannot create a network namespace here: $err"
fi
CREATED_NS+=("$NS_GW")
ip link add "$BR" type bridge || fail "cannot create a bridge"
ip link set "$BR" up

# host NAME NS ADDRESS: a namespace with eth0 on the bridge.
host() {
  local ns=$1 addr=$2 veth="$P${1#"$P"-}"
  if [ "$ns" != "$NS_GW" ]; then ip netns add "$ns" || fail "ip netns add $ns"; CREATED_NS+=("$ns"); fi
  ip link add "$veth" type veth peer name "${veth}p" || fail "veth for $ns"
  HOST_LINKS+=("$veth")
  ip link set "${veth}p" netns "$ns"
  ip link set "$veth" master "$BR" up
  ip -n "$ns" link set "${veth}p" name eth0
  ip -n "$ns" addr add "$addr/24" dev eth0
  ip -n "$ns" link set eth0 up
  ip -n "$ns" link set lo up
}
GW=10.77.0.1 RT=10.77.0.2 W0=10.77.0.10 W1=10.77.0.11 CL=10.77.0.100
host "$NS_GW" $GW
host "$NS_RT" $RT
host "$NS_W0" $W0
host "$NS_W1" $W1
host "$NS_CL" $CL
W1_LINK="${P}w1"
log "namespaces $NS_GW $NS_RT $NS_W0 $NS_W1 $NS_CL on bridge $BR"

# --- latency: tc netem if the kernel has it, else the relay -----------------
NETEM=0
if out=$(ip netns exec "$NS_W1" tc qdisc add dev eth0 root netem delay 0ms 2>&1); then
  NETEM=1
  ip netns exec "$NS_W1" tc qdisc del dev eth0 root
  W1_PORT=7001
  log "tc netem available"
else
  NETEM_WHY="tc netem: ${out:-failed}"
  if [ -r /proc/config.gz ] && zcat /proc/config.gz 2>/dev/null | grep '^# CONFIG_NET_SCH_NETEM is not set' >/dev/null; then
    NETEM_WHY="$NETEM_WHY (kernel built without CONFIG_NET_SCH_NETEM)"
  fi
  log "netem SKIPPED: $NETEM_WHY; worker 1's replies will be delayed by tests/multihost/delay_relay.py instead"
  W1_PORT=7011                 # the worker; the relay takes 7001 on eth0
  : > "$WORK/delay_ms"
fi

# --- the cluster --------------------------------------------------------------
start() {  # start NS LOG ARGV...
  local ns=$1 logf=$2; shift 2
  ip netns exec "$ns" "$@" >"$WORK/$logf" 2>&1 &
  PIDS+=($!)
}
start "$NS_W0" w0.log "$BIN/moe-expert-worker" --model="$MODEL" --experts=mod:0/2 --listen=$W0:7001 --threads=1
if [ $NETEM -eq 1 ]; then
  start "$NS_W1" w1.log "$BIN/moe-expert-worker" --model="$MODEL" --experts=mod:1/2 --listen=$W1:7001 --threads=1
else
  start "$NS_W1" w1.log "$BIN/moe-expert-worker" --model="$MODEL" --experts=mod:1/2 --listen=127.0.0.1:$W1_PORT --threads=1
  start "$NS_W1" relay.log /usr/bin/python3 "$HERE/delay_relay.py" $W1:7001 127.0.0.1:$W1_PORT "$WORK/delay_ms"
fi
start "$NS_RT" router.log "$BIN/moe-router" --model="$MODEL" --workers=$W0:7001,$W1:7001 --listen=$RT:7100 \
  --threads=1 --dispatch-deadline-ms=$DISPATCH_DEADLINE_MS --connect-deadline-ms=30000
start "$NS_GW" gateway.log "$BIN/moe-gateway" --model="$MODEL" --routers=$RT:7100 --listen=$GW:50051 \
  --connect-deadline-ms=30000

wait_serving() {  # NS ADDRESS
  ip netns exec "$1" "$BIN/moe-health-probe" --address="$2" --wait-ms=30000 >/dev/null 2>"$WORK/probe.err" \
    || fail "$2 never reported SERVING: $(cat "$WORK/probe.err")"
}
wait_serving "$NS_W0" $W0:7001
wait_serving "$NS_W1" 127.0.0.1:$W1_PORT
wait_serving "$NS_RT" $RT:7100
# The gateway is asked from the client's namespace: across the bridge.
wait_serving "$NS_CL" $GW:50051
log "all four processes SERVING"

PROMPT="Hello, my dog is cute"
generate() {  # generate MAX_TOKENS TIMEOUT_MS -> stdout text, stderr status; rc of moe-client
  ip netns exec "$NS_CL" "$BIN/moe-client" --gateway=$GW:50051 --prompt="$PROMPT" --max-tokens="$1" \
    --temperature=0 --ignore-eos --timeout-ms="$2"
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# --- 1. generate through the gateway -------------------------------------------
generate 16 20000 >"$WORK/first.out" 2>"$WORK/first.err" || fail "first generation: $(cat "$WORK/first.err")"
[ -s "$WORK/first.out" ] || fail "first generation printed no text"
log "generated across namespaces: $(tr -d '\n' < "$WORK/first.out" | head -c 80)"

# --- 2. cut worker 1's link ------------------------------------------------------
ip link set "$W1_LINK" down
t0=$(now_ms)
if generate 16 20000 >"$WORK/cut.out" 2>"$WORK/cut.err"; then
  fail "generation succeeded with worker 1's link down"
fi
elapsed=$(( $(now_ms) - t0 ))
grep -q "UNAVAILABLE" "$WORK/cut.err" || fail "link down: want UNAVAILABLE, got: $(cat "$WORK/cut.err")"
limit=$(( DISPATCH_DEADLINE_MS + 3000 ))
[ $elapsed -le $limit ] || fail "link down: UNAVAILABLE after $elapsed ms, want <= $limit ms (dispatch deadline $DISPATCH_DEADLINE_MS ms + 3 s)"
log "link down: UNAVAILABLE after $elapsed ms (dispatch deadline $DISPATCH_DEADLINE_MS ms): $(tail -n1 "$WORK/cut.err")"

# --- 3. restore ---------------------------------------------------------------
ip link set "$W1_LINK" up
t0=$(now_ms)
ok=0
while [ $(( $(now_ms) - t0 )) -lt 40000 ]; do
  if generate 16 10000 >"$WORK/again.out" 2>"$WORK/again.err"; then ok=1; break; fi
  sleep 0.5
done
[ $ok -eq 1 ] || fail "link restored: still failing after 40 s: $(cat "$WORK/again.err")"
cmp -s "$WORK/first.out" "$WORK/again.out" || fail "link restored: the answer changed: '$(cat "$WORK/again.out")'"
log "link restored: serving again after $(( $(now_ms) - t0 )) ms, same greedy answer"

# --- 4. latency on worker 1 ----------------------------------------------------
# Decode time per token: (T(40 tokens) - T(8 tokens)) / 32, best of 3 each, so
# that connection set-up and prefill cancel out.
best_ms() {  # best_ms MAX_TOKENS
  local best=999999 i t
  for i in 1 2 3; do
    t=$(now_ms)
    generate "$1" 20000 >/dev/null 2>"$WORK/measure.err" || fail "measurement: $(cat "$WORK/measure.err")"
    t=$(( $(now_ms) - t ))
    [ $t -lt $best ] && best=$t
  done
  echo $best
}
per_token() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 32 }'; }
base=$(per_token "$(best_ms 8)" "$(best_ms 40)")
if [ $NETEM -eq 1 ]; then
  ip netns exec "$NS_W1" tc qdisc add dev eth0 root netem delay ${DELAY_MS}ms || fail "tc netem delay"
  how="tc netem delay ${DELAY_MS}ms on worker 1's eth0"
else
  echo $DELAY_MS > "$WORK/delay_ms"
  sleep 0.2
  how="user-space relay delaying worker 1's replies by ${DELAY_MS} ms (netem unavailable: $NETEM_WHY)"
fi
slow=$(per_token "$(best_ms 8)" "$(best_ms 40)")
layers=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["num_hidden_layers"])' "$MODEL/config.json")
delta=$(awk -v a="$base" -v b="$slow" 'BEGIN { printf "%.2f", b - a }')
log "decode: $base ms/token -> $slow ms/token with $how: +$delta ms/token" \
    "(at most $layers layers x $DELAY_MS ms = $(( layers * DELAY_MS )) ms: one exchange with worker 1 per layer when it holds a chosen expert)"
echo "MULTIHOST_DECODE_SLOWDOWN base_ms_per_token=$base delayed_ms_per_token=$slow delta_ms=$delta delay_ms=$DELAY_MS netem=$NETEM"
# A delay that changed nothing would mean worker 1 was not on the path.
awk -v d="$delta" -v m="$DELAY_MS" 'BEGIN { exit !(d >= m / 2) }' \
  || fail "a ${DELAY_MS} ms delay on worker 1 slowed decode by only $delta ms/token"
log "PASS"
