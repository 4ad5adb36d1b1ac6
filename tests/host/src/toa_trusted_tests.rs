use crate::toa::trusted::{parse_addr, Addr, Error, Trusted, MAX_PREFIXES};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn addr(s: &str) -> Addr {
    match s.parse::<IpAddr>().unwrap() {
        IpAddr::V4(a) => Addr::V4(a.octets()),
        IpAddr::V6(a) => Addr::V6(a.octets()),
    }
}

#[test]
fn empty_list_trusts_everyone() {
    for s in ["", " ", ",", " , ,"] {
        let t = Trusted::parse(s.as_bytes()).unwrap();
        assert!(t.trusts_all());
        assert!(t.allows(addr("192.0.2.1")));
        assert!(t.allows(addr("2001:db8::1")));
    }
}

#[test]
fn prefixes_match_their_networks_only() {
    let t = Trusted::parse(b"10.0.0.0/8, 192.168.1.128/25,2001:db8::/32,198.51.100.7").unwrap();
    assert_eq!(t.prefixes().len(), 4);
    assert!(t.allows(addr("10.255.1.2")));
    assert!(!t.allows(addr("11.0.0.1")));
    assert!(t.allows(addr("192.168.1.200")));
    assert!(!t.allows(addr("192.168.1.127")));
    assert!(t.allows(addr("198.51.100.7")));
    assert!(!t.allows(addr("198.51.100.8")));
    assert!(t.allows(addr("2001:db8:ffff::1")));
    assert!(!t.allows(addr("2001:db9::1")));
    // A v4 client of a dual-stack listener appears v4-mapped.
    assert!(t.allows(addr("::ffff:10.1.2.3")));
    assert!(!t.allows(addr("::ffff:11.1.2.3")));
    // IPv4 prefixes never match native IPv6 peers with the same bytes.
    assert!(!t.allows(addr("a00::1")));
}

#[test]
fn host_bits_are_ignored_and_zero_length_matches_all_of_a_family() {
    let t = Trusted::parse(b"10.1.2.3/8,0.0.0.0/0").unwrap();
    assert_eq!(t.prefixes()[0].addr, Addr::V4([10, 0, 0, 0]));
    assert!(t.allows(addr("203.0.113.9")));
    assert!(!t.allows(addr("2001:db8::1")));
    let t = Trusted::parse(b"::/0").unwrap();
    assert!(t.allows(addr("2001:db8::1")));
    assert!(!t.allows(addr("203.0.113.9")));
}

#[test]
fn bad_entries_are_refused_with_their_position() {
    assert_eq!(
        Trusted::parse(b"10.0.0.0/33").unwrap_err(),
        Error::BadLength(1)
    );
    assert_eq!(
        Trusted::parse(b"10.0.0.0/8,::/129").unwrap_err(),
        Error::BadLength(2)
    );
    for (s, i) in [
        ("bogus", 1),
        ("10.0.0.0/8,bogus", 2),
        ("10.0.0/8", 1),
        ("10.0.0.0.0", 1),
        ("256.0.0.0", 1),
        ("10.0.0.0/", 1),
        ("10.0.0.0/x", 1),
        ("10.0.0.0/0008", 1),
        ("1::2::3", 1),
        ("1:2:3:4:5:6:7:8:9", 1),
        ("12345::", 1),
        ("::g", 1),
        ("1.2.3.4::", 1),
    ] {
        assert_eq!(
            Trusted::parse(s.as_bytes()).unwrap_err(),
            Error::BadEntry(i),
            "{s}"
        );
    }
}

#[test]
fn list_size_is_bounded() {
    let ok: Vec<String> = (0..MAX_PREFIXES)
        .map(|i| format!("10.0.{i}.0/24"))
        .collect();
    assert_eq!(
        Trusted::parse(ok.join(",").as_bytes())
            .unwrap()
            .prefixes()
            .len(),
        MAX_PREFIXES
    );
    let too_many = format!("{},10.1.0.0/16", ok.join(","));
    assert_eq!(
        Trusted::parse(too_many.as_bytes()).unwrap_err(),
        Error::TooMany
    );
}

#[test]
fn address_parsing_agrees_with_std() {
    let cases = [
        "0.0.0.0",
        "255.255.255.255",
        "::",
        "::1",
        "1::",
        "2001:db8::8a2e:370:7334",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "fe80::1:2:3:4:5",
        "1:2:3:4:5:6:7:8",
        "1:2:3:4:5:6::8",
        "::ffff:192.0.2.1",
        "64:ff9b::192.0.2.33",
        "1:2:3:4:5:6:1.2.3.4",
    ];
    for s in cases {
        assert_eq!(parse_addr(s.as_bytes()), Some(addr(s)), "{s}");
    }
    for s in [
        "1:2:3:4:5:6:7::8",
        "1:2:3:4:5:6:7:1.2.3.4",
        ":1::",
        "1:::2",
        "01.2.3.4.5",
        "",
    ] {
        let std_ok = s.parse::<Ipv6Addr>().is_ok() || s.parse::<Ipv4Addr>().is_ok();
        assert_eq!(parse_addr(s.as_bytes()).is_some(), std_ok, "{s}");
    }
}

/// Every byte string either parses or is refused; none panics, and what parses has a length
/// within its family.
#[test]
fn arbitrary_input_never_panics() {
    let alphabet = b"0123456789abcdefABCDEFgx:./, \0\xff";
    let mut state = 0x9e3779b97f4a7c15u64;
    for _ in 0..200_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (state % 48) as usize;
        let mut s = Vec::with_capacity(len);
        let mut x = state;
        for _ in 0..len {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            s.push(alphabet[(x >> 33) as usize % alphabet.len()]);
        }
        if let Ok(t) = Trusted::parse(&s) {
            for p in t.prefixes() {
                let width = match p.addr {
                    Addr::V4(_) => 32,
                    Addr::V6(_) => 128,
                };
                assert!(p.len <= width);
            }
        }
    }
}
