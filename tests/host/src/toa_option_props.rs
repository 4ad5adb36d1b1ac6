//! Property tests (proptest) of the TOA option parser and the `trusted` list parser: any byte
//! string, and mutations of well-formed headers.
use crate::toa::option::{
    scan_options as scan_options_in, scan_tcp_header as scan_tcp_header_in, Kinds, TCP_MAX_LEN,
};
use crate::toa::trusted::{Addr, Trusted};
use proptest::prelude::*;

/// `scan_options` for the default kinds (254 alone).
fn scan_options(b: &[u8]) -> crate::toa::option::Scan {
    scan_options_in(b, &Kinds::DEFAULT)
}

/// `scan_tcp_header` for the default kinds (254 alone).
fn scan_tcp_header(b: &[u8]) -> crate::toa::option::Scan {
    scan_tcp_header_in(b, &Kinds::DEFAULT)
}

fn header_with(opts: &[u8]) -> Vec<u8> {
    let mut o = opts.to_vec();
    while o.len() % 4 != 0 {
        o.push(0);
    }
    o.truncate(40);
    let mut h = vec![0u8; 20];
    h[12] = (((20 + o.len()) / 4) as u8) << 4;
    h.extend(o);
    h
}

/// Sequences of options built from well-formed and broken pieces.
fn option_piece() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![1u8]),
        Just(vec![0u8]),
        (any::<u16>(), any::<[u8; 4]>()).prop_map(|(p, a)| {
            let mut v = vec![254, 8];
            v.extend(p.to_be_bytes());
            v.extend(a);
            v
        }),
        (any::<u16>(), any::<[u8; 16]>()).prop_map(|(p, a)| {
            let mut v = vec![254, 20];
            v.extend(p.to_be_bytes());
            v.extend(a);
            v
        }),
        (any::<u8>(), 0u8..12).prop_flat_map(|(k, l)| {
            proptest::collection::vec(any::<u8>(), l as usize).prop_map(move |rest| {
                let mut v = vec![k, l];
                v.extend(rest);
                v
            })
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    #[test]
    fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let s = scan_tcp_header(&bytes);
        let _ = scan_options(&bytes);
        if let Some(c) = s.client {
            prop_assert!(c.port != 0);
            // Only bytes inside the data offset are options.
            prop_assert!(bytes.len() > 20 && bytes.len() >= usize::from(bytes[12] >> 4) * 4);
            prop_assert!(usize::from(bytes[12] >> 4) * 4 <= TCP_MAX_LEN);
        }
    }

    #[test]
    fn the_client_found_is_the_last_well_formed_option(
        pieces in proptest::collection::vec(option_piece(), 0..8)
    ) {
        let opts: Vec<u8> = pieces.concat();
        let h = header_with(&opts);
        let s = scan_tcp_header(&h);
        // An independent byte-by-byte walk, as tcp_parse_options does it: stop at EOL or at
        // the first option whose length does not fit; remember the last good TOA.
        let area = &h[20..];
        let mut at = 0;
        let mut want = None;
        let mut count = 0u8;
        while at < area.len() {
            let kind = area[at];
            if kind == 0 { break; }
            if kind == 1 { at += 1; continue; }
            if at + 1 >= area.len() { break; }
            let len = area[at + 1] as usize;
            if len < 2 || at + len > area.len() { break; }
            let o = &area[at..at + len];
            if kind == 254 && (len == 8 || len == 20) {
                let port = u16::from_be_bytes([o[2], o[3]]);
                let addr = if len == 8 {
                    Addr::V4(o[4..8].try_into().unwrap())
                } else {
                    Addr::V6(o[4..20].try_into().unwrap())
                };
                let zero = match addr { Addr::V4(a) => a == [0; 4], Addr::V6(a) => a == [0; 16] };
                if port != 0 && !zero {
                    want = Some((addr, port));
                    count += 1;
                }
            }
            at += len;
        }
        prop_assert_eq!(s.client.map(|c| (c.addr, c.port)), want);
        prop_assert_eq!(s.count, count);
    }

    #[test]
    fn trusted_lists_never_panic(s in "[0-9a-fA-F:./, ]{0,64}") {
        if let Ok(t) = Trusted::parse(s.as_bytes()) {
            for p in t.prefixes() {
                let width = match p.addr { Addr::V4(_) => 32, Addr::V6(_) => 128 };
                prop_assert!(p.len <= width);
            }
        }
    }
}
