//! toa-lb: the TCP-option half of a FULLNAT load balancer, for tests.
//!
//! Receives TCP segments from NFQUEUE queue N (iptables/ip6tables `-j NFQUEUE --queue-num N`,
//! placed where the packet still has the client's source address, e.g. FORWARD after DNAT and
//! before SNAT) and returns each with the TOA option carrying its source address and port:
//! kind 254 length 8 for IPv4, length 20 for IPv6, in the client's SYN, in the segments after
//! it (the handshake's final ACK, as LVS and DPVS do, and whatever may overtake it), or both.
//! Queue only the first few packets of each connection (iptables `connbytes`). A segment that
//! would outgrow the MTU passes unchanged. Prints one line per packet.
//!
//! Usage: toa-lb [--queue N] [--place ack|syn|both] [--variant V] [--count C]
//! V: good (default), or a broken option for tests: bad-len, truncated, zero-len, repeated;
//! random:SEED for fuzzing (each segment a fresh mix of options; they are printed).
//! (C: exit after C packets; default: run until killed)

mod insert;

use nfq::{Queue, Verdict};
use std::io::Write;
use std::process::ExitCode;

/// Queue `num`, whole packets copied (the crate's default range, 65535 bytes). The crate turns
/// ENOBUFS reports off; they stay on, so that a queue that overflowed ends the run loudly as
/// before instead of losing packets unnoticed.
fn bind(num: u16) -> std::io::Result<Queue> {
    let mut q = Queue::open()?;
    q.set_recv_enobufs(true)?;
    q.bind(num)?;
    Ok(q)
}

fn main() -> ExitCode {
    let mut queue = 0u16;
    let mut count: Option<u64> = None;
    let mut place = insert::Place::Ack;
    let mut variant = insert::Variant::Good;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next();
        let n = v.as_deref().map(str::parse::<u64>);
        match (a.as_str(), v.as_deref(), n) {
            ("--queue", _, Some(Ok(n))) if n <= u64::from(u16::MAX) => queue = n as u16,
            ("--count", _, Some(Ok(n))) => count = Some(n),
            ("--place", Some("ack"), _) => place = insert::Place::Ack,
            ("--place", Some("syn"), _) => place = insert::Place::Syn,
            ("--place", Some("both"), _) => place = insert::Place::Both,
            ("--variant", Some(v), _) if insert::Variant::parse(v).is_some() => {
                variant = insert::Variant::parse(v).unwrap_or(variant)
            }
            _ => {
                eprintln!("usage: toa-lb [--queue N] [--place ack|syn|both] [--variant good|bad-len|truncated|zero-len|repeated|kind:K|pair:K|nat64|random:SEED] [--count C]");
                return ExitCode::from(2);
            }
        }
    }
    let mut q = match bind(queue) {
        Ok(q) => q,
        Err(e) => {
            eprintln!("toa-lb: cannot bind NFQUEUE {queue}: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("toa-lb: bound to queue {queue}");
    let mut seen = 0u64;
    let out = std::io::stdout();
    while count.is_none_or(|c| seen < c) {
        let mut msg = match q.recv() {
            Ok(m) => m,
            Err(e) => {
                eprintln!("toa-lb: receive: {e}");
                return ExitCode::FAILURE;
            }
        };
        let pkt = msg.get_payload();
        let verdict = match insert::insert_toa_shown(pkt, place, variant) {
            Ok((new, opt)) => {
                let mut line = format!("inserted {} bytes", new.len() - pkt.len());
                if let insert::Variant::Random(_) = variant {
                    // The segment's options now, for a test to hold the server's answer against.
                    line.push(':');
                    for b in &opt {
                        line.push_str(&format!(" {b:02x}"));
                    }
                }
                let _ = writeln!(out.lock(), "{line}");
                msg.set_payload(new);
                msg.set_verdict(Verdict::Accept);
                q.verdict(msg)
            }
            Err(skip) => {
                let _ = writeln!(out.lock(), "passed unchanged: {skip:?}");
                msg.set_verdict(Verdict::Accept);
                q.verdict(msg)
            }
        };
        if let Err(e) = verdict {
            eprintln!("toa-lb: verdict: {e}");
            return ExitCode::FAILURE;
        }
        seen += 1;
        variant = variant.next();
    }
    ExitCode::SUCCESS
}
