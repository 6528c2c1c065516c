//! Feeds arbitrary bytes to `natrium::monitor::http::parse_request`, the
//! parser of the monitoring port's request heads, the way the server uses it
//! (`HttpConn::read` in src/monitor/mod.rs): the connection's buffer grows
//! read by read, at most `MAX_REQUEST` bytes, and the whole buffer is
//! parsed again after each read.
//!
//! Checked for every input:
//! - nothing panics (`parse_request`, `parse_query`, `Request::param`);
//! - growing the buffer is consistent, whatever the split into reads: over
//!   the prefixes of the input the outcome is `Ok(None)` (need more) for a
//!   while, then either `Ok(Some(r))` with the same `r` for every longer
//!   prefix (bytes after the head are ignored), or an error for every longer
//!   prefix (an error is never followed by `Ok`); the shortest complete
//!   prefix ends in `\n` (the blank line closing the head);
//! - `Ok(None)` only below `MAX_REQUEST` bytes (a client cannot make the
//!   server buffer more), and a complete head is at most `MAX_REQUEST`;
//! - a request's path starts with `/` and has no `?`; for an origin-form
//!   target (`/p?q`) the path is the target up to `?` and the query is
//!   `parse_query` of the rest (the target is read back with `httparse`;
//!   targets containing `://` are skipped for now, see the known bug in
//!   `check_request`);
//! - `param(k)` is the value of the last pair named `k`;
//! - `parse_query` on the input itself (as lossy UTF-8): no panic, at most
//!   one pair per non-empty `&`-separated part, and without `%` or `+` it
//!   decodes nothing.
//!
//! Prefixes checked: every length up to 512, every 64th beyond, the 32
//! around `MAX_REQUEST`, the whole input, and every length in the 64 before
//! the first prefix that is not `Ok(None)` (so the exact transition is seen).
//! Run with `-max_len=9000` to reach the `MAX_REQUEST` (8 KiB) limit.

#![no_main]

use libfuzzer_sys::fuzz_target;
use natrium::monitor::http::{BadRequest, MAX_REQUEST, Request, parse_query, parse_request};
use std::collections::{BTreeMap, BTreeSet};

type Outcome = Result<Option<Request>, BadRequest>;

fuzz_target!(|data: &[u8]| {
    check_query(&String::from_utf8_lossy(data));

    let n = data.len();
    let mut lens: BTreeSet<usize> = (0..=n.min(512)).collect();
    lens.extend((512..=n).step_by(64));
    lens.extend(MAX_REQUEST.saturating_sub(16)..=(MAX_REQUEST + 16).min(n));
    lens.insert(n);
    let mut outcomes: BTreeMap<usize, Outcome> =
        lens.into_iter().map(|k| (k, parse_request(&data[..k]))).collect();
    let first_done = outcomes
        .iter()
        .find(|(_, out)| !matches!(out, Ok(None)))
        .map(|(&k, _)| k);
    if let Some(k) = first_done {
        for j in k.saturating_sub(64)..k {
            outcomes.entry(j).or_insert_with(|| parse_request(&data[..j]));
        }
    }

    let mut prev: Option<(usize, Outcome)> = None;
    let mut completed = false;
    for (k, out) in outcomes {
        let buf = &data[..k];
        match &out {
            Ok(None) => assert!(k < MAX_REQUEST, "Ok(None) at {k} bytes, limit {MAX_REQUEST}"),
            // Later complete prefixes must equal the first (checked below).
            Ok(Some(req)) if !completed => check_request(buf, req),
            Ok(Some(_)) => {}
            Err(_) => {}
        }
        if let Some((pk, p)) = &prev {
            match p {
                Ok(None) => {}
                Ok(Some(_)) => assert_eq!(&out, p, "{pk} bytes gave a request, {k} bytes differ"),
                Err(e) => assert!(out.is_err(), "{pk} bytes gave {e:?}, {k} bytes gave {out:?}"),
            }
        }
        if matches!(out, Ok(Some(_))) && !completed {
            completed = true;
            // The first complete prefix: is it the exact end of the head?
            if matches!(prev, Some((pk, Ok(None))) if pk + 1 == k) {
                assert_eq!(buf.last(), Some(&b'\n'), "head completed at {k} without a newline");
                assert!(k <= MAX_REQUEST);
            }
        }
        prev = Some((k, out));
    }
});

fn check_request(buf: &[u8], req: &Request) {
    assert!(req.path.starts_with('/'), "path {:?}", req.path);
    assert!(!req.path.contains('?'), "path {:?}", req.path);
    for (k, _) in &req.query {
        let last = req.query.iter().rev().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        assert_eq!(req.param(k), last);
    }
    // Read the target back with httparse (as parse_request does).
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    assert!(matches!(parsed.parse(buf), Ok(httparse::Status::Complete(_))));
    let target = parsed.path.expect("a complete request has a target");
    // An origin-form target is split at its first `?`, whatever follows
    // (`/connz?next=http://a/b` once went to `/b`: seed
    // `origin-form-scheme-in-query`).
    if target.starts_with('/') {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        assert_eq!(req.path, path, "origin-form target {target:?}");
        assert_eq!(req.query, parse_query(query), "origin-form target {target:?}");
    }
}

fn check_query(s: &str) {
    let pairs = parse_query(s);
    let parts: Vec<&str> = s.split('&').filter(|p| !p.is_empty()).collect();
    assert_eq!(pairs.len(), parts.len());
    if !s.contains(['%', '+']) {
        for ((k, v), part) in pairs.iter().zip(&parts) {
            let (pk, pv) = part.split_once('=').unwrap_or((part, ""));
            assert_eq!((k.as_str(), v.as_str()), (pk, pv));
        }
    }
}
