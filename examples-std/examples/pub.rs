//! Publish messages with nothing but `std::net`: the NATS protocol in a few lines.
//!
//! ```text
//! cargo run --example pub -- [host:port] <subject> <message> [count]
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

fn main() -> std::io::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let addr = if args.first().is_some_and(|a| a.contains(':')) {
        args.remove(0)
    } else {
        "127.0.0.1:4222".to_string()
    };
    let (Some(subject), Some(message)) = (args.first(), args.get(1)) else {
        eprintln!("usage: pub [host:port] <subject> <message> [count]");
        std::process::exit(2);
    };
    let count: usize = args.get(2).and_then(|c| c.parse().ok()).unwrap_or(1);

    let stream = TcpStream::connect(&addr)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;

    // The server speaks first: one INFO line describing itself.
    let mut info = String::new();
    reader.read_line(&mut info)?;

    // verbose:false turns off the +OK after every command.
    writer.write_all(
        b"CONNECT {\"verbose\":false,\"pedantic\":false,\"name\":\"pub example\"}\r\n",
    )?;
    for _ in 0..count {
        // PUB <subject> <#bytes>\r\n<payload>\r\n
        write!(writer, "PUB {subject} {}\r\n{message}\r\n", message.len())?;
    }
    // PING/PONG is the barrier: when PONG arrives, every PUB before it was processed.
    writer.write_all(b"PING\r\n")?;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            eprintln!("server closed the connection");
            std::process::exit(1);
        }
        match line.trim_end() {
            "PONG" => break,
            "PING" => writer.write_all(b"PONG\r\n")?,
            other if other.starts_with("-ERR") => {
                eprintln!("server said: {other}");
                std::process::exit(1);
            }
            _ => {}
        }
    }
    println!("published {count} message(s) to {subject}");
    Ok(())
}
