//! The test balancer's insertion, read back by the toa module's own parser.
use crate::toa::option::{scan_tcp_header as scan_tcp_header_in, Client, Kinds};
use crate::toa::trusted::Addr;
use crate::toa_lb::insert::{checksum, insert_toa, Place, Skip, Variant, MTU};

/// `scan_tcp_header` for the default kinds (254 alone).
fn scan_tcp_header(b: &[u8]) -> crate::toa::option::Scan {
    scan_tcp_header_in(b, &Kinds::DEFAULT)
}

fn tcp(sport: u16, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let doff = (20 + opts.len()) / 4;
    let mut t = sport.to_be_bytes().to_vec();
    t.extend_from_slice(&[
        0,
        80,
        0,
        0,
        0,
        1,
        0,
        0,
        0,
        0,
        (doff as u8) << 4,
        0x02,
        0xff,
        0xff,
    ]);
    t.extend_from_slice(&[0, 0, 0, 0]);
    t.extend_from_slice(opts);
    t.extend_from_slice(payload);
    t
}

fn ipv4(src: [u8; 4], dst: [u8; 4], tcp: &[u8]) -> Vec<u8> {
    let total = (20 + tcp.len()) as u16;
    let mut p = vec![0x45, 0];
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, 6, 0, 0]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(tcp);
    p
}

fn ipv6(src: [u8; 16], dst: [u8; 16], tcp: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
    p.extend_from_slice(&[6, 64]);
    p.extend_from_slice(&src);
    p.extend_from_slice(&dst);
    p.extend_from_slice(tcp);
    p
}

fn tcp_sum_ok_v4(p: &[u8]) -> bool {
    let ihl = usize::from(p[0] & 15) * 4;
    let mut pseudo = p[12..20].to_vec();
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&((p.len() - ihl) as u16).to_be_bytes());
    checksum(&[&pseudo, &p[ihl..]]) == 0
}

#[test]
fn ipv4_syn_gets_the_client_and_valid_checksums() {
    let mss_sack_ts = [
        2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let p = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(40000, &mss_sack_ts, b""));
    let out = insert_toa(&p, Place::Both, Variant::Good).unwrap();
    assert_eq!(out.len(), p.len() + 8);
    assert_eq!(u16::from_be_bytes([out[2], out[3]]) as usize, out.len());
    assert_eq!(checksum(&[&out[..20]]), 0, "IPv4 header checksum");
    assert!(tcp_sum_ok_v4(&out), "TCP checksum");
    let scan = scan_tcp_header(&out[20..]);
    assert_eq!(
        scan.client,
        Some(Client {
            addr: Addr::V4([10, 0, 1, 2]),
            port: 40000
        })
    );
    assert!(!scan.malformed);
    // The original options follow, intact.
    assert_eq!(&out[48..68], &mss_sack_ts);
}

#[test]
fn only_the_asked_for_segments_get_it() {
    let mut syn = ipv4([192, 0, 2, 1], [10, 0, 2, 2], &tcp(5555, &[], b""));
    let mut ack = syn.clone();
    ack[33] = 0x10;
    let mut data = ipv4([192, 0, 2, 1], [10, 0, 2, 2], &tcp(5555, &[], b"hello"));
    data[33] = 0x18;
    let mut rst = ack.clone();
    rst[33] = 0x14;
    assert!(insert_toa(&syn, Place::Syn, Variant::Good).is_ok());
    assert_eq!(
        insert_toa(&syn, Place::Ack, Variant::Good),
        Err(Skip::NotWanted)
    );
    // The final ACK, and data that may overtake it, get it; a reset never does.
    assert!(insert_toa(&ack, Place::Ack, Variant::Good).is_ok());
    assert!(insert_toa(&data, Place::Ack, Variant::Good).is_ok());
    assert_eq!(
        insert_toa(&ack, Place::Syn, Variant::Good),
        Err(Skip::NotWanted)
    );
    assert!(
        insert_toa(&ack, Place::Both, Variant::Good).is_ok()
            && insert_toa(&syn, Place::Both, Variant::Good).is_ok()
    );
    assert_eq!(
        insert_toa(&rst, Place::Both, Variant::Good),
        Err(Skip::NotWanted)
    );
    // Data is kept after the option, and an odd length still checksums right.
    let out = insert_toa(&data, Place::Ack, Variant::Good).unwrap();
    assert_eq!(&out[out.len() - 5..], b"hello");
    assert!(tcp_sum_ok_v4(&out));
    syn.push(0);
    syn[3] += 1;
    assert!(tcp_sum_ok_v4(
        &insert_toa(&syn, Place::Syn, Variant::Good).unwrap()
    ));
}

