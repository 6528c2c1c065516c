//! The little HTTP/1.1 the monitoring endpoint speaks: parsing one request
//! (with `httparse`, resumable over partial reads, bounded in size), its
//! query string, and encoding one response with `Connection: close`.
//!
//! One request per connection: the response says `Connection: close`, and
//! the connection is closed once it is written. Nothing here does I/O.

use super::timefmt;
use std::time::SystemTime;

/// Largest request head accepted (request line and headers); a longer one
/// gets 431 and the connection is closed.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Most headers a request may carry (more is answered like an oversized head).
const MAX_HEADERS: usize = 64;

/// The request method, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the GET response without its body.
    Head,
    /// Anything else (answered 405).
    Other,
}

/// One parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// The path, without the query string (percent-escapes left as sent).
    pub path: String,
    /// The query parameters in order, percent-decoded (`+` is a space).
    pub query: Vec<(String, String)>,
}

impl Request {
    /// The last value of query parameter `name`, if present.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request cannot be answered normally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadRequest {
    /// Not HTTP (400).
    Malformed,
    /// The head is over [`MAX_REQUEST`] bytes or 64 headers (431).
    TooLarge,
}

/// Parses the bytes received so far: `Ok(None)` while the head is incomplete.
/// A body, if any, is ignored (no endpoint takes one).
pub fn parse_request(buf: &[u8]) -> Result<Option<Request>, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= MAX_REQUEST => {}
        Ok(httparse::Status::Complete(_)) => return Err(BadRequest::TooLarge),
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST => {
            return Err(BadRequest::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(BadRequest::TooLarge),
        Err(_) => return Err(BadRequest::Malformed),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(BadRequest::Malformed);
    };
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        _ => Method::Other,
    };
    // Origin form (`/varz?x=1`), or absolute form (`http://host/varz`):
    // only a target that does not start with `/` can be absolute (a `://`
    // in an origin-form query is just data).
    let (path, query) = if target.starts_with('/') {
        target.split_once('?').unwrap_or((target, ""))
    } else {
        let Some((_, rest)) = target.split_once("://") else {
            return Err(BadRequest::Malformed);
        };
        // The authority ends at the first `/` or `?`.
        let rest = &rest[rest.find(['/', '?']).unwrap_or(rest.len())..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        (if path.is_empty() { "/" } else { path }, query)
    };
    Ok(Some(Request {
        method,
        path: path.to_string(),
        query: parse_query(query),
    }))
}

/// `a=1&b=x%2Ey&c` → `[("a","1"), ("b","x.y"), ("c","")]`.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (a space, as in HTML forms); a malformed
/// escape is kept as it is, invalid UTF-8 is replaced.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) {
                    (Some(h), Some(l)) => {
                        out.push((h * 16 + l) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A response to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// The body (left out for HEAD).
    pub body: Vec<u8>,
}

/// JSON bodies.
pub const JSON: &str = "application/json";
/// Plain text bodies (errors).
pub const TEXT: &str = "text/plain; charset=utf-8";
/// The index page.
pub const HTML: &str = "text/html; charset=utf-8";

impl Response {
    /// 200 with a JSON body.
    pub fn json(body: Vec<u8>) -> Response {
        Response {
            status: 200,
            content_type: JSON,
            body,
        }
    }

    /// An error status with a plain-text body (a newline is added).
    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            content_type: TEXT,
            body: format!("{text}\n").into_bytes(),
        }
    }

    /// The response for a request that could not be parsed.
    pub fn bad_request(why: BadRequest) -> Response {
        match why {
            BadRequest::Malformed => Response::text(400, "400 Bad Request"),
            BadRequest::TooLarge => Response::text(431, "431 Request Header Fields Too Large"),
        }
    }

    /// The bytes on the wire: status line, headers, and (unless `head_only`)
    /// the body.
    pub fn encode(&self, head_only: bool, now: SystemTime) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {} {}\r\n",
            self.status,
            reason_phrase(self.status)
        );
        if self.content_type == JSON {
            // Dashboards in browsers read the endpoints from other origins.
            out.push_str("Access-Control-Allow-Origin: *\r\n");
        }
        if self.status == 405 {
            out.push_str("Allow: GET, HEAD\r\n");
        }
        out.push_str(&format!(
            "Content-Type: {}\r\nDate: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.content_type,
            timefmt::http_date(now),
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        if !head_only {
            bytes.extend_from_slice(&self.body);
        }
        bytes
    }
}

