//! The `-j IMQ` rule check (xt_IMQ) and the tag it shares with imq.

use crate::imq::{rule, tag};

const PRE: u32 = 1 << rule::HOOK_PRE_ROUTING;
const POST: u32 = 1 << rule::HOOK_POST_ROUTING;

#[test]
fn accepts_every_device_imq_can_have_in_both_hooks() {
    for todev in 0..tag::MAX_DEVS {
        for mask in [PRE, POST, PRE | POST] {
            assert_eq!(
                rule::check(todev, mask),
                Ok(()),
                "todev {todev} mask {mask:#x}"
            );
        }
    }
}

#[test]
fn refuses_devices_beyond_the_most_imq_creates() {
    for todev in [16, 17, 99, u32::MAX] {
        let why = rule::check(todev, PRE).unwrap_err();
        assert!(why.contains("at most 16 devices"), "{why}");
    }
}

#[test]
fn refuses_other_hooks() {
    // INPUT 1, FORWARD 2, OUTPUT 3: alone or with an allowed one; and no hook at all.
    for mask in [0, 1 << 1, 1 << 2, 1 << 3, PRE | 1 << 1, POST | 1 << 3] {
        let why = rule::check(0, mask).unwrap_err();
        assert!(
            why.contains("PREROUTING and POSTROUTING only"),
            "{mask:#x}: {why}"
        );
    }
}

#[test]
fn names_the_device_with_its_nul() {
    for (todev, want) in [
        (0, "imq0"),
        (9, "imq9"),
        (10, "imq10"),
        (15, "imq15"),
        (99, "imq99"),
    ] {
        let (name, len) = rule::device_name(todev);
        assert_eq!(&name[..len], want.as_bytes());
        assert_eq!(name[len], 0, "{want} is NUL-terminated");
    }
}

#[test]
fn a_divert_tag_is_read_only_at_its_own_hook() {
    for hook in [rule::HOOK_PRE_ROUTING as u8, rule::HOOK_POST_ROUTING as u8] {
        let t = tag::divert(7, hook);
        assert_eq!(t.1, 7);
        assert!(tag::is_divert(t, hook));
        let other = if hook == 0 { 4 } else { 0 };
        assert!(!tag::is_divert(t, other));
        // A queued packet's tag is never taken for a divert request.
        assert!(!tag::is_divert((tag::ENTRY, 7), hook));
    }
}