#[test]
fn full_sized_segments_pass_unchanged() {
    let big = vec![0x55u8; MTU - 40];
    let mut data = ipv4([192, 0, 2, 1], [10, 0, 2, 2], &tcp(5555, &[], &big));
    data[33] = 0x10;
    assert_eq!(
        insert_toa(&data, Place::Ack, Variant::Good),
        Err(Skip::NoRoom)
    );
    let fits = ipv4([192, 0, 2, 1], [10, 0, 2, 2], &tcp(5555, &[], &big[8..]));
    let mut fits = fits;
    fits[33] = 0x10;
    assert_eq!(
        insert_toa(&fits, Place::Ack, Variant::Good).unwrap().len(),
        MTU
    );
}

#[test]
fn ipv6_gets_a_20_byte_option() {
    let src = [0x20, 1, 0xd, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let dst = [0x20, 1, 0xd, 0xb8, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
    let p = ipv6(src, dst, &tcp(41000, &[2, 4, 5, 0xa0], b""));
    let out = insert_toa(&p, Place::Both, Variant::Good).unwrap();
    assert_eq!(out.len(), p.len() + 20);
    assert_eq!(
        u16::from_be_bytes([out[4], out[5]]) as usize,
        out.len() - 40
    );
    let mut pseudo = out[8..40].to_vec();
    pseudo.extend_from_slice(&((out.len() - 40) as u32).to_be_bytes());
    pseudo.extend_from_slice(&[0, 0, 0, 6]);
    assert_eq!(checksum(&[&pseudo, &out[40..]]), 0);
    let scan = scan_tcp_header(&out[40..]);
    assert_eq!(
        scan.client,
        Some(Client {
            addr: Addr::V6(src),
            port: 41000
        })
    );
}

#[test]
fn no_room_and_non_tcp_pass_unchanged() {
    let full = [1u8; 40];
    let p = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(1, &full[..36], b""));
    assert_eq!(
        insert_toa(&p, Place::Both, Variant::Good),
        Err(Skip::NoRoom)
    );
    let mut udp = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(1, &[], b""));
    udp[9] = 17;
    assert_eq!(
        insert_toa(&udp, Place::Both, Variant::Good),
        Err(Skip::NotTcp)
    );
    let mut frag = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(1, &[], b""));
    frag[6] = 0x20;
    assert_eq!(
        insert_toa(&frag, Place::Both, Variant::Good),
        Err(Skip::NotTcp)
    );
    assert_eq!(
        insert_toa(&p[..30], Place::Both, Variant::Good),
        Err(Skip::Truncated)
    );
    assert_eq!(
        insert_toa(&[], Place::Both, Variant::Good),
        Err(Skip::NotTcp)
    );
}

/// Each broken variant reads back, through the module's parser, as what the module must count.
#[test]
fn broken_variants_read_back_as_intended() {
    let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let mut p = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(40000, &ts, b""));
    p[33] = 0x10;
    let scan = |v| scan_tcp_header(&insert_toa(&p, Place::Ack, v).unwrap()[20..]);
    let real = Some(Client {
        addr: Addr::V4([10, 0, 1, 2]),
        port: 40000,
    });
    let s = scan(Variant::BadLen);
    assert_eq!((s.client, s.ignored, s.malformed), (None, 1, false));
    let s = scan(Variant::Truncated);
    assert_eq!((s.client, s.malformed), (None, true));
    let s = scan(Variant::ZeroLen);
    assert_eq!((s.client, s.malformed), (None, true));
    let s = scan(Variant::Repeated);
    assert_eq!((s.client, s.count), (real, 2));
    // Broken options go after the segment's own, which stay first for the kernel's parser.
    let out = insert_toa(&p, Place::Ack, Variant::ZeroLen).unwrap();
    assert_eq!(&out[40..52], &ts);
    assert!(tcp_sum_ok_v4(&out));
}

