#!/usr/bin/env bash
# benches/leaf_compare.sh — messages/s through a leaf-node link, natrium
# beside nats-server in the same position, same run (load generator:
# examples/leafbench.rs: a raw-protocol publisher on one server, a
# subscriber on the other, clock from the first byte published to the last
# message received).
#
#   bash benches/leaf_compare.sh            # ROUNDS=3, MSGS=500000, SIZE=128
#   QUICK=1 bash benches/leaf_compare.sh    # 1 round, 100000 messages
#
# Positions (each with a FRESH pair of servers on free ports per round):
#   leaf: a nats-server hub; the leaf is natrium, then nats-server.
#   hub:  a nats-server leaf; the hub is natrium, then nats-server.
# Directions: edge->core (publish on the leaf, subscribe on the hub) and
# core->edge. Cells are the best round; ratio = natrium / nats-server.
# Besides msgs/s (which on a shared machine swing with everyone else's
# load), the CPU time the server in the position spent per message
# (utime+stime from /proc/PID/stat around the run; lowest of the rounds):
# that cost is what decides whether natrium's side can be the bottleneck,
# and it barely depends on the neighbours' load. CPU ratio = nats-server's
# cost / natrium's.
#
# nats-server: NATS_SERVER_BIN, else target/nats-server/bin/nats-server
# (installed by .ci/run), else PATH. Every process started here is stopped
# by its pid.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "[leaf_compare] $*" >&2; }
# shellcheck source=benches/lib.sh
source benches/lib.sh

ROUNDS=${ROUNDS:-3}
MSGS=${MSGS:-500000}
SIZE=${SIZE:-128}
if [[ -n "${QUICK:-}" ]]; then
    ROUNDS=1
    MSGS=100000
fi

NATS=${NATS_SERVER_BIN:-}
[[ -z "$NATS" && -x target/nats-server/bin/nats-server ]] && NATS=target/nats-server/bin/nats-server
[[ -z "$NATS" ]] && NATS=$(command -v nats-server || true)
[[ -z "$NATS" && -x /usr/sbin/nats-server ]] && NATS=/usr/sbin/nats-server
if [[ -z "$NATS" ]]; then
    log "nats-server not found (set NATS_SERVER_BIN)"
    exit 2
fi
log "nats-server $(server_version "$NATS") at $NATS"

timeout 1500 cargo build --release --bin natrium >&2
NATRIUM=target/release/natrium
# leafbench is std-only: built with rustc directly, without the examples'
# dev-dependencies.
LEAFBENCH=target/release/examples/leafbench
mkdir -p target/release/examples
rustc --edition 2024 -O examples/leafbench.rs -o "$LEAFBENCH" >&2

TMP=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    rm -rf "$TMP"
}
trap cleanup EXIT

# start_server KIND CONF -> prints the pid; KIND is natrium or nats
start_server() {
    local kind=$1 conf=$2 pid
    if [[ $kind == natrium ]]; then
        "$NATRIUM" -c "$conf" >"$conf.log" 2>&1 &
    else
        "$NATS" -c "$conf" >"$conf.log" 2>&1 &
    fi
    pid=$!
    echo "$pid"
}

