use crate::imq::behavior::Behavior;

#[test]
fn parses_the_four_placements_case_insensitively() {
    for (s, pre, post) in [
        (&b"AA"[..], true, true),
        (b"AB", true, false),
        (b"BA", false, true),
        (b"bb", false, false),
        (b"aB", true, false),
    ] {
        let b = Behavior::parse(s).unwrap();
        assert_eq!((b.pre_after_nat, b.post_after_nat), (pre, post), "{s:?}");
        assert_eq!(b.name().as_bytes(), s.to_ascii_uppercase().as_slice());
    }
}

#[test]
fn rejects_anything_else() {
    for s in [&b""[..], b"A", b"ABA", b"XY", b"A ", b" A", b"AC", b"\0A"] {
        assert_eq!(Behavior::parse(s), None, "{s:?}");
    }
}

#[test]
fn priorities_are_those_of_the_original_patch() {
    // PREROUTING: before NAT = NF_IP_PRI_MANGLE + 1, after NAT = NF_IP_PRI_NAT_DST + 1.
    // POSTROUTING: before NAT = NF_IP_PRI_NAT_SRC - 1, after NAT = NF_IP_PRI_LAST.
    let p = |s: &[u8]| {
        let b = Behavior::parse(s).unwrap();
        (b.pre_routing_priority(), b.post_routing_priority())
    };
    assert_eq!(p(b"AA"), (-99, i32::MAX));
    assert_eq!(p(b"AB"), (-99, 99));
    assert_eq!(p(b"BA"), (-149, i32::MAX));
    assert_eq!(p(b"BB"), (-149, 99));
}

#[test]
fn hooks_sit_on_the_right_side_of_nat_and_mangle() {
    const MANGLE: i32 = -150;
    const NAT_DST: i32 = -100;
    const NAT_SRC: i32 = 100;
    for s in [&b"AA"[..], b"AB", b"BA", b"BB"] {
        let b = Behavior::parse(s).unwrap();
        let pre = b.pre_routing_priority();
        let post = b.post_routing_priority();
        // Always after mangle, where the IMQ target marks the packet.
        assert!(pre > MANGLE && post > MANGLE);
        assert_eq!(pre > NAT_DST, b.pre_after_nat);
        assert_eq!(post > NAT_SRC, b.post_after_nat);
    }
}