/// The fuzzing variant's options, read by the toa module's own parser: whatever the mix, the
/// client it finds is the real one or a forged one (never bytes from elsewhere), and the
/// segment's own options and payload are intact.
#[test]
fn random_options_read_back_as_real_or_forged_clients() {
    use crate::toa_lb::insert::{random_options, FORGED_V4, FORGED_V6};
    let mss_sack_ts = [
        2, 4, 5, 180, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
    ];
    let mut v = Variant::parse("random:7").unwrap();
    let (mut real, mut forged, mut none) = (0, 0, 0);
    for i in 0..20000u32 {
        let six = i % 2 == 1;
        let port = 1024 + (i % 60000) as u16;
        let t = tcp(port, &mss_sack_ts, b"hello");
        let p = if six {
            let mut src = [0u8; 16];
            src[..4].copy_from_slice(&[0x20, 1, 0xd, 0xb8]);
            src[15] = 2;
            ipv6(src, [0; 16], &t)
        } else {
            ipv4([10, 0, 1, 2], [10, 0, 9, 100], &t)
        };
        let hdr = if six { 40 } else { 20 };
        if let Variant::Random(s) = v {
            let (o, _) = random_options(s, [0, 0], if six { &[0; 16] } else { &[0; 4] });
            assert!(o.len() <= 20 && o.len() % 4 == 0, "{o:?}");
        }
        let ins = insert_toa(&p, Place::Both, v);
        v = v.next();
        let out = match ins {
            Ok(o) => o,
            Err(Skip::NoRoom) => continue,
            Err(e) => panic!("{e:?}"),
        };
        assert!(out.ends_with(b"hello"));
        let scan = scan_tcp_header(&out[hdr..]);
        let Some(c) = scan.client else {
            none += 1;
            continue;
        };
        // The client is an option that is really there: kind 254, its length, port, address
        // (random bytes may form one too; the parser must never make one up).
        let addr: &[u8] = match &c.addr {
            Addr::V4(a) => a,
            Addr::V6(a) => a,
        };
        let mut want = vec![254, 4 + addr.len() as u8];
        want.extend_from_slice(&c.port.to_be_bytes());
        want.extend_from_slice(addr);
        let doff = usize::from(out[hdr + 12] >> 4) * 4;
        let opts = &out[hdr + 20..hdr + doff];
        assert!(
            opts.windows(want.len()).any(|w| w == want.as_slice()),
            "segment {i}: client {c:?} is not in the options {opts:02x?}"
        );
        match c.addr {
            Addr::V4(a) if a == [10, 0, 1, 2] && c.port == port => real += 1,
            Addr::V6(a) if a == p[8..24] && c.port == port => real += 1,
            Addr::V4(a) if a[..3] == FORGED_V4 => forged += 1,
            Addr::V6(a) if a[..6] == FORGED_V6 => forged += 1,
            _ => {}
        }
    }
    // Every outcome occurs.
    assert!(
        real > 100 && forged > 100 && none > 100,
        "{real} {forged} {none}"
    );
}

#[test]
fn nat64_puts_the_client_in_the_nat64_prefix_with_the_ipv6_length() {
    let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
    let p = ipv4([10, 0, 1, 2], [10, 0, 2, 2], &tcp(40000, &ts, b"x"));
    let out = insert_toa(&p, Place::Both, Variant::parse("nat64").unwrap()).unwrap();
    assert_eq!(out.len(), p.len() + 20);
    assert!(tcp_sum_ok_v4(&out), "TCP checksum");
    let mut want = [0u8; 16];
    want[1..4].copy_from_slice(&[0x64, 0xff, 0x9b]);
    want[12..].copy_from_slice(&[10, 0, 1, 2]);
    let scan = scan_tcp_header(&out[20..]);
    assert_eq!(
        scan.client,
        Some(Client {
            addr: Addr::V6(want),
            port: 40000
        })
    );
}

#[test]
fn the_nat64_lookup_answers_in_dpvs_layout() {
    use crate::toa::nat64::{check_request, peer_bytes, Refusal, PEER_LEN, TOA_SO_GET_LOOKUP};
    let mut a = [0u8; 16];
    a[0] = 0x20;
    a[15] = 7;
    let b = peer_bytes(a, 0x1234);
    assert_eq!(
        PEER_LEN, 20,
        "sizeof(struct toa_nat64_peer) with in6_addr's alignment"
    );
    assert_eq!(&b[..16], &a);
    assert_eq!(&b[16..18], &[0x12, 0x34], "port in network order");
    assert_eq!(&b[18..], &[0, 0], "padding zeroed, not stack leftovers");
    assert_eq!(check_request(TOA_SO_GET_LOOKUP, 20), Ok(()));
    assert_eq!(check_request(TOA_SO_GET_LOOKUP, 64), Ok(()));
    assert_eq!(check_request(TOA_SO_GET_LOOKUP, 18), Err(Refusal::Invalid));
    assert_eq!(
        check_request(TOA_SO_GET_LOOKUP + 1, 20),
        Err(Refusal::Invalid)
    );
}

#[test]
fn the_nat64_lookup_answers_only_an_ipv6_client_on_an_ipv4_socket() {
    use crate::toa::nat64::{answer, peer_bytes, Refusal};
    let v6 = Client {
        addr: Addr::V6([0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9]),
        port: 4242,
    };
    let v4 = Client {
        addr: Addr::V4([10, 0, 1, 2]),
        port: 4242,
    };
    let Addr::V6(a) = v6.addr else { unreachable!() };
    assert_eq!(answer(true, Some(v6), false), Ok(peer_bytes(a, 4242)));
    assert_eq!(answer(false, Some(v6), false), Err(Refusal::NotConnected));
    assert_eq!(answer(true, None, false), Err(Refusal::Invalid));
    // Not NAT64: getpeername() answers these (DPVS: EFAULT).
    assert_eq!(answer(true, Some(v4), false), Err(Refusal::NotNat64));
    assert_eq!(answer(true, Some(v6), true), Err(Refusal::NotNat64));
}
