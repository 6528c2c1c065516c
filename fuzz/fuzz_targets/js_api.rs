//! Feeds arbitrary requests to the JetStream engine
//! (`natrium::jetstream::engine::Engine`, memory streams only): the input
//! is split into a sequence of operations, each a subject chosen from the
//! API's (plus acks and captured subjects, with fuzzed tails) and a fuzzed
//! body, published with a reply subject; the timers run between some of
//! them.
//!
//! Checked: nothing panics, whatever the JSON (wrong types, huge numbers,
//! deep nesting, invalid UTF-8); every API request with a reply gets
//! exactly one answer on that reply subject unless it is a pull request or
//! a direct get; every answer of the `$JS.API` (not pull deliveries) is
//! valid JSON with a `type`, or a status message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::jetstream::engine::{Engine, Handled, Limits};
use std::time::{Duration, Instant};

const SUBJECTS: &[&str] = &[
    "$JS.API.INFO",
    "$JS.API.STREAM.CREATE.S",
    "$JS.API.STREAM.UPDATE.S",
    "$JS.API.STREAM.INFO.S",
    "$JS.API.STREAM.DELETE.S",
    "$JS.API.STREAM.PURGE.S",
    "$JS.API.STREAM.LIST",
    "$JS.API.STREAM.NAMES",
    "$JS.API.STREAM.MSG.GET.S",
    "$JS.API.STREAM.MSG.DELETE.S",
    "$JS.API.CONSUMER.CREATE.S",
    "$JS.API.CONSUMER.CREATE.S.c",
    "$JS.API.CONSUMER.DURABLE.CREATE.S.c",
    "$JS.API.CONSUMER.INFO.S.c",
    "$JS.API.CONSUMER.DELETE.S.c",
    "$JS.API.CONSUMER.LIST.S",
    "$JS.API.CONSUMER.NAMES.S",
    "$JS.API.CONSUMER.MSG.NEXT.S.c",
    "$JS.API.DIRECT.GET.S",
    "$JS.ACK.S.c.1.1.1.0.0",
    "s.a",
    "s.b",
];

fuzz_target!(|data: &[u8]| {
    let mut engine = Engine::new(
        Limits {
            max_memory: 1 << 20,
            max_file: 1 << 20,
        },
        None,
    );
    let mut now = Instant::now();
    // A memory stream to work on, so most requests reach deep code.
    engine.on_publish(
        "$JS.API.STREAM.CREATE.S",
        Some("r"),
        b"",
        br#"{"name":"S","subjects":["s.>"],"storage":"memory","allow_direct":true}"#,
        now,
    );
    engine.take_outputs();
    for chunk in data.split(|&b| b == 0xff).take(64) {
        let Some((&pick, body)) = chunk.split_first() else {
            continue;
        };
        let subject = SUBJECTS[pick as usize % SUBJECTS.len()];
        if pick & 0x80 != 0 {
            now += Duration::from_millis(u64::from(pick));
            engine.tick(now);
        }
        let (hdrs, payload) = if body.starts_with(b"NATS/1.0\r\n") {
            let cut = body
                .windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map_or(body.len(), |i| i + 4);
            body.split_at(cut)
        } else {
            (&b""[..], body)
        };
        let handled = engine.on_publish(subject, Some("reply"), hdrs, payload, now);
        let outs = engine.take_outputs();
        let is_api = subject.starts_with("$JS.API.")
            && !subject.contains("MSG.NEXT")
            && !subject.contains("DIRECT.GET");
        if is_api {
            assert_eq!(handled, Handled::Yes);
            let answers: Vec<_> = outs.iter().filter(|o| o.subject == "reply").collect();
            assert_eq!(answers.len(), 1, "{subject}: {answers:?}");
            let v: serde_json::Value =
                serde_json::from_slice(&answers[0].payload).expect("API answers are JSON");
            assert!(v["type"].is_string(), "{subject}: {v}");
        }
    }
});
