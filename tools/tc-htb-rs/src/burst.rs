//! Default bursts for `htb_rs` classes added or changed without one.
//!
//! tc's htb parser defaults `burst` to `rate / get_hz() + mtu` (and `cburst` likewise from
//! `ceil`). With the high-resolution psched clock `get_hz()` is 10^9, so the default is about
//! one MTU (1600 bytes) at any rate: 1.3 µs at 10 Gbit/s, less than the scheduling jitter of
//! the qdisc's watchdog, so tokens are lost while waiting and high rates are never reached.
//!
//! When the user gave no burst (resp. cburst), the plugin appends `burst <bytes>` (resp.
//! `cburst <bytes>`) to the arguments htb's parser sees, with
//!
//! ```text
//! bytes = min(max(rate × 1 ms, 65536 + mtu), rate × 10 ms)
//! ```
//!
//! but only where that exceeds tc's own default, so low rates (below about 1.3 Mbit/s) keep
//! exactly htb's request. 1 ms at the rate covers timer and softirq latency; 64 KiB + mtu lets a
//! full GSO packet pass without waiting; the 10 ms cap (tc's default when `HZ` was 100) keeps the
//! GSO floor from turning into seconds of line-rate burst at low rates (and from overflowing
//! `tc_htb_opt.buffer`, 32 bits of 64 ns psched ticks: 275 s, which 64 KiB at 1 kbit/s exceeds).
//!
//! The arguments are scanned the way `htb_parse_class_opt` (iproute2 6.1 and 6.15) reads them,
//! abbreviations included. Whenever htb's parser would stop with an error or usage text, when a
//! rate or ceil is a percentage of the device's speed, or when a rate does not parse, nothing
//! is appended and htb's parser has its say unchanged.

/// The part of a class's options that decides the default bursts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ClassArgs<'a> {
    pub(crate) rate: &'a [u8],
    pub(crate) ceil: Option<&'a [u8]>,
    pub(crate) mtu: u32,
    /// `burst`, `buffer` or `maxburst` was given.
    pub(crate) burst: bool,
    /// `cburst`, `cbuffer` or `cmaxburst` was given.
    pub(crate) cburst: bool,
}

/// tc's `matches(arg, word) == 0`: `arg` is a non-empty prefix of `word`.
fn abbrev(arg: &[u8], word: &str) -> bool {
    !arg.is_empty() && word.as_bytes().starts_with(arg)
}

enum Opt {
    Other,
    Mtu,
    Burst,
    Cburst,
    Ceil,
    Rate,
}

/// Which of htb's class options `arg` names, tested in the parser's order (so "m" is `mtu`,
/// "b" is `burst` and "c" is `cburst`); `None` for what it would reject (including `help`).
fn option(arg: &[u8]) -> Option<Opt> {
    let opt = if abbrev(arg, "prio") {
        Opt::Other
    } else if abbrev(arg, "mtu") {
        Opt::Mtu
    } else if ["mpu", "overhead", "linklayer", "quantum"]
        .iter()
        .any(|w| abbrev(arg, w))
    {
        Opt::Other
    } else if abbrev(arg, "burst") || arg == b"buffer" || arg == b"maxburst" {
        Opt::Burst
    } else if abbrev(arg, "cburst") || arg == b"cbuffer" || arg == b"cmaxburst" {
        Opt::Cburst
    } else if arg == b"ceil" {
        Opt::Ceil
    } else if arg == b"rate" {
        Opt::Rate
    } else {
        return None;
    };
    Some(opt)
}

/// Reads class options as htb's parser would; `None` if it would not accept them or a rate is
/// given as a percentage.
pub(crate) fn scan<'a>(args: &[&'a [u8]]) -> Option<ClassArgs<'a>> {
    let mut found = ClassArgs {
        rate: b"",
        ceil: None,
        mtu: 1600,
        burst: false,
        cburst: false,
    };
    let mut rate = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let opt = option(arg)?;
        let value: &[u8] = it.next()?;
        match opt {
            Opt::Other => {}
            Opt::Mtu => found.mtu = std::str::from_utf8(value).ok()?.parse().ok()?,
            Opt::Burst => found.burst = true,
            Opt::Cburst => found.cburst = true,
            Opt::Ceil | Opt::Rate if value.contains(&b'%') => return None,
            Opt::Ceil if found.ceil.is_none() => found.ceil = Some(value),
            Opt::Rate if rate.is_none() => rate = Some(value),
            Opt::Ceil | Opt::Rate => return None,
        }
    }
    found.rate = rate?;
    Some(found)
}

/// The largest GSO packet, in bytes.
const GSO_MAX: u64 = 65536;

/// The burst, in bytes, for a class at `rate` bytes/s with packets up to `mtu`, if it exceeds
/// tc's default `rate / hz + mtu` (as tc stores it, in an `unsigned int`).
pub(crate) fn burst(rate: u64, mtu: u32, hz: u64) -> Option<u32> {
    let tc_default = (rate / hz.max(1)).wrapping_add(mtu.into()) as u32;
    let ours = (rate / 1000).max(GSO_MAX + u64::from(mtu)).min(rate / 100);
    let ours = u32::try_from(ours).unwrap_or(u32::MAX);
    (ours > tc_default).then_some(ours)
}

