use crate::toa::option::{
    scan_options as scan_options_in, scan_tcp_header as scan_tcp_header_in, Client, Kinds,
    KindsError, Scan, TCP_MAX_LEN,
};
use crate::toa::trusted::Addr;

/// `scan_options` for the default kinds (254 alone).
fn scan_options(b: &[u8]) -> crate::toa::option::Scan {
    scan_options_in(b, &Kinds::DEFAULT)
}

/// `scan_tcp_header` for the default kinds (254 alone).
fn scan_tcp_header(b: &[u8]) -> crate::toa::option::Scan {
    scan_tcp_header_in(b, &Kinds::DEFAULT)
}

fn v4opt(port: u16, a: [u8; 4]) -> Vec<u8> {
    let mut o = vec![254, 8];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&a);
    o
}

fn v6opt(port: u16, a: [u8; 16]) -> Vec<u8> {
    let mut o = vec![254, 20];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&a);
    o
}

/// A TCP header (ports 80 -> 8080, ACK) around `opts`, padded with NOPs to a 4-byte multiple.
fn header(opts: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(1);
    }
    let doff = (20 + o.len()) / 4;
    let mut h = vec![
        0x1f,
        0x90,
        0,
        80,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        2,
        (doff as u8) << 4,
        0x10,
        0xff,
        0xff,
    ];
    h.extend_from_slice(&[0, 0, 0, 0]);
    h.extend_from_slice(&o);
    h
}

fn v4(port: u16, a: [u8; 4]) -> Option<Client> {
    Some(Client {
        addr: Addr::V4(a),
        port,
    })
}

#[test]
fn finds_ipv4_and_ipv6_clients() {
    let s = scan_tcp_header(&header(&v4opt(40000, [192, 0, 2, 7])));
    assert_eq!(s.client, v4(40000, [192, 0, 2, 7]));
    assert_eq!((s.count, s.ignored, s.malformed), (1, 0, false));

    let a6 = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x42,
    ];
    let s = scan_tcp_header(&header(&v6opt(443, a6)));
    assert_eq!(
        s.client,
        Some(Client {
            addr: Addr::V6(a6),
            port: 443
        })
    );
}

#[test]
fn walks_past_other_options_and_nops() {
    // MSS, NOP, NOP, SACK-permitted, timestamps, then TOA: the usual SYN layout plus the option.
    let mut o = vec![2, 4, 0x05, 0xb4, 1, 1, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0];
    o.extend(v4opt(1234, [10, 1, 2, 3]));
    let s = scan_options(&o);
    assert_eq!(s.client, v4(1234, [10, 1, 2, 3]));
    assert!(!s.malformed);
}

#[test]
fn eol_ends_the_list() {
    let mut o = vec![1, 0];
    o.extend(v4opt(1234, [10, 1, 2, 3]));
    assert_eq!(scan_options(&o), Scan::default());
}

#[test]
fn last_of_several_wins_and_they_are_counted() {
    let mut o = v4opt(1, [10, 0, 0, 1]);
    o.extend(v4opt(2, [10, 0, 0, 2]));
    o.extend(v4opt(3, [10, 0, 0, 3]));
    let s = scan_options(&o);
    assert_eq!(s.client, v4(3, [10, 0, 0, 3]));
    assert_eq!(s.count, 3);
}

#[test]
fn other_lengths_of_kind_254_are_skipped_and_counted() {
    // An RFC 6994 experiment (len 4), a ByteDance-style len 16, then the real option.
    let mut o = vec![254, 4, 0xab, 0xcd];
    o.extend([254, 16, 0, 80, 10, 0, 0, 9, 0, 0, 0, 80, 10, 0, 0, 1]);
    o.extend(v4opt(5, [10, 0, 0, 5]));
    let s = scan_options(&o);
    assert_eq!(s.client, v4(5, [10, 0, 0, 5]));
    assert_eq!((s.count, s.ignored, s.malformed), (1, 2, false));
}

#[test]
fn unspecified_address_or_zero_port_is_ignored() {
    let mut o = v4opt(80, [0, 0, 0, 0]);
    o.extend(v4opt(0, [10, 0, 0, 1]));
    o.extend(v6opt(80, [0; 16]));
    let s = scan_options(&o);
    assert_eq!((s.client, s.count, s.ignored), (None, 0, 3));
}

#[test]
fn malformed_lists_stop_the_walk() {
    // Zero length, length 1, length past the end, a kind without its length byte.
    for o in [
        &[254u8, 0, 0, 80, 10, 0, 0, 1][..],
        &[254, 1, 0, 80, 10, 0, 0, 1],
        &[254, 8, 0, 80, 10, 0, 0],
        &[2, 4, 5, 0xb4, 254],
        &[8, 10, 0, 0],
    ] {
        let s = scan_options(o);
        assert!(s.malformed, "{o:?}");
        assert_eq!(s.client, None, "{o:?}");
    }
    // What came before the fault still counts: the walk is deterministic, not all-or-nothing.
    let mut o = v4opt(7, [10, 0, 0, 7]);
    o.extend([3, 0]);
    let s = scan_options(&o);
    assert_eq!((s.client, s.malformed), (v4(7, [10, 0, 0, 7]), true));
}

