// Interop with the official JavaScript client (nats.js v2) against natrium.
// Usage: node nats_js_test.mjs HOST:PORT HOST:PORT_WITH_AUTH(user u, pass p)
//          TLS_HOST:PORT(--tlsverify) CA_PEM CLIENT_CERT_PEM CLIENT_KEY_PEM
// Exits non-zero with a message on the first mismatch.
import { connect, StringCodec, headers, ErrorCode } from "nats";

const [url, authUrl, tlsUrl, caFile, certFile, keyFile] = process.argv.slice(2);
const sc = StringCodec();
const fail = (msg) => { console.error(`nats.js ${msg}`); process.exit(1); };
const check = (what, got, want) => {
  if (JSON.stringify(got) !== JSON.stringify(want)) fail(`${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
  console.log(`nats.js ${what}: ok`);
};
setTimeout(() => fail("timed out"), 30000).unref();

const nc = await connect({ servers: url, reconnect: false });
const sub = nc.subscribe("greet.*", { max: 1 });
nc.publish("greet.other.deep", sc.encode("not for greet.*"));
nc.publish("greet.joe", sc.encode("hello"));
for await (const m of sub) check("wildcard pub/sub", [m.subject, sc.decode(m.data)], ["greet.joe", "hello"]);

nc.subscribe("svc", { callback: (_e, m) => m.respond(sc.encode("pong:" + sc.decode(m.data))) });
const r = await nc.request("svc", sc.encode("ping"), { timeout: 5000 });
check("request/reply", sc.decode(r.data), "pong:ping");

const h = headers();
h.append("X-A", "1");
h.append("X-A", "2");
const hs = nc.subscribe("h", { max: 1 });
nc.publish("h", sc.encode("body"), { headers: h });
for await (const m of hs) check("multi-value headers", [m.headers.values("X-A"), sc.decode(m.data)], [["1", "2"], "body"]);

try {
  await nc.request("nobody.home", sc.encode("x"), { timeout: 5000 });
  fail("no responders: request did not fail");
} catch (e) {
  check("no responders", e.code, ErrorCode.NoResponders);
}

const counts = [0, 0, 0];
let all;
const allDone = new Promise((res) => { all = res; });
for (let i = 0; i < 3; i++) {
  nc.subscribe("work", { queue: "q", callback: () => { counts[i]++; if (counts.reduce((a, b) => a + b) === 30) all(); } });
}
for (let i = 0; i < 30; i++) nc.publish("work", sc.encode("job"));
await allDone;
check("queue group total", counts.reduce((a, b) => a + b), 30);
check("queue group every member served", counts.every((c) => c > 0), true);
check("rtt", (await nc.rtt()) >= 0, true);
await nc.drain();

const nc2 = await connect({ servers: authUrl, user: "u", pass: "p", reconnect: false });
check("auth accepted", nc2.isClosed(), false);
await nc2.close();
try {
  await connect({ servers: authUrl, user: "u", pass: "bad", reconnect: false });
  fail("bad password: connect did not fail");
} catch (e) {
  check("bad password refused", e.code, "AUTHORIZATION_VIOLATION");
}

// TLS with --tlsverify: a client certificate from the test CA is required.
const tc = await connect({ servers: tlsUrl, tls: { caFile, certFile, keyFile }, reconnect: false, timeout: 5000 });
check("tls: server said tls_required", tc.info?.tls_required, true);
// The socket really is a TLS socket, authenticated against our CA.
const sock = tc.protocol.transport.socket;
check("tls: session established", [sock.encrypted === true, sock.authorized === true], [true, true]);
check("tls: server certificate", /DNS:localhost/.test(sock.getPeerCertificate().subjectaltname ?? ""), true);
const ts = tc.subscribe("tls.greet", { max: 1 });
tc.publish("tls.greet", sc.encode("hello over tls"));
for await (const m of ts) check("tls: pub/sub", [m.subject, sc.decode(m.data)], ["tls.greet", "hello over tls"]);
tc.subscribe("tls.svc", { callback: (_e, m) => m.respond(sc.encode("pong:" + sc.decode(m.data))) });
const tr = await tc.request("tls.svc", sc.encode("ping"), { timeout: 5000 });
check("tls: request/reply", sc.decode(tr.data), "pong:ping");
await tc.drain();
try {
  const bare = await connect({ servers: tlsUrl, tls: { caFile }, reconnect: false, maxReconnectAttempts: 0, timeout: 5000 });
  await bare.close();
  fail("tls: connect without a client certificate did not fail");
} catch (e) {
  if (e.code === ErrorCode.Timeout || e.code === ErrorCode.ConnectionTimeout) fail(`tls: connect without a client certificate timed out: ${e.message}`);
  console.log(`nats.js tls: refused without client certificate (${e.code ?? e.name}: ${e.message}): ok`);
}
