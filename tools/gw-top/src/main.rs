//! gw-top: the traffic of a shaping gateway's clients, live: per client address, the download
//! and upload rates and totals, from the imq devices' classes and the u32 filters that send
//! each client's packets to its class.
//!
//! Usage: gw-top [--down DEV] [--up DEV | --no-up] [--interval SECS] [--count N] [--json]
//!
//! Every interval it reads both devices' classes and counters over rtnetlink (what
//! `tc -s class show` and `ip -s link show` print) and their filters with
//! `tc -j filter show dev DEV` (and `... parent CLASS` for each inner class).

mod json;
mod nl;
mod tc;
mod view;

use std::io::{IsTerminal, Write};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tc::Dir;
use view::{DevSample, Role, Snapshot};

const USAGE: &str =
    "usage: gw-top [--down DEV] [--up DEV | --no-up] [--interval SECS] [--count N] [--json]

Per-client download and upload rates and totals of a shaping gateway, from the classes of the
download device (default imq0; clients are the destinations of its address filters) and the
upload device (default imq1 if it exists; clients are the sources).

  --down DEV        the device shaping downloads (default imq0)
  --up DEV          the device shaping uploads (default imq1, left out if absent)
  --no-up           no upload device
  --interval SECS   seconds between refreshes (default 1)
  --count N         stop after N refreshes
  --json            one JSON object per refresh and line instead of the table";

struct Opts {
    down: String,
    up: Option<String>,
    up_explicit: bool,
    interval: f64,
    count: Option<u64>,
    json: bool,
}

fn parse_args(args: &[String]) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        down: "imq0".into(),
        up: Some("imq1".into()),
        up_explicit: false,
        interval: 1.0,
        count: None,
        json: false,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (name, inline) = match a.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name {
            "-h" | "--help" => return Ok(None),
            "--down" => o.down = value()?,
            "--up" => {
                o.up = Some(value()?);
                o.up_explicit = true;
            }
            "--no-up" => o.up = None,
            "--interval" => {
                let v = value()?;
                o.interval = match v.parse::<f64>() {
                    Ok(s) if (0.05..=86400.0).contains(&s) => s,
                    _ => return Err(format!("--interval {v}: want seconds, 0.05 or more")),
                }
            }
            "--count" => {
                let v = value()?;
                o.count = match v.parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => return Err(format!("--count {v}: want a positive number")),
                }
            }
            "--json" => o.json = true,
            _ => return Err(format!("unknown argument {a:?}")),
        }
        if inline.is_some() && matches!(name, "--no-up" | "--json" | "-h" | "--help") {
            return Err(format!("{name} takes no value"));
        }
    }
    for d in std::iter::once(&o.down).chain(o.up.as_ref()) {
        if d.is_empty() || d.starts_with('-') || d.contains('/') || d.len() > 15 {
            return Err(format!("{d:?} is not a device name"));
        }
    }
    if o.up.as_deref() == Some(o.down.as_str()) {
        return Err(format!("--down and --up are both {}", o.down));
    }
    Ok(Some(o))
}

/// Run a command and return its output; a clear error if it cannot run or fails.
fn run(cmd: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            format!("{cmd} not found (gw-top needs iproute2's tc on PATH)")
        } else {
            format!("cannot run {cmd}: {e}")
        }
    })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        return Err(format!(
            "'{cmd} {}' failed: {}",
            args.join(" "),
            if err.is_empty() { "no message" } else { err }
        ));
    }
    String::from_utf8(out.stdout).map_err(|_| format!("{cmd} printed invalid UTF-8"))
}

/// Run a command that prints JSON; empty output is an empty list.
fn run_json(cmd: &str, args: &[&str]) -> Result<json::Value, String> {
    let text = run(cmd, args)?;
    if text.trim().is_empty() {
        return Ok(json::Value::Array(Vec::new()));
    }
    json::parse(&text).map_err(|e| format!("'{cmd} {}': {e}", args.join(" ")))
}

