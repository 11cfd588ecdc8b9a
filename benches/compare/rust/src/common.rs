//! What both comparison servers share: their flags, their runtime and the line that says they listen.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};

/// `--port N` (default 3000, 0 picks one), `--threads N` (tokio worker threads, default 1) and
/// `--host ADDR` (default 127.0.0.1).
pub(crate) struct Args {
    pub(crate) addr: SocketAddr,
    pub(crate) threads: usize,
}

fn usage(name: &str) -> ! {
    eprintln!("usage: {name} [--port N] [--threads N] [--host ADDR]");
    std::process::exit(2);
}

pub(crate) fn parse_args(name: &str) -> Args {
    let mut port = 3000u16;
    let mut threads = 1usize;
    let mut host: IpAddr = [127, 0, 0, 1].into();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--port" => port = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(name)),
            "--threads" => {
                threads = args.next().and_then(|v| v.parse().ok()).filter(|&n| n > 0).unwrap_or_else(|| usage(name))
            }
            "--host" => host = args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| usage(name)),
            "-h" | "--help" => usage(name),
            other => {
                eprintln!("unknown flag {other}");
                usage(name);
            }
        }
    }
    Args { addr: SocketAddr::new(host, port), threads }
}

/// A multi-thread runtime with `threads` workers (1 by default, so a server can be pinned to one core).
pub(crate) fn runtime(threads: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build().expect("a tokio runtime")
}

/// Prints `listening on http://ADDR`, which the comparison script waits for.
pub(crate) fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on http://{addr}");
    let _ = out.flush();
}