wait_port() { # PORT PID
    local i
    for i in $(seq 1 200); do
        [[ "$(port_owner "$1" "$2")" == ok ]] && return 0
        sleep 0.05
    done
    log "port $1 never opened by pid $2"
    return 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
TCK=$(getconf CLK_TCK)

# run_pair POSITION KIND ROUND -> prints "up down up_ns down_ns": msgs/s each
# way and the position server's CPU nanoseconds per message
run_pair() {
    local position=$1 kind=$2 round=$3
    local cp lp hp ep hub_pid edge_pid hub_kind edge_kind hub_conf edge_conf
    cp=$(free_port); lp=$(free_port); ep=$(free_port)
    hub_conf="$TMP/hub-$position-$kind-$round.conf"
    edge_conf="$TMP/edge-$position-$kind-$round.conf"
    if [[ $position == leaf ]]; then hub_kind=nats; edge_kind=$kind; else hub_kind=$kind; edge_kind=nats; fi
    printf 'host: 127.0.0.1\nport: %s\nleafnodes { host: 127.0.0.1, port: %s }\n' "$cp" "$lp" >"$hub_conf"
    printf 'host: 127.0.0.1\nport: %s\nleafnodes { remotes: [ { url: "nats-leaf://127.0.0.1:%s" } ] }\n' "$ep" "$lp" >"$edge_conf"
    hub_pid=$(start_server "$hub_kind" "$hub_conf"); PIDS+=("$hub_pid")
    wait_port "$cp" "$hub_pid"
    edge_pid=$(start_server "$edge_kind" "$edge_conf"); PIDS+=("$edge_pid")
    wait_port "$ep" "$edge_pid"
    local up down pos_pid t0 t1 t2 up_ns down_ns
    pos_pid=$edge_pid; [[ $position == hub ]] && pos_pid=$hub_pid
    t0=$(cpu_ticks "$pos_pid")
    up=$(timeout 600 "$LEAFBENCH" --pub "127.0.0.1:$ep" --sub "127.0.0.1:$cp" --msgs "$MSGS" --size "$SIZE" --label "$position-$kind-up" |
        sed -n 's/.*"msgs_per_sec":\([0-9]*\).*/\1/p')
    t1=$(cpu_ticks "$pos_pid")
    down=$(timeout 600 "$LEAFBENCH" --pub "127.0.0.1:$cp" --sub "127.0.0.1:$ep" --msgs "$MSGS" --size "$SIZE" --label "$position-$kind-down" |
        sed -n 's/.*"msgs_per_sec":\([0-9]*\).*/\1/p')
    t2=$(cpu_ticks "$pos_pid")
    up_ns=$(( (t1 - t0) * 1000000000 / TCK / MSGS ))
    down_ns=$(( (t2 - t1) * 1000000000 / TCK / MSGS ))
    stop_pid "$edge_pid"; stop_pid "$hub_pid"
    PIDS=()
    echo "${up:-0} ${down:-0} $up_ns $down_ns"
}

declare -A BEST CPU
for round in $(seq 1 "$ROUNDS"); do
    for position in leaf hub; do
        order=(natrium nats)
        (( round % 2 == 0 )) && order=(nats natrium)
        for kind in "${order[@]}"; do
            read -r up down up_ns down_ns < <(run_pair "$position" "$kind" "$round")
            log "round $round: $position=$kind edge->core $up msgs/s ($up_ns ns CPU/msg), core->edge $down msgs/s ($down_ns ns CPU/msg)"
            for dir in up down; do
                v=${!dir}
                k="$position-$kind-$dir"
                (( v > ${BEST[$k]:-0} )) && BEST[$k]=$v
                c="${dir}_ns"; c=${!c}
                (( c > 0 )) && { [[ -z "${CPU[$k]:-}" ]] || (( c < CPU[$k] )); } && CPU[$k]=$c
            done
        done
    done
done

ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{a/b:.2f}x' if b else 'n/a')" "$1" "$2"; }
echo
echo "Leaf link throughput, ${SIZE}-byte messages, ${MSGS} per run, best of ${ROUNDS} (nats-server $(server_version "$NATS"))"
echo
echo "| natrium's position | direction | natrium msgs/s | nats-server msgs/s | ratio | natrium ns CPU/msg | nats-server ns CPU/msg | CPU ratio |"
echo "|---|---|---|---|---|---|---|---|"
for position in leaf hub; do
    for dir in up down; do
        label="edge -> core"; [[ $dir == down ]] && label="core -> edge"
        n=${BEST[$position-natrium-$dir]:-0}; s=${BEST[$position-nats-$dir]:-0}
        nc=${CPU[$position-natrium-$dir]:-0}; sc=${CPU[$position-nats-$dir]:-0}
        echo "| $position | $label | $n | $s | $(ratio "$n" "$s") | $nc | $sc | $(ratio "$sc" "$nc") |"
    done
done