#[test]
fn header_bounds_come_from_the_data_offset() {
    let h = header(&v4opt(9, [10, 0, 0, 9]));
    // Data offset beyond the bytes we have: malformed, no client.
    let s = scan_tcp_header(&h[..h.len() - 1]);
    assert!(s.malformed && s.client.is_none());
    // Data offset below 5.
    let mut bad = h.clone();
    bad[12] = 4 << 4;
    assert!(scan_tcp_header(&bad).malformed);
    // Bytes past the data offset (payload) are never read as options.
    let mut h2 = header(&[]);
    h2.extend(v4opt(9, [10, 0, 0, 9]));
    assert_eq!(scan_tcp_header(&h2), Scan::default());
    assert!(scan_tcp_header(&[0u8; 19]).malformed);
}

/// Random and mutated headers: never a panic, never a client that is not in the bytes.
#[test]
fn arbitrary_headers_never_panic() {
    let mut state = 0x2545f4914f6cdd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let seed = header(
        &[
            &v4opt(80, [10, 0, 0, 1])[..],
            &[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        .concat(),
    );
    for i in 0..300_000 {
        let len = (next() % (TCP_MAX_LEN as u64 + 8)) as usize;
        let mut h: Vec<u8> = if i % 2 == 0 {
            (0..len).map(|_| next() as u8).collect()
        } else {
            let mut m = seed.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % m.len();
                m[at] = match next() % 4 {
                    0 => 254,
                    1 => 0,
                    2 => 1,
                    _ => next() as u8,
                };
            }
            m.truncate(len.max(20));
            m
        };
        if i % 3 == 0 && h.len() >= 13 {
            h[12] = ((next() % 16) as u8) << 4;
        }
        let s = scan_tcp_header(&h);
        if let Some(c) = s.client {
            let port = c.port.to_be_bytes();
            let found = match c.addr {
                Addr::V4(a) => h
                    .windows(8)
                    .any(|w| w[..2] == [254, 8] && w[2..4] == port && w[4..] == a),
                Addr::V6(a) => h
                    .windows(20)
                    .any(|w| w[..2] == [254, 20] && w[2..4] == port && w[4..] == a),
            };
            assert!(found, "client {c:?} not in {h:?}");
            assert!(s.count >= 1);
        }
    }
}

#[test]
fn kinds_parse() {
    let k = Kinds::parse(b"254").unwrap();
    assert_eq!(k, Kinds::DEFAULT);
    let k = Kinds::parse(b" 253, 200 ,254,").unwrap();
    assert_eq!(k.as_slice(), &[253, 200, 254]);
    assert_eq!(Kinds::parse(b""), Err(KindsError::Empty));
    assert_eq!(Kinds::parse(b","), Err(KindsError::Empty));
    assert_eq!(
        Kinds::parse(b"200,201,202,203,204"),
        Err(KindsError::TooMany)
    );
    assert_eq!(Kinds::parse(b"256"), Err(KindsError::NotAKind));
    assert_eq!(Kinds::parse(b"0x fe"), Err(KindsError::NotAKind));
    assert_eq!(Kinds::parse(b"-1"), Err(KindsError::NotAKind));
    assert_eq!(Kinds::parse(b"1000"), Err(KindsError::NotAKind));
    for r in [0u8, 1, 2, 3, 4, 5, 6, 7, 8, 28, 29, 30] {
        let s = format!("254,{r}");
        assert_eq!(
            Kinds::parse(s.as_bytes()),
            Err(KindsError::Reserved(r)),
            "{s}"
        );
    }
    assert!(Kinds::parse(b"9,27,31").is_ok());
    assert_eq!(Kinds::parse(b"254,254"), Err(KindsError::Repeated(254)));
}

#[test]
fn other_kinds_read_only_when_configured() {
    let mut o = v4opt(40000, [192, 0, 2, 7]);
    o[0] = 253;
    assert_eq!(
        scan_options(&o),
        Scan::default(),
        "253 is not read by default"
    );
    let k = Kinds::parse(b"253").unwrap();
    let s = scan_options_in(&o, &k);
    assert_eq!(s.client.unwrap().port, 40000);
    assert_eq!(s.count, 1);
    // 254 is then not read.
    assert_eq!(
        scan_options_in(&v4opt(1, [192, 0, 2, 1]), &k),
        Scan::default()
    );
    // Two kinds in one segment: the last wins, both counted.
    let k = Kinds::parse(b"254,200").unwrap();
    let mut o = v4opt(1111, [192, 0, 2, 1]);
    let mut second = v4opt(2222, [192, 0, 2, 2]);
    second[0] = 200;
    o.extend_from_slice(&second);
    let s = scan_options_in(&o, &k);
    assert_eq!(s.count, 2);
    assert_eq!(s.client.unwrap().port, 2222);
    // A configured kind with another length is ignored, not read.
    let s = scan_options_in(&[200, 6, 0, 1, 2, 3], &k);
    assert_eq!((s.client, s.ignored), (None, 1));
}