/// The reason phrase of the statuses used here.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn complete_request_with_query() {
        let req =
            parse_request(b"GET /connz?subs=1&limit=2&test=a%2Eb+c HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.path, "/connz");
        assert_eq!(req.param("subs"), Some("1"));
        assert_eq!(req.param("limit"), Some("2"));
        assert_eq!(req.param("test"), Some("a.b c"));
        assert_eq!(req.param("nope"), None);
    }

    #[test]
    fn request_split_across_reads_at_every_byte() {
        let raw = b"HEAD /varz HTTP/1.0\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(parse_request(&raw[..cut]), Ok(None), "cut at {cut}");
        }
        let req = parse_request(raw).unwrap().unwrap();
        assert_eq!((req.method, req.path.as_str()), (Method::Head, "/varz"));
    }

    #[test]
    fn absolute_form_and_other_methods() {
        let req = parse_request(b"POST http://h:8222/subsz?x HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((req.method, req.path.as_str()), (Method::Other, "/subsz"));
        assert_eq!(req.query, vec![("x".to_string(), String::new())]);
        // A `?` right after the authority starts the query.
        let req = parse_request(b"GET http://h?x=/varz HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.path, "/");
        assert_eq!(req.query, vec![("x".to_string(), "/varz".to_string())]);
        let req = parse_request(b"GET http://h HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.path, "/");
    }

    #[test]
    fn a_url_inside_an_origin_form_query_is_data() {
        // Found by the fuzzer: `://` in the query made this absolute form.
        let req = parse_request(b"GET /connz?next=http://a/b HTTP/1.1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(req.path, "/connz");
        assert_eq!(
            req.query,
            vec![("next".to_string(), "http://a/b".to_string())]
        );
        assert_eq!(
            parse_request(b"GET varz HTTP/1.1\r\n\r\n"),
            Err(BadRequest::Malformed)
        );
    }

    #[test]
    fn malformed_and_oversized() {
        assert_eq!(
            parse_request(b"GARBAGE\r\n\r\n"),
            Err(BadRequest::Malformed)
        );
        assert_eq!(
            parse_request(b"GET varz HTTP/1.1\r\n\r\n"),
            Err(BadRequest::Malformed)
        );
        assert_eq!(
            parse_request(b"\x16\x03\x01\x00\xa5\x01\x00"),
            Err(BadRequest::Malformed)
        );
        // A head that never ends within the limit.
        let mut long = b"GET /varz HTTP/1.1\r\nX-Long: ".to_vec();
        long.resize(MAX_REQUEST, b'a');
        assert_eq!(parse_request(&long), Err(BadRequest::TooLarge));
        assert_eq!(parse_request(&long[..MAX_REQUEST - 1]), Ok(None));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(parse_request(&many), Err(BadRequest::TooLarge));
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%zz%4"), "a b%zz%4");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%41%42"), "AB");
    }

    #[test]
    fn encoding() {
        let at = std::time::UNIX_EPOCH;
        let json = String::from_utf8(Response::json(b"{}".to_vec()).encode(false, at)).unwrap();
        assert_eq!(
            json,
            "HTTP/1.1 200 OK\r\nAccess-Control-Allow-Origin: *\r\nContent-Type: application/json\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
        );
        let head = String::from_utf8(Response::json(b"{}".to_vec()).encode(true, at)).unwrap();
        assert!(head.ends_with("Content-Length: 2\r\nConnection: close\r\n\r\n"));
        let e = String::from_utf8(Response::text(405, "x").encode(false, at)).unwrap();
        assert!(e.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"));
        assert!(!e.contains("Access-Control"));
    }
}
