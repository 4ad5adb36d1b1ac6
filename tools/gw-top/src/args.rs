//! The command line, read with lexopt (`--opt V`, `--opt=V`; a flag given a value is refused).

use lexopt::{Arg, Parser, ValueExt};

pub const USAGE: &str =
    "usage: gw-top [--down DEV] [--up DEV | --no-up] [--interval SECS] [--count N] [--json]

Per-client download and upload rates and totals of a shaping gateway, from the classes of the
download device (default imq0; clients are the destinations of its address filters) and the
upload device (default imq1 if it exists; clients are the sources). On a terminal each client
also gets its rates of the last 60 seconds as a sparkline.

  --down DEV        the device shaping downloads (default imq0)
  --up DEV          the device shaping uploads (default imq1, left out if absent)
  --no-up           no upload device
  --interval SECS   seconds between refreshes (default 1)
  --count N         stop after N refreshes
  --json            one JSON object per refresh and line instead of the table";

pub struct Opts {
    pub down: String,
    pub up: Option<String>,
    pub up_explicit: bool,
    pub interval: f64,
    pub count: Option<u64>,
    pub json: bool,
}

/// The options, or `None` for --help.
pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Option<Opts>, String> {
    let mut o = Opts {
        down: "imq0".into(),
        up: Some("imq1".into()),
        up_explicit: false,
        interval: 1.0,
        count: None,
        json: false,
    };
    let mut p = Parser::from_args(args);
    let text = |p: &mut Parser| -> Result<String, String> {
        p.value()
            .map_err(|e| e.to_string())?
            .string()
            .map_err(|e| e.to_string())
    };
    while let Some(arg) = p.next().map_err(|e| e.to_string())? {
        match arg {
            Arg::Short('h') | Arg::Long("help") => return Ok(None),
            Arg::Long("down") => o.down = text(&mut p)?,
            Arg::Long("up") => {
                o.up = Some(text(&mut p)?);
                o.up_explicit = true;
            }
            Arg::Long("no-up") => o.up = None,
            Arg::Long("interval") => {
                let v = text(&mut p)?;
                o.interval = match v.parse::<f64>() {
                    Ok(s) if (0.05..=86400.0).contains(&s) => s,
                    _ => return Err(format!("--interval {v}: want seconds, 0.05 or more")),
                }
            }
            Arg::Long("count") => {
                let v = text(&mut p)?;
                o.count = match v.parse::<u64>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => return Err(format!("--count {v}: want a positive number")),
                }
            }
            Arg::Long("json") => o.json = true,
            a => return Err(a.unexpected().to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn options() {
        let o = parse(Vec::new()).unwrap().unwrap();
        assert_eq!((o.down.as_str(), o.up.as_deref()), ("imq0", Some("imq1")));
        assert!(!o.up_explicit && !o.json && o.count.is_none() && o.interval == 1.0);
        let o = parse(args(
            "--down imq2 --up=imq3 --interval 2.5 --count=4 --json",
        ))
        .unwrap()
        .unwrap();
        assert_eq!((o.down.as_str(), o.up.as_deref()), ("imq2", Some("imq3")));
        assert!(o.up_explicit && o.json && o.count == Some(4) && o.interval == 2.5);
        assert!(parse(args("--no-up")).unwrap().unwrap().up.is_none());
        assert!(parse(args("--help")).unwrap().is_none());
        for bad in [
            "--interval 0",
            "--interval x",
            "--interval nan",
            "--count 0",
            "--count",
            "--bogus",
            "stray",
            "--down imq0 --up imq0",
            "--down --up",
            "--json=1",
            "--down a/b",
        ] {
            assert!(parse(args(bad)).is_err(), "{bad} accepted");
        }
    }
}
