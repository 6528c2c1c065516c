#!/usr/bin/env bash
# Interop with other official NATS clients: nats-py (PyPI) and nats.js v2
# (npm), installed here into target/clients, run against a natrium built by
# cargo: plain, user/password, and TLS with required client certificates
# (a throwaway CA made with openssl); then JetStream (-js -sd <temp dir>):
# the nats.js JetStream suite against one more natrium, and the nats-py one,
# which starts (and restarts) its own natrium on a temp store dir. Part of
# .ci/run. Every step is bounded in time. NATRIUM_BIN=path runs the suites
# against that binary instead of building one.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$root/target/clients"
mkdir -p "$work"
cd "$root"

if [ -n "${NATRIUM_BIN:-}" ]; then
    bin="$NATRIUM_BIN"
else
    timeout 1200 cargo build --quiet --bin natrium
    bin="$root/target/debug/natrium"
fi

# The clients, from the registries (kept between runs in target/clients).
if [ ! -x "$work/venv/bin/python" ]; then
    python3 -m venv "$work/venv"
fi
timeout 300 "$work/venv/bin/python" -m pip install --quiet --disable-pip-version-check 'nats-py>=2.6,<3'
if [ ! -d "$work/node/node_modules/nats" ]; then
    mkdir -p "$work/node"
    (cd "$work/node" && timeout 300 npm install --silent --no-audit --no-fund 'nats@^2.28' >/dev/null)
fi
cp "$root/tests/clients/nats_js_test.mjs" "$root/tests/clients/nats_js_jetstream_test.mjs" "$work/node/"

pids=()
certs=""
stores=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    # The servers are gone before their store dirs are removed.
    for p in "${pids[@]}"; do timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || true; done
    if [ -n "$certs" ]; then rm -rf "$certs"; fi
    for d in "${stores[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# A throwaway CA, a server certificate for localhost and 127.0.0.1 and a
# client certificate, both signed by it, in a fresh temp dir. openssl is
# required: TLS interop is never silently skipped.
if ! command -v openssl >/dev/null; then
    if command -v apt-get >/dev/null; then
        timeout 300 apt-get install -y -qq openssl >/dev/null
    fi
    command -v openssl >/dev/null || {
        echo "tests/clients/run.sh: openssl is needed for the TLS interop (install it)" >&2
        exit 1
    }
fi
certs=$(mktemp -d)
ssl() { timeout 60 openssl "$@" 2>>"$certs/openssl.log" || { cat "$certs/openssl.log" >&2; return 1; }; }
ssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=natrium interop CA" \
    -keyout "$certs/ca-key.pem" -out "$certs/ca.pem" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash"
# Signs NAME.pem (key NAME-key.pem) by the CA with the extensions in $2.
leaf() {
    local name="$1" ext="$2"
    printf '%b' "$ext" >"$certs/$name.ext"
    ssl req -new -newkey rsa:2048 -nodes -subj "/CN=$name" \
        -keyout "$certs/$name-key.pem" -out "$certs/$name.csr"
    ssl x509 -req -in "$certs/$name.csr" -days 2 -CA "$certs/ca.pem" -CAkey "$certs/ca-key.pem" \
        -CAcreateserial -extfile "$certs/$name.ext" -out "$certs/$name.pem"
}
common='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid:always\n'
leaf server "${common}extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
leaf client "${common}extendedKeyUsage=clientAuth\n"

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
jsstore=$(mktemp -d)
stores+=("$jsstore")
start js -js -sd "$jsstore"
start tls --tlsverify --tlscert "$certs/server.pem" --tlskey "$certs/server-key.pem" \
    --tlscacert "$certs/ca.pem"
plain=$(address plain)
auth=$(address auth)
tls=$(address tls)
js=$(address js)
tlsargs=("$tls" "$certs/ca.pem" "$certs/client.pem" "$certs/client-key.pem")

timeout 60 "$work/venv/bin/python" "$root/tests/clients/nats_py_test.py" "$plain" "$auth" "${tlsargs[@]}"
(cd "$work/node" && timeout 60 node nats_js_test.mjs "$plain" "$auth" "${tlsargs[@]}")

# JetStream. nats-py starts natrium -js -sd on its own store dir (it stops it
# with SIGTERM and starts it again on the same dir to check what survives).
pystore=$(mktemp -d)
stores+=("$pystore")
: >"$work/natrium-py-jetstream.log"
timeout 90 "$work/venv/bin/python" "$root/tests/clients/nats_py_jetstream_test.py" \
    "$bin" "$pystore" "$work/natrium-py-jetstream.log"
(cd "$work/node" && timeout 60 node nats_js_jetstream_test.mjs "$js")
echo "interop: 4 passed, 0 failed"   # nats-py, nats.js, each plain/auth/tls and JetStream
