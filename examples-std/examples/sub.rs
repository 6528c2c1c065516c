//! Subscribe and print messages with nothing but `std::net`.
//!
//! ```text
//! cargo run --example sub -- [host:port] <subject> [queue group]
//! ```
//! Subjects may use wildcards: `*` matches one token, `>` the rest.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let addr = if args.first().is_some_and(|a| a.contains(':')) {
        args.remove(0)
    } else {
        "127.0.0.1:4222".to_string()
    };
    let Some(subject) = args.first() else {
        eprintln!("usage: sub [host:port] <subject> [queue group]");
        std::process::exit(2);
    };
    let queue = args.get(1).map(|q| format!("{q} ")).unwrap_or_default();

    let stream = TcpStream::connect(&addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?; // INFO

    writer.write_all(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"sub example\"}\r\n",
    )?;
    // SUB <subject> [queue] <sid>: the sid (here 1) comes back in every MSG.
    write!(writer, "SUB {subject} {queue}1\r\n")?;
    eprintln!("listening on {subject}");

    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            eprintln!("server closed the connection");
            return Ok(());
        }
        let parts: Vec<&str> = line.split_whitespace().collect();
        match parts.as_slice() {
            // MSG <subject> <sid> [reply-to] <#bytes>, then the payload and CRLF.
            ["MSG", subj, _sid, rest @ ..] if !rest.is_empty() => {
                let size: usize = rest[rest.len() - 1].parse().unwrap_or(0);
                let mut payload = vec![0; size + 2];
                reader.read_exact(&mut payload)?;
                payload.truncate(size);
                let reply = if rest.len() == 2 {
                    format!(" (reply to {})", rest[0])
                } else {
                    String::new()
                };
                println!("[{subj}]{reply} {}", String::from_utf8_lossy(&payload));
            }
            // The server checks we are alive; answering keeps the connection.
            ["PING"] => writer.write_all(b"PONG\r\n")?,
            _ if line.starts_with("-ERR") => eprintln!("server said: {}", line.trim_end()),
            _ => {}
        }
    }
}
