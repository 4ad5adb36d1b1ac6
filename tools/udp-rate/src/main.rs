//! udp-rate: sends SIZE-byte UDP datagrams to ADDR:PORT from one socket, as fast as the kernel
//! takes them, for SECONDS; prints "SENT SECONDS" (datagrams the kernel accepted, time taken).
//! Datagrams the kernel refused (e.g. ENOBUFS) are counted on stderr, not in SENT.
//!
//! Usage: udp-rate ADDR PORT SECONDS [SIZE]
//!
//! Unlike iperf3 it needs nothing at the other end, so a benchmark can drop the datagrams right
//! after the device under test and count them there: no receiving socket whose backlog (and
//! whose share of the CPU) varies from run to run.

use std::net::{ToSocketAddrs, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Datagrams sent between two looks at the clock.
const BATCH: u64 = 16;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: udp-rate ADDR PORT SECONDS [SIZE]");
        ExitCode::from(2)
    };
    if args.len() < 3 || args.len() > 4 {
        return usage();
    }
    let (Ok(port), Ok(secs)) = (args[1].parse::<u16>(), args[2].parse::<f64>()) else {
        return usage();
    };
    if !(secs > 0.0 && secs < 86400.0) {
        return usage();
    }
    let size = match args.get(3).map(|s| s.parse::<usize>()) {
        None => 64,
        Some(Ok(s)) if s <= 65507 => s,
        _ => return usage(),
    };
    let Some(addr) = (args[0].as_str(), port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
    else {
        eprintln!("udp-rate: bad address {}", args[0]);
        return ExitCode::from(2);
    };
    let bind = if addr.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let sock = match UdpSocket::bind(bind).and_then(|s| s.connect(addr).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp-rate: {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let buf = vec![0u8; size];
    let (mut sent, mut refused) = (0u64, 0u64);
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    while Instant::now() < end {
        for _ in 0..BATCH {
            match sock.send(&buf) {
                Ok(_) => sent += 1,
                Err(_) => refused += 1,
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    if refused > 0 {
        eprintln!("udp-rate: {refused} datagrams refused");
    }
    println!("{sent} {elapsed:.6}");
    ExitCode::SUCCESS
}
