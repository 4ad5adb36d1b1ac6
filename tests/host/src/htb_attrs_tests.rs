use crate::sch_htb_rs::attrs::*;
use crate::sch_htb_rs::config::{HtbOpt, RateSpec};
use proptest::prelude::*;

/// One netlink attribute, padded to 4 bytes, as tc's addattr_l writes it.
fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
    let len = (4 + payload.len()) as u16;
    let mut v = Vec::new();
    v.extend_from_slice(&len.to_ne_bytes());
    v.extend_from_slice(&ty.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn sample_opt() -> HtbOpt {
    HtbOpt {
        rate: RateSpec {
            cell_log: 0,
            linklayer: 1,
            overhead: 4,
            cell_align: -1,
            mpu: 64,
            rate: 625_000,
        },
        ceil: RateSpec {
            cell_log: 0,
            linklayer: 1,
            overhead: 4,
            cell_align: -1,
            mpu: 64,
            rate: 750_000,
        },
        buffer: 1_920_000,
        cbuffer: 1_600,
        quantum: 0,
        level: 0,
        prio: 3,
    }
}

#[test]
fn class_attributes_round_trip() {
    let opt = sample_opt();
    let mut msg = attr(TCA_HTB_PARMS, &encode_opt(&opt));
    msg.extend(attr(TCA_HTB_RTAB, &[0u8; 1024]));
    msg.extend(attr(TCA_HTB_CTAB, &[0u8; 1024]));
    msg.extend(attr(TCA_HTB_RATE64, &(5u64 << 32).to_ne_bytes()));
    let a = parse(&msg).unwrap();
    assert_eq!(a.parms, Some(opt));
    assert_eq!(a.rate64, Some(5u64 << 32));
    assert_eq!(a.ceil64, None);
    assert!(a.init.is_none() && !a.offload);
}

#[test]
fn qdisc_attributes_round_trip() {
    let g = HtbGlob {
        version: 3,
        rate2quantum: 10,
        defcls: 0x30,
        debug: 0,
        direct_pkts: 0,
    };
    let mut msg = attr(TCA_HTB_INIT, &encode_glob(&g));
    msg.extend(attr(TCA_HTB_DIRECT_QLEN, &1000u32.to_ne_bytes()));
    let a = parse(&msg).unwrap();
    assert_eq!(a.init, Some(g));
    assert_eq!(a.direct_qlen, Some(1000));
}

#[test]
fn short_and_malformed_attributes_are_refused() {
    // Too short for the type (or a table too long): ERANGE, as the kernel's policy check.
    for bad in [
        attr(TCA_HTB_PARMS, &[0u8; HTB_OPT_LEN - 1]),
        attr(TCA_HTB_INIT, &[0u8; 8]),
        attr(TCA_HTB_DIRECT_QLEN, &[0u8; 2]),
        attr(TCA_HTB_RATE64, &[0u8; 4]),
        attr(TCA_HTB_RTAB, &[0u8; 1028]),
    ] {
        assert!(parse(&bad).unwrap_err().out_of_range);
    }
    assert_eq!(
        parse(&attr(TCA_HTB_INIT, &[0u8; 8])).unwrap_err().msg,
        "TCA_HTB_INIT too short"
    );
    // Header length beyond the buffer, and below the header size: EINVAL.
    let mut bad = attr(TCA_HTB_DIRECT_QLEN, &1u32.to_ne_bytes());
    bad[0] = 200;
    assert!(!parse(&bad).unwrap_err().out_of_range);
    bad[0] = 2;
    assert!(!parse(&bad).unwrap_err().out_of_range);
}

#[test]
fn unknown_types_flags_and_trailing_bytes_are_ignored() {
    let mut msg = attr(99, &[1, 2, 3]);
    // NLA_F_NESTED set on a known type still counts as that type.
    msg.extend(attr(TCA_HTB_DIRECT_QLEN | 0x8000, &7u32.to_ne_bytes()));
    msg.extend([0u8, 0]);
    let a = parse(&msg).unwrap();
    assert_eq!(a.direct_qlen, Some(7));
    // The last of duplicates wins, as nla_parse.
    let mut dup = attr(TCA_HTB_DIRECT_QLEN, &1u32.to_ne_bytes());
    dup.extend(attr(TCA_HTB_DIRECT_QLEN, &2u32.to_ne_bytes()));
    assert_eq!(parse(&dup).unwrap().direct_qlen, Some(2));
    assert!(parse(&attr(TCA_HTB_OFFLOAD, &[])).unwrap().offload);
    // A flag with a payload fails the kernel's policy (NLA_FLAG): ERANGE, as sch_htb.
    for payload in [&[0u8][..], &[0; 4], &[0; 8]] {
        let e = parse(&attr(TCA_HTB_OFFLOAD, payload)).unwrap_err();
        assert!(e.out_of_range, "{}", e.msg);
    }
}

#[test]
fn xstats_layout() {
    let x = encode_xstats(1, 2, -3, 4);
    assert_eq!(&x[0..4], &1u32.to_ne_bytes());
    assert_eq!(&x[4..8], &2u32.to_ne_bytes());
    assert_eq!(&x[8..12], &[0; 4]);
    assert_eq!(&x[12..16], &(-3i32).to_ne_bytes());
    assert_eq!(&x[16..20], &4i32.to_ne_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]
    /// Any bytes: no panic; whatever parses re-encodes to what was read.
    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        if let Ok(a) = parse(&bytes) {
            if let Some(o) = a.parms {
                let again = parse(&attr(TCA_HTB_PARMS, &encode_opt(&o))).unwrap();
                prop_assert_eq!(again.parms, Some(o));
            }
        }
    }
}
