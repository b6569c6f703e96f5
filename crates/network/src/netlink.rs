//! A small synchronous rtnetlink socket: send one request and wait for its acknowledgement, get one
//! object, or dump a table. No async runtime (the same choice as netavark).
//!
//! A netlink socket belongs to the network namespace of the thread that opened it: open it inside
//! [`crate::in_netns`] to work on another namespace.

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_ACK_TLVS, NLM_F_CAPPED, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_MULTIPART, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};
use nix::errno::Errno;

use crate::error::{Context, Error, Result};

/// How often a dump the kernel flagged as interrupted (the table changed while it was being
/// read, `NLM_F_DUMP_INTR`) is retried before giving up.
const DUMP_RETRIES: usize = 5;

/// An open `NETLINK_ROUTE` socket, connected to the kernel.
pub struct Netlink {
    socket: Socket,
    seq: u32,
}

impl std::fmt::Debug for Netlink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Netlink").field("seq", &self.seq).finish_non_exhaustive()
    }
}

impl Netlink {
    /// Open a socket in the calling thread's network namespace.
    pub fn open() -> Result<Netlink> {
        let mut socket = Socket::new(NETLINK_ROUTE).ctx(|| "open a NETLINK_ROUTE socket".into())?;
        socket.bind_auto().ctx(|| "bind the rtnetlink socket".into())?;
        socket.connect(&SocketAddr::new(0, 0)).ctx(|| "connect the rtnetlink socket".into())?;
        // Extended acks carry the kernel's own explanation of a refusal; capped acks do not echo
        // the whole request back. Both are optional niceties: old kernels may refuse them.
        let _ = socket.set_ext_ack(true);
        let _ = socket.set_cap_ack(true);
        Ok(Netlink { socket, seq: 0 })
    }

    /// Send a request that changes something and wait for the kernel's acknowledgement.
    /// `flags` are added to `NLM_F_REQUEST | NLM_F_ACK` (e.g. `NLM_F_CREATE | NLM_F_EXCL`).
    /// `what` names the change for the error message ("add address 10.0.0.1/24 to eth0").
    pub fn request(&mut self, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<()> {
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK | flags, what, |_| {})
    }

    /// Ask for one object (e.g. `GetLink` with a name) and return the kernel's reply.
    pub fn get(&mut self, msg: RouteNetlinkMessage, what: &str) -> Result<RouteNetlinkMessage> {
        let mut reply = None;
        self.exchange(msg, NLM_F_REQUEST | NLM_F_ACK, what, |m| reply = reply.take().or(Some(m)))?;
        reply.ok_or_else(|| Error::Decode { what: what.into(), reason: "the kernel acknowledged without a reply".into() })
    }

