//! gw-top: the traffic of a shaping gateway's clients, live: per client address, the download
//! and upload rates and totals, from the imq devices' classes and the u32 filters that send
//! each client's packets to its class.
//!
//! Usage: gw-top [--down DEV] [--up DEV | --no-up] [--interval SECS] [--count N] [--json]
//!
//! Every interval it reads both devices' classes, counters and filters over rtnetlink (what
//! `tc -s class show`, `ip -s link show` and `tc filter show` print, for the root qdisc and
//! each inner class).

mod args;
#[cfg(test)]
mod fixtures;
mod history;
mod json;
mod nl;
mod tc;
mod view;

use args::Opts;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tc::Dir;
use view::{DevSample, Role, Snapshot};

/// A device's counters, read over netlink (microseconds, so that the moment is known).
fn counters(nl: &mut nl::Rtnl, dev: &str, clock: Instant) -> Result<(u32, DevSample), String> {
    let t0 = clock.elapsed().as_secs_f64();
    let (ifindex, link) = nl
        .device(dev)
        .map_err(|e| format!("{dev}: reading the counters: {e}"))?
        .ok_or_else(|| format!("device {dev} is gone"))?;
    let t1 = clock.elapsed().as_secs_f64();
    let classes = nl
        .classes(ifindex)
        .map_err(|e| format!("{dev}: reading the classes: {e}"))?;
    let t2 = clock.elapsed().as_secs_f64();
    let sample = DevSample {
        dev: dev.to_string(),
        at: (t1 + t2) / 2.0,
        link_at: (t0 + t1) / 2.0,
        classes,
        filters: Vec::new(),
        link,
    };
    Ok((ifindex, sample))
}

/// "1:10" back to 0x00010010.
fn handle_id(h: &str) -> Option<u32> {
    let (maj, min) = h.split_once(':')?;
    let maj = u32::from_str_radix(maj, 16).ok()?;
    let min = if min.is_empty() {
        0
    } else {
        u32::from_str_radix(min, 16).ok()?
    };
    (maj <= 0xffff && min <= 0xffff).then_some(maj << 16 | min)
}

/// The address filters of a device: the root qdisc's, then those of every class with children
/// (htb classifies again at an inner class a filter leads to).
fn filters(nl: &mut nl::Rtnl, ifindex: u32, s: &mut DevSample, role: Role) -> Result<(), String> {
    let dir = match role {
        Role::Down => Dir::Dst,
        Role::Up => Dir::Src,
    };
    let dev = s.dev.as_str();
    let handles: std::collections::HashSet<&str> =
        s.classes.iter().map(|c| c.handle.as_str()).collect();
    let mut inner: Vec<u32> = s
        .classes
        .iter()
        .filter_map(|c| c.parent.as_deref())
        .filter(|p| handles.contains(p))
        .filter_map(handle_id)
        .collect();
    inner.sort();
    inner.dedup();
    let mut filters = Vec::new();
    for parent in std::iter::once(0).chain(inner) {
        let f = nl
            .filters(ifindex, parent, dir)
            .map_err(|e| format!("{dev}: reading the filters: {e}"))?;
        filters.extend(f);
    }
    s.filters = filters;
    Ok(())
}

/// Both devices: first the counters of both, within a millisecond, then the filters.
fn snapshot(o: &Opts, nl: &mut nl::Rtnl, clock: Instant) -> Result<Snapshot, String> {
    let (di, mut down) = counters(nl, &o.down, clock)?;
    let mut up = match &o.up {
        Some(d) => Some(counters(nl, d, clock)?),
        None => None,
    };
    filters(nl, di, &mut down, Role::Down)?;
    if let Some((ui, u)) = up.as_mut() {
        filters(nl, *ui, u, Role::Up)?;
    }
    Ok(Snapshot {
        down: Some(down),
        up: up.map(|(_, u)| u),
    })
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn clock_text(unix: f64) -> String {
    let s = unix as u64 % 86400;
    format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
}

fn main() -> ExitCode {
    let mut o = match args::parse(std::env::args().skip(1)) {
        Ok(Some(o)) => o,
        Ok(None) => {
            // Ignore a closed pipe (`gw-top --help | head`).
            let _ = writeln!(std::io::stdout(), "{}", args::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gw-top: {e}\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    match go(&mut o) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gw-top: {e}");
            ExitCode::from(1)
        }
    }
}

fn go(o: &mut Opts) -> Result<(), String> {
    let mut nl = nl::Rtnl::open().map_err(|e| format!("netlink socket: {e}"))?;
    let mut exists = |d: &str| {
        nl.device(d)
            .map(|x| x.is_some())
            .map_err(|e| format!("{d}: {e}"))
    };
    if !exists(&o.down)? {
        return Err(format!("no device {} (is imq loaded? --down DEV)", o.down));
    }
    if let Some(up) = o.up.clone() {
        if !exists(&up)? {
            if o.up_explicit {
                return Err(format!("no device {up} (--up DEV, or --no-up)"));
            }
            o.up = None;
        }
    }
    let tty = !o.json && std::io::stdout().is_terminal();
    let clock = Instant::now();
    // The Unix time of `clock`'s zero, to date the readings.
    let unix0 = unix_now();
    let mut prev = snapshot(o, &mut nl, clock)?;
    let mut hist = history::History::default();
    // Refreshes are due every interval from the first reading, whatever the readings take.
    let start = clock;
    let mut n = 0u64;
    loop {
        n += 1;
        let due = start + Duration::from_secs_f64(o.interval * n as f64);
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let cur = snapshot(o, &mut nl, clock)?;
        let r = view::report(&prev, &cur);
        // When the counters were read, and the time since the previous reading.
        let (at, interval) = cur.down.as_ref().map_or((0.0, 0.0), |c| {
            (c.at, c.at - prev.down.as_ref().map_or(c.at, |p| p.at))
        });
        let now = unix0 + at;
        if tty {
            hist.record(&r, at - interval, at);
        }
        let text = if o.json {
            json::line(&r, now, interval) + "\n"
        } else {
            let mut t = String::new();
            if tty {
                t.push_str("\x1b[H\x1b[2J");
            }
            let spark = tty.then_some((&hist, at));
            t.push_str(&view::table(&r, &clock_text(now), o.interval, spark));
            if !tty {
                t.push('\n');
            }
            t
        };
        let mut out = std::io::stdout().lock();
        if out
            .write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .is_err()
        {
            // The reader went away (a pipe closed): nothing more to do.
            return Ok(());
        }
        prev = cur;
        if o.count.is_some_and(|c| n >= c) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_back() {
        assert_eq!(handle_id("1:10"), Some(0x0001_0010));
        assert_eq!(handle_id("ffff:"), Some(0xffff_0000));
        assert_eq!(handle_id("1:10000"), None);
        assert_eq!(handle_id("root"), None);
    }
}
