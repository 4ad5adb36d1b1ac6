//! Just enough of the nfnetlink_queue protocol to receive packets from one queue and give them
//! back, possibly modified.

use std::io;

const NETLINK_NETFILTER: libc::c_int = 12;
const NFNL_SUBSYS_QUEUE: u16 = 3;
const NFQNL_MSG_PACKET: u16 = 0;
const NFQNL_MSG_VERDICT: u16 = 1;
const NFQNL_MSG_CONFIG: u16 = 2;
const NFQA_PACKET_HDR: u16 = 1;
const NFQA_VERDICT_HDR: u16 = 2;
const NFQA_PAYLOAD: u16 = 10;
const NFQA_CFG_CMD: u16 = 1;
const NFQA_CFG_PARAMS: u16 = 2;
const NFQNL_CFG_CMD_BIND: u8 = 1;
const NFQNL_COPY_PACKET: u8 = 2;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
/// `NF_ACCEPT`.
pub const ACCEPT: u32 = 1;

/// A bound queue.
pub struct Queue {
    fd: libc::c_int,
    num: u16,
    seq: u32,
    buf: Vec<u8>,
}

/// One queued packet.
pub struct Packet<'a> {
    /// Kernel's id, for the verdict.
    pub id: u32,
    /// The packet from its network header on.
    pub payload: &'a [u8],
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

fn push_attr(msg: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    msg.extend_from_slice(&(len as u16).to_ne_bytes());
    msg.extend_from_slice(&ty.to_ne_bytes());
    msg.extend_from_slice(data);
    msg.resize(align4(msg.len()), 0);
}

impl Queue {
    /// Opens a netlink socket and binds queue `num`, copying whole packets.
    pub fn bind(num: u16) -> io::Result<Queue> {
        // SAFETY: plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW, NETLINK_NETFILTER) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut q = Queue {
            fd,
            num,
            seq: 0,
            buf: vec![0u8; 1 << 17],
        };
        q.config(NFQA_CFG_CMD, &[NFQNL_CFG_CMD_BIND, 0, 0, 0])?;
        let mut params = 0xffffu32.to_be_bytes().to_vec();
        params.push(NFQNL_COPY_PACKET);
        q.config(NFQA_CFG_PARAMS, &params)?;
        Ok(q)
    }

    fn message(&mut self, kind: u16, flags: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        self.seq += 1;
        let mut msg = vec![0u8; 16];
        msg[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | kind).to_ne_bytes());
        msg[6..8].copy_from_slice(&(NLM_F_REQUEST | flags).to_ne_bytes());
        msg[8..12].copy_from_slice(&self.seq.to_ne_bytes());
        // nfgenmsg: family unspecified, version 0, queue number (big endian).
        msg.extend_from_slice(&[0, 0]);
        msg.extend_from_slice(&self.num.to_be_bytes());
        for (ty, data) in attrs {
            push_attr(&mut msg, *ty, data);
        }
        let len = msg.len() as u32;
        msg[0..4].copy_from_slice(&len.to_ne_bytes());
        msg
    }

    fn send(&self, msg: &[u8]) -> io::Result<()> {
        // SAFETY: `msg` is a valid buffer of `msg.len()` bytes; the kernel's netlink address is
        // the default destination of an unconnected netlink socket when none is given.
        let n = unsafe { libc::send(self.fd, msg.as_ptr().cast(), msg.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    fn config(&mut self, ty: u16, data: &[u8]) -> io::Result<()> {
        let msg = self.message(NFQNL_MSG_CONFIG, NLM_F_ACK, &[(ty, data)]);
        self.send(&msg)?;
        let n = self.recv()?;
        let buf = &self.buf[..n];
        if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == NLMSG_ERROR {
            let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
            if err != 0 {
                return Err(io::Error::from_raw_os_error(-err));
            }
        }
        Ok(())
    }

    fn recv(&mut self) -> io::Result<usize> {
        // SAFETY: `self.buf` is a valid, writable buffer of its length.
        let n = unsafe { libc::recv(self.fd, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Waits for the next packet and returns (id, copy of the packet).
    pub fn next(&mut self) -> io::Result<(u32, Vec<u8>)> {
        loop {
            let n = self.recv()?;
            let mut off = 0;
            while off + 16 <= n {
                let buf = &self.buf[..n];
                let len = u32::from_ne_bytes(buf[off..off + 4].try_into().unwrap()) as usize;
                let ty = u16::from_ne_bytes([buf[off + 4], buf[off + 5]]);
                if len < 16 || off + len > n {
                    break;
                }
                if ty == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                    if let Some(p) = parse_packet(&buf[off + 20..off + len]) {
                        return Ok((p.id, p.payload.to_vec()));
                    }
                }
                off += align4(len);
            }
        }
    }

    /// Accepts packet `id`, replacing its contents with `payload`.
    pub fn accept(&mut self, id: u32, payload: &[u8]) -> io::Result<()> {
        let mut hdr = ACCEPT.to_be_bytes().to_vec();
        hdr.extend_from_slice(&id.to_be_bytes());
        let msg = self.message(
            NFQNL_MSG_VERDICT,
            0,
            &[(NFQA_VERDICT_HDR, &hdr), (NFQA_PAYLOAD, payload)],
        );
        self.send(&msg)
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        // SAFETY: `fd` is our open socket, closed once.
        unsafe { libc::close(self.fd) };
    }
}

fn parse_packet(mut attrs: &[u8]) -> Option<Packet<'_>> {
    let mut id = None;
    let mut payload = None;
    while attrs.len() >= 4 {
        let len = usize::from(u16::from_ne_bytes([attrs[0], attrs[1]]));
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let data = &attrs[4..len];
        match ty {
            NFQA_PACKET_HDR if data.len() >= 4 => {
                id = Some(u32::from_be_bytes(data[..4].try_into().unwrap()))
            }
            NFQA_PAYLOAD => payload = Some(data),
            _ => {}
        }
        attrs = &attrs[align4(len).min(attrs.len())..];
    }
    Some(Packet {
        id: id?,
        payload: payload?,
    })
}