    /// Dump a table (links, addresses, routes) and return all its entries.
    pub fn dump(&mut self, msg: RouteNetlinkMessage, what: &str) -> Result<Vec<RouteNetlinkMessage>> {
        let mut tries = 0;
        loop {
            let mut out = Vec::new();
            match self.exchange(msg.clone(), NLM_F_REQUEST | NLM_F_DUMP, what, |m| out.push(m)) {
                Err(Error::Netlink { errno: Errno::EINTR, .. }) if tries < DUMP_RETRIES => tries += 1,
                other => return other.map(|()| out),
            }
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// Send `msg` and read replies until its acknowledgement, error or end of dump.
    fn exchange(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: &str,
        mut each: impl FnMut(RouteNetlinkMessage),
    ) -> Result<()> {
        let seq = self.next_seq();
        let packet = encode(msg, flags, seq);
        self.socket.send(&packet, 0).ctx(|| format!("{what}: send the netlink request"))?;
        let dump = flags & NLM_F_DUMP == NLM_F_DUMP;
        let mut interrupted = false;
        loop {
            let (buf, _) = self.socket.recv_from_full().ctx(|| format!("{what}: read the kernel's reply"))?;
            let mut off = 0;
            while off < buf.len() {
                let header = NetlinkBuffer::new_checked(&buf[off..])
                    .map_err(|e| Error::Decode { what: what.into(), reason: e.to_string() })?;
                let len = header.length() as usize;
                let this = &buf[off..off + len];
                off += align4(len).max(16);
                if header.sequence_number() != seq {
                    continue; // a late reply to an earlier request
                }
                interrupted |= header.flags() & NLM_F_DUMP_INTR != 0;
                let parsed: NetlinkMessage<RouteNetlinkMessage> = match NetlinkMessage::deserialize(this) {
                    Ok(m) => m,
                    // One entry of a dump that this crate version cannot parse (a newer kernel's
                    // attribute, say) must not hide the rest of the table.
                    Err(e) if dump => {
                        tracing::warn!(what, error = %e, "skipping an undecodable netlink message");
                        continue;
                    }
                    Err(e) => return Err(Error::Decode { what: what.into(), reason: e.to_string() }),
                };
                let msg_flags = parsed.header.flags;
                match parsed.payload {
                    NetlinkPayload::Done(done) => {
                        if done.code < 0 {
                            let errno = Errno::from_raw(-done.code);
                            return Err(Error::Netlink { what: what.into(), errno, detail: ext_ack_message(&done.extended_ack) });
                        }
                        return if interrupted {
                            Err(Error::Netlink {
                                what: what.into(),
                                errno: Errno::EINTR,
                                detail: Some("dump interrupted".into()),
                            })
                        } else {
                            Ok(())
                        };
                    }
                    NetlinkPayload::Error(err) => {
                        return match err.code {
                            None => Ok(()),
                            Some(code) => Err(Error::Netlink {
                                what: what.into(),
                                errno: Errno::from_raw(-code.get()),
                                detail: error_detail(&err.header, msg_flags),
                            }),
                        };
                    }
                    NetlinkPayload::InnerMessage(inner) => {
                        each(inner);
                        if !dump && flags & NLM_F_ACK == 0 && msg_flags & NLM_F_MULTIPART == 0 {
                            return Ok(());
                        }
                    }
                    NetlinkPayload::Overrun(_) => {
                        return Err(Error::Decode { what: what.into(), reason: "netlink overrun".into() });
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The bytes of one request: a netlink header (type from the message, `flags`, `seq`) + payload.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut packet = NetlinkMessage::new(NetlinkHeader::default(), NetlinkPayload::from(msg));
    packet.header.flags = flags;
    packet.header.sequence_number = seq;
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    buf
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The kernel's extended-ack text in an `NLMSG_ERROR` payload (after the error code): the
/// original request's header (only the header when `NLM_F_CAPPED`, else the whole request), then,
/// when `NLM_F_ACK_TLVS`, attributes of which `NLMSGERR_ATTR_MSG` is the text.
pub(crate) fn error_detail(payload: &[u8], flags: u16) -> Option<String> {
    if flags & NLM_F_ACK_TLVS == 0 {
        return None;
    }
    let echoed = if flags & NLM_F_CAPPED != 0 { 16 } else { u32::from_ne_bytes(payload.get(..4)?.try_into().ok()?) as usize };
    ext_ack_message(payload.get(align4(echoed)..)?)
}

/// `NLMSGERR_ATTR_MSG` (type 1, a NUL-terminated string) among netlink attributes.
pub(crate) fn ext_ack_message(mut tlvs: &[u8]) -> Option<String> {
    const NLMSGERR_ATTR_MSG: u16 = 1;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == NLMSGERR_ATTR_MSG {
            let text = &tlvs[4..len];
            let text = text.split(|&b| b == 0).next().unwrap_or_default();
            let text = String::from_utf8_lossy(text).trim().to_string();
            return (!text.is_empty()).then_some(text);
        }
        tlvs = tlvs.get(align4(len)..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::link::{LinkAttribute, LinkMessage};

    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(value);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn encode_sets_header() {
        let mut link = LinkMessage::default();
        link.attributes.push(LinkAttribute::IfName("eg-outside".into()));
        let buf = encode(RouteNetlinkMessage::GetLink(link), NLM_F_REQUEST | NLM_F_ACK, 7);
        let hdr = NetlinkBuffer::new_checked(&buf[..]).unwrap();
        assert_eq!(hdr.length() as usize, buf.len());
        assert_eq!(hdr.message_type(), 18); // RTM_GETLINK
        assert_eq!(hdr.flags(), NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(hdr.sequence_number(), 7);
        // The name is in there, NUL-terminated.
        assert!(buf.windows(11).any(|w| w == b"eg-outside\0"));
        // It parses back to the same message.
        let back: NetlinkMessage<RouteNetlinkMessage> = NetlinkMessage::deserialize(&buf).unwrap();
        let NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetLink(m)) = back.payload else { panic!() };
        assert_eq!(m.attributes, vec![LinkAttribute::IfName("eg-outside".into())]);
    }

    #[test]
    fn ext_ack_text_found() {
        let mut payload = vec![0u8; 16]; // the capped original header
        payload.extend(tlv(3, &4u32.to_ne_bytes())); // NLMSGERR_ATTR_OFFS
        payload.extend(tlv(1, b"Invalid prefix for given prefix length\0"));
        assert_eq!(
            error_detail(&payload, NLM_F_CAPPED | NLM_F_ACK_TLVS).as_deref(),
            Some("Invalid prefix for given prefix length")
        );
        // Without NLM_F_ACK_TLVS there is nothing to read.
        assert_eq!(error_detail(&payload, NLM_F_CAPPED), None);
    }

    #[test]
    fn ext_ack_uncapped_skips_whole_request() {
        let mut payload = vec![0u8; 24];
        payload[..4].copy_from_slice(&24u32.to_ne_bytes());
        payload.extend(tlv(1, b"oops\0"));
        assert_eq!(error_detail(&payload, NLM_F_ACK_TLVS).as_deref(), Some("oops"));
    }

    #[test]
    fn ext_ack_garbage_is_none() {
        assert_eq!(ext_ack_message(&[1, 0]), None);
        assert_eq!(ext_ack_message(&[2, 0, 1, 0]), None); // length below the TLV header
        assert_eq!(ext_ack_message(&[200, 0, 1, 0, b'x']), None); // length past the end
        assert_eq!(error_detail(&[], NLM_F_ACK_TLVS), None);
    }

    #[test]
    fn error_message_is_one_line() {
        let e = Error::Netlink { what: "create veth eg-outside".into(), errno: Errno::EEXIST, detail: None };
        assert_eq!(e.to_string(), "create veth eg-outside: EEXIST: File exists");
        let e = Error::Netlink { what: "x".into(), errno: Errno::EINVAL, detail: Some("bad".into()) };
        assert_eq!(e.to_string(), "x: EINVAL: Invalid argument (bad)");
    }
}