/// A device's counters, read over netlink (microseconds, so that the moment is known).
fn counters(nl: &mut nl::Rtnl, dev: &str, clock: Instant) -> Result<DevSample, String> {
    let ifindex = nl::ifindex(dev).ok_or_else(|| format!("device {dev} is gone"))?;
    let t0 = clock.elapsed().as_secs_f64();
    let classes = nl
        .classes(ifindex)
        .map_err(|e| format!("{dev}: reading the classes: {e}"))?;
    let t1 = clock.elapsed().as_secs_f64();
    let link = nl
        .link(ifindex)
        .map_err(|e| format!("{dev}: reading the counters: {e}"))?;
    let t2 = clock.elapsed().as_secs_f64();
    Ok(DevSample {
        dev: dev.to_string(),
        at: (t0 + t1) / 2.0,
        link_at: (t1 + t2) / 2.0,
        classes,
        filters: Vec::new(),
        link,
    })
}

/// The address filters of a device: the root qdisc's, then those of every class with children
/// (htb classifies again at an inner class a filter leads to).
fn filters(s: &mut DevSample, role: Role) -> Result<(), String> {
    let dev = s.dev.as_str();
    let dir = match role {
        Role::Down => Dir::Dst,
        Role::Up => Dir::Src,
    };
    let mut filters =
        tc::parse_filters(&run_json("tc", &["-j", "filter", "show", "dev", dev])?, dir)
            .map_err(|e| format!("{dev}: {e}"))?;
    let handles: std::collections::HashSet<&str> =
        s.classes.iter().map(|c| c.handle.as_str()).collect();
    let mut inner: Vec<&str> = s
        .classes
        .iter()
        .filter_map(|c| c.parent.as_deref())
        .filter(|p| handles.contains(p))
        .collect();
    inner.sort();
    inner.dedup();
    for parent in inner {
        let v = run_json(
            "tc",
            &["-j", "filter", "show", "dev", dev, "parent", parent],
        )?;
        filters.extend(tc::parse_filters(&v, dir).map_err(|e| format!("{dev}: {e}"))?);
    }
    s.filters = filters;
    Ok(())
}

/// Both devices: first the counters of both, within a millisecond, then the filters (tc
/// takes its time).
fn snapshot(o: &Opts, nl: &mut nl::Rtnl, clock: Instant) -> Result<Snapshot, String> {
    let mut s = Snapshot {
        down: Some(counters(nl, &o.down, clock)?),
        up: match &o.up {
            Some(d) => Some(counters(nl, d, clock)?),
            None => None,
        },
    };
    if let Some(d) = s.down.as_mut() {
        filters(d, Role::Down)?;
    }
    if let Some(u) = s.up.as_mut() {
        filters(u, Role::Up)?;
    }
    Ok(s)
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut o = match parse_args(&args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("gw-top: {e}\n{USAGE}");
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
    if nl::ifindex(&o.down).is_none() {
        return Err(format!("no device {} (is imq loaded? --down DEV)", o.down));
    }
    if let Some(up) = o.up.clone() {
        if nl::ifindex(&up).is_none() {
            if o.up_explicit {
                return Err(format!("no device {up} (--up DEV, or --no-up)"));
            }
            o.up = None;
        }
    }
    let tty = !o.json && std::io::stdout().is_terminal();
    let mut nl = nl::Rtnl::open().map_err(|e| format!("netlink socket: {e}"))?;
    let clock = Instant::now();
    // The Unix time of `clock`'s zero, to date the readings.
    let unix0 = unix_now();
    let mut prev = snapshot(o, &mut nl, clock)?;
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
        let text = if o.json {
            view::json_line(&r, now, interval) + "\n"
        } else {
            let mut t = String::new();
            if tty {
                t.push_str("\x1b[H\x1b[2J");
            }
            t.push_str(&view::table(&r, &clock_text(now), o.interval));
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

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse_args(&[]).unwrap().unwrap();
        assert_eq!((o.down.as_str(), o.up.as_deref()), ("imq0", Some("imq1")));
        assert!(!o.up_explicit && !o.json && o.count.is_none() && o.interval == 1.0);
        let o = parse_args(&args(
            "--down imq2 --up=imq3 --interval 2.5 --count=4 --json",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((o.down.as_str(), o.up.as_deref()), ("imq2", Some("imq3")));
        assert!(o.up_explicit && o.json && o.count == Some(4) && o.interval == 2.5);
        assert!(parse_args(&args("--no-up")).unwrap().unwrap().up.is_none());
        assert!(parse_args(&args("--help")).unwrap().is_none());
        for bad in [
            "--interval 0",
            "--interval x",
            "--interval nan",
            "--count 0",
            "--count",
            "--bogus",
            "--down imq0 --up imq0",
            "--down --up",
            "--json=1",
            "--down a/b",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad} accepted");
        }
    }
}