/// The arguments to append to a class's options: `burst N` and/or `cburst N`, or nothing.
/// `rate_of` parses a rate as tc does (bytes/s); `hz` is tc's `get_hz()`.
pub(crate) fn extra_args(
    args: &[&[u8]],
    rate_of: impl Fn(&[u8]) -> Option<u64>,
    hz: u64,
) -> Vec<String> {
    let mut extra = Vec::new();
    let Some(c) = scan(args) else {
        return extra;
    };
    let Some(rate) = rate_of(c.rate) else {
        return extra;
    };
    // htb: a ceil of 0, or none, means the rate.
    let ceil = match c.ceil.map(&rate_of) {
        None | Some(Some(0)) => rate,
        Some(Some(ceil)) => ceil,
        Some(None) => return extra,
    };
    if !c.burst {
        if let Some(b) = burst(rate, c.mtu, hz) {
            extra.extend(["burst".to_string(), b.to_string()]);
        }
    }
    if !c.cburst {
        if let Some(b) = burst(ceil, c.mtu, hz) {
            extra.extend(["cburst".to_string(), b.to_string()]);
        }
    }
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u64 = 1_000_000_000;

    /// A stand-in for tc's `get_rate64`: decimal bits with k/m/g suffixes, in bytes/s.
    fn rate(s: &[u8]) -> Option<u64> {
        let s = std::str::from_utf8(s).ok()?;
        let (num, scale) = [("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1000)]
            .iter()
            .find_map(|(suffix, scale)| s.strip_suffix(suffix).map(|n| (n, *scale)))
            .unwrap_or((s, 1));
        Some(num.parse::<u64>().ok()? * scale / 8)
    }

    fn extra(line: &str) -> Vec<String> {
        let args: Vec<&[u8]> = line.split_whitespace().map(str::as_bytes).collect();
        extra_args(&args, rate, HZ)
    }

    #[test]
    fn bursts_at_rates() {
        // Low rates keep tc's default (rate × 10 ms is below one MTU).
        assert_eq!(burst(1000 / 8, 1600, HZ), None);
        assert_eq!(burst(1_000_000 / 8, 1600, HZ), None);
        assert_eq!(burst(160_000, 1600, HZ), None);
        assert_eq!(burst(160_100, 1600, HZ), Some(1601));
        // Middle rates: 10 ms at the rate, then the GSO floor, then 1 ms at the rate.
        assert_eq!(burst(6_000_000 / 8, 1600, HZ), Some(7500));
        assert_eq!(burst(100_000_000 / 8, 1600, HZ), Some(67136));
        assert_eq!(burst(100_000_000 / 8, 9000, HZ), Some(74536));
        assert_eq!(burst(1_000_000_000 / 8, 1600, HZ), Some(125_000));
        assert_eq!(burst(40_000_000_000 / 8, 1600, HZ), Some(5_000_000));
        // With HZ=100 in the environment tc's own default is larger and stays.
        assert_eq!(burst(1_000_000_000 / 8, 1600, 100), None);
        assert_eq!(burst(u64::MAX, 1600, HZ), Some(u32::MAX));
        assert_eq!(burst(0, 1600, 0), None);
    }

    #[test]
    fn only_missing_bursts_are_added() {
        assert_eq!(
            extra("rate 6mbit burst 15k cburst 15k"),
            Vec::<String>::new()
        );
        assert_eq!(extra("rate 6mbit burst 15k"), ["cburst", "7500"]);
        assert_eq!(extra("rate 1kbit ceil 6mbit burst 15k"), ["cburst", "7500"]);
        assert_eq!(extra("rate 1gbit"), ["burst", "125000", "cburst", "125000"]);
        assert_eq!(
            extra("rate 100mbit ceil 1gbit mtu 9000"),
            ["burst", "74536", "cburst", "125000"]
        );
        assert_eq!(extra("ceil 0 rate 1gbit cbuffer 3000"), ["burst", "125000"]);
        assert_eq!(extra("rate 1mbit"), Vec::<String>::new());
        // Abbreviations as htb's parser takes them.
        assert_eq!(extra("rate 1gbit b 10k c 10k"), Vec::<String>::new());
        assert_eq!(extra("rate 1gbit bu 10k"), ["cburst", "125000"]);
        assert_eq!(
            extra("rate 1gbit buffer 10k cmaxburst 10k"),
            Vec::<String>::new()
        );
        assert_eq!(
            extra("rate 1gbit maxburst 10k cbuffer 10k"),
            Vec::<String>::new()
        );
        assert_eq!(
            extra("p 1 q 1000 mp 64 o 4 l ethernet rate 1gbit m 1500"),
            ["burst", "125000", "cburst", "125000"]
        );
    }

    #[test]
    fn nothing_when_htb_would_object() {
        for line in [
            "",
            "burst 10k",
            "rate 1gbit bogus",
            "rate 1gbit help",
            "rate 1gbit rate 2gbit",
            "rate 1gbit ceil 2gbit ceil 3gbit",
            "rate 1gbit mtu",
            "rate 1gbit mtu 0x10",
            "rate 1gbit mtu -1",
            "rate 1gbit ce 2gbit",
            "rate 1gbit r 2gbit",
            "rate",
            "rate 50%",
            "rate 1gbit ceil 100%",
            "rate 1xbit",
            "rate 1gbit ceil 1xbit",
            "rate 0",
        ] {
            assert_eq!(extra(line), Vec::<String>::new(), "{line:?}");
        }
    }

    #[test]
    fn scan_reads_like_htb() {
        let args: Vec<&[u8]> = ["mtu", "9000", "ceil", "2gbit", "rate", "1gbit", "cb", "5k"]
            .map(str::as_bytes)
            .to_vec();
        assert_eq!(
            scan(&args),
            Some(ClassArgs {
                rate: b"1gbit",
                ceil: Some(b"2gbit"),
                mtu: 9000,
                burst: false,
                cburst: true,
            })
        );
    }
}
