#!/usr/bin/env bash
# Interop with other official NATS clients: nats-py (PyPI) and nats.js v2
# (npm), installed here into target/clients, run against a natrium built by
# cargo. Part of .ci/run. Every step is bounded in time.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$root/target/clients"
mkdir -p "$work"
cd "$root"

cargo build --quiet --bin natrium
bin="$root/target/debug/natrium"

# The clients, from the registries (kept between runs in target/clients).
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
fi
timeout 300 "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check 'nats-py>=2.6,<3'
if [ ! -d "$work/node/node_modules/nats" ]; then
    mkdir -p "$work/node"
    (cd "$work/node" && timeout 300 npm install --silent --no-audit --no-fund 'nats@^2.28' >/dev/null)
fi
cp "$root/tests/clients/nats_js_test.mjs" "$work/node/"

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

# Starts natrium on a free port (logging to target/clients/natrium-NAME.log).
start() {
    local name="$1"; shift
    "$bin" -a 127.0.0.1 -p -1 "$@" >/dev/null 2>"$work/natrium-$name.log" &
    pids+=($!)
}
# Prints the host:port natrium NAME listens on, once it says so.
address() {
    local log="$work/natrium-$1.log" addr
    for _ in $(seq 100); do
        addr=$(sed -n 's/.*Listening for client connections on //p' "$log")
        if [ -n "$addr" ]; then echo "$addr"; return 0; fi
        sleep 0.1
    done
    echo "natrium did not start: $(cat "$log")" >&2
    return 1
}
start plain
start auth --user u --pass p
plain=$(address plain)
auth=$(address auth)

timeout 60 "$work/venv/bin/python" "$root/tests/clients/nats_py_test.py" "$plain" "$auth"
(cd "$work/node" && timeout 60 node nats_js_test.mjs "$plain" "$auth")
echo "interop: 2 passed, 0 failed"   # nats-py, nats.js
