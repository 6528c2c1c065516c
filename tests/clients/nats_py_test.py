"""Interop with the official Python client (nats-py) against natrium.

Usage: python3 nats_py_test.py HOST:PORT HOST:PORT_WITH_AUTH(user u, pass p)
           TLS_HOST:PORT(--tlsverify) CA_PEM CLIENT_CERT_PEM CLIENT_KEY_PEM
Exits non-zero with a message on the first mismatch.
"""
import asyncio
import ssl
import sys

import nats
from nats.errors import NoRespondersError

URL, AUTH_URL = (f"nats://{a}" for a in sys.argv[1:3])
TLS_URL = f"tls://{sys.argv[3]}"
CA, CERT, KEY = sys.argv[4:7]


def check(what, got, want):
    if got != want:
        sys.exit(f"nats-py {what}: got {got!r}, want {want!r}")
    print(f"nats-py {what}: ok")


async def main():
    nc = await nats.connect(URL, allow_reconnect=False)
    sub = await nc.subscribe("greet.*")
    await nc.publish("greet.other.deep", b"not for greet.*")
    await nc.publish("greet.joe", b"hello")
    msg = await sub.next_msg(timeout=5)
    check("wildcard pub/sub", (msg.subject, msg.data), ("greet.joe", b"hello"))

    async def respond(m):
        await m.respond(b"pong:" + m.data)

    await nc.subscribe("svc", cb=respond)
    reply = await nc.request("svc", b"ping", timeout=5)
    check("request/reply", reply.data, b"pong:ping")

    hsub = await nc.subscribe("h")
    await nc.publish("h", b"body", headers={"X-A": "1", "X-B": "two"})
    hm = await hsub.next_msg(timeout=5)
    check("headers", (hm.headers, hm.data), ({"X-A": "1", "X-B": "two"}, b"body"))

    try:
        await nc.request("nobody.home", b"x", timeout=5)
        sys.exit("nats-py no responders: request did not fail")
    except NoRespondersError:
        print("nats-py no responders: ok")

    counts = [0, 0, 0]
    done = asyncio.Event()

    def member(i):
        async def cb(_m):
            counts[i] += 1
            if sum(counts) == 30:
                done.set()
        return cb

    for i in range(3):
        await nc.subscribe("work", queue="q", cb=member(i))
    for _ in range(30):
        await nc.publish("work", b"job")
    await asyncio.wait_for(done.wait(), 5)
    check("queue group total", sum(counts), 30)
    check("queue group every member served", all(c > 0 for c in counts), True)

    lim = await nc.subscribe("lim")
    await lim.unsubscribe(limit=2)
    for _ in range(5):
        await nc.publish("lim", b"x")
    await nc.flush()
    # A round trip on another subject: everything for "lim" has arrived.
    await nc.request("svc", b"sync", timeout=5)
    check("unsubscribe after 2", lim.delivered, 2)
    await nc.drain()

    good = await nats.connect(AUTH_URL, user="u", password="p", allow_reconnect=False)
    check("auth accepted", good.is_connected, True)
    await good.close()
    try:
        await nats.connect(AUTH_URL, user="u", password="bad", allow_reconnect=False,
                           max_reconnect_attempts=0, connect_timeout=5)
        sys.exit("nats-py bad password: connect did not fail")
    except Exception as e:  # nats-py raises its generic Error with the server's text
        check("bad password refused", "Authorization Violation" in str(e), True)


    await tls()


def tls_context(with_client_cert):
    ctx = ssl.create_default_context(purpose=ssl.Purpose.SERVER_AUTH, cafile=CA)
    if with_client_cert:
        ctx.load_cert_chain(CERT, KEY)
    return ctx


async def tls():
    nc = await nats.connect(TLS_URL, tls=tls_context(True), tls_hostname="localhost",
                            allow_reconnect=False, connect_timeout=5)
    check("tls: server said tls_required", nc._server_info.get("tls_required"), True)
    # The socket really speaks TLS: asyncio's transport has an SSL object
    # whose peer is the server certificate (SAN localhost) from our CA.
    tls_obj = nc._transport._io_writer.get_extra_info("ssl_object")
    check("tls: session established", tls_obj is not None and tls_obj.version().startswith("TLS"), True)
    peer = tls_obj.getpeercert()
    check("tls: server certificate", ("DNS", "localhost") in peer.get("subjectAltName", ()), True)

    sub = await nc.subscribe("tls.greet")
    await nc.publish("tls.greet", b"hello over tls")
    msg = await sub.next_msg(timeout=5)
    check("tls: pub/sub", (msg.subject, msg.data), ("tls.greet", b"hello over tls"))

    async def respond(m):
        await m.respond(b"pong:" + m.data)

    await nc.subscribe("tls.svc", cb=respond)
    reply = await nc.request("tls.svc", b"ping", timeout=5)
    check("tls: request/reply", reply.data, b"pong:ping")
    await nc.drain()

    # --tlsverify: the same CA trust but no client certificate is refused.
    async def silent(_e):
        pass

    try:
        bare = await nats.connect(TLS_URL, tls=tls_context(False), tls_hostname="localhost",
                                  allow_reconnect=False, max_reconnect_attempts=0,
                                  connect_timeout=5, error_cb=silent)
        await bare.close()
        sys.exit("nats-py tls: connect without a client certificate did not fail")
    except asyncio.TimeoutError as e:  # also nats' TimeoutError: hung, not refused
        sys.exit(f"nats-py tls: connect without a client certificate timed out: {e!r}")
    except Exception as e:  # ssl.SSLError: tlsv13 alert certificate required
        print(f"nats-py tls: refused without client certificate ({type(e).__name__}: {e}): ok")


asyncio.run(asyncio.wait_for(main(), 30))
