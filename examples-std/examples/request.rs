//! Request/reply with nothing but `std::net`: run `reply` in one terminal and
//! `request` in another.
//!
//! ```text
//! cargo run --example request -- reply   [host:port] <subject>
//! cargo run --example request -- request [host:port] <subject> <message>
//! ```
//! A request is a PUB with a reply subject; the responder publishes its answer
//! to that subject, where the requester has subscribed. The requester says
//! `no responders` when nobody is subscribed (the server's 503 status,
//! asked for with `no_responders` in CONNECT) and gives up after 5 s.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long `request` waits for an answer.
const TIMEOUT: Duration = Duration::from_secs(5);

/// A message: its reply subject, its header block (HMSG) and payload.
type Msg = (Option<String>, Option<Vec<u8>>, Vec<u8>);

/// Reads one MSG (control line and payload); answers PINGs on the way.
fn next_msg(reader: &mut impl BufRead, writer: &mut impl Write) -> std::io::Result<Option<Msg>> {
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            ["MSG", _subj, _sid, rest @ ..] if !rest.is_empty() => {
                let size: usize = rest[rest.len() - 1].parse().unwrap_or(0);
                let mut payload = vec![0; size + 2];
                reader.read_exact(&mut payload)?;
                payload.truncate(size);
                let reply = (rest.len() == 2).then(|| rest[0].to_string());
                return Ok(Some((reply, None, payload)));
            }
            // HMSG subject sid [reply] header_len total_len
            ["HMSG", _subj, _sid, rest @ ..] if rest.len() >= 2 => {
                let total: usize = rest[rest.len() - 1].parse().unwrap_or(0);
                let hdr: usize = rest[rest.len() - 2].parse().unwrap_or(0).min(total);
                let mut payload = vec![0; total + 2];
                reader.read_exact(&mut payload)?;
                payload.truncate(total);
                let body = payload.split_off(hdr);
                let reply = (rest.len() == 3).then(|| rest[0].to_string());
                return Ok(Some((reply, Some(payload), body)));
            }
            ["PING"] => writer.write_all(b"PONG\r\n")?,
            _ if line.starts_with("-ERR") => eprintln!("server said: {}", line.trim_end()),
            _ => {}
        }
    }
}

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mode = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let addr = if args.first().is_some_and(|a| a.contains(':')) {
        args.remove(0)
    } else {
        "127.0.0.1:4222".to_string()
    };
    let stream = TcpStream::connect(&addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut info = String::new();
    reader.read_line(&mut info)?;
    // headers + no_responders: a request nobody listens to gets a 503 at once.
    writer.write_all(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,\"no_responders\":true}\r\n",
    )?;

    match (mode.as_str(), args.first(), args.get(1)) {
        ("reply", Some(subject), _) => {
            // A queue group lets several responders share the load.
            write!(writer, "SUB {subject} responders 1\r\n")?;
            eprintln!("answering requests on {subject}");
            while let Some((reply, _headers, payload)) = next_msg(&mut reader, &mut writer)? {
                if let Some(reply) = reply {
                    let answer = format!("echo: {}", String::from_utf8_lossy(&payload));
                    write!(writer, "PUB {reply} {}\r\n{answer}\r\n", answer.len())?;
                }
            }
        }
        ("request", Some(subject), Some(message)) => {
            let inbox = format!("_INBOX.{}", std::process::id());
            write!(writer, "SUB {inbox} 1\r\n")?;
            // Stop listening after the first answer.
            writer.write_all(b"UNSUB 1 1\r\n")?;
            write!(
                writer,
                "PUB {subject} {inbox} {}\r\n{message}\r\n",
                message.len()
            )?;
            reader.get_ref().set_read_timeout(Some(TIMEOUT))?;
            match next_msg(&mut reader, &mut writer) {
                Ok(Some((_, Some(headers), _))) if headers.starts_with(b"NATS/1.0 503") => {
                    eprintln!("no responders on {subject}");
                    std::process::exit(1);
                }
                Ok(Some((_, _, answer))) => println!("{}", String::from_utf8_lossy(&answer)),
                Ok(None) => eprintln!("server closed the connection"),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    eprintln!("request timed out after {TIMEOUT:?}");
                    std::process::exit(1);
                }
                Err(e) => return Err(e),
            }
        }
        _ => {
            eprintln!(
                "usage: request reply [host:port] <subject>\n       request request [host:port] <subject> <message>"
            );
            std::process::exit(2);
        }
    }
    Ok(())
}
