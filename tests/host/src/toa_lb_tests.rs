//! The test balancer's insertion, read back by the toa module's own parser.
use crate::toa::option::{scan_tcp_header, Client};
use crate::toa::trusted::Addr;
use crate::toa_lb::insert::{checksum, insert_toa, Place, Skip, Variant, MTU};

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
