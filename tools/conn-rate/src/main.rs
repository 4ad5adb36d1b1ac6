//! conn-rate: opens TCP connections to ADDR:PORT from T threads for S seconds, each waiting for
//! the server to close before the next, and prints the rate of completed connections per second.
//! Failed connections are counted and reported on stderr, not in the rate.
//!
//! Usage: conn-rate ADDR PORT SECONDS [THREADS]
//!        conn-rate --serve PORT   (the other end: accept, getpeername, close; IPv4 and IPv6)

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: conn-rate ADDR PORT SECONDS [THREADS] | conn-rate --serve PORT");
        ExitCode::from(2)
    };
    if args.first().map(String::as_str) == Some("--serve") {
        return match args.get(1).map(|p| p.parse::<u16>()) {
            Some(Ok(port)) => serve(port),
            _ => usage(),
        };
    }
    if args.len() < 3 || args.len() > 4 {
        return usage();
    }
    let (Ok(port), Ok(secs)) = (args[1].parse::<u16>(), args[2].parse::<f64>()) else {
        return usage();
    };
    let threads = match args.get(3).map(|t| t.parse::<usize>()) {
        None => 2,
        Some(Ok(t)) if t > 0 => t,
        _ => return usage(),
    };
    let Some(addr) = (args[0].as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        eprintln!("conn-rate: bad address {}", args[0]);
        return ExitCode::from(2);
    };
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let (done, failed) = (done.clone(), failed.clone());
            std::thread::spawn(move || worker(addr, end, &done, &failed))
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let f = failed.load(Ordering::Relaxed);
    if f > 0 {
        eprintln!("conn-rate: {f} connections failed");
    }
    println!("{:.1}", done.load(Ordering::Relaxed) as f64 / elapsed);
    ExitCode::SUCCESS
}

fn worker(addr: SocketAddr, end: Instant, done: &AtomicU64, failed: &AtomicU64) {
    let mut buf = [0u8; 64];
    while Instant::now() < end {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                // The server closes after accept + getpeername: read until EOF.
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
                done.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                failed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Accepts connections on PORT (one dual-stack listener: IPv4 clients appear v4-mapped), asks
/// each for its peer and closes it.
fn serve(port: u16) -> ExitCode {
    let listener = match TcpListener::bind(("::", port)) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("conn-rate: bind [::]:{port}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("serving");
    for s in listener.incoming().flatten() {
        let _ = s.peer_addr();
    }
    ExitCode::SUCCESS
}
