//! Listening sockets from the kernel over netlink `sock_diag`, the way `ss`
//! gets them: one dump per family, filtered in the kernel to the LISTEN state,
//! so a host with 50,000 established connections sends us only its listeners.
//!
//! The calls block, so the caller runs them on a blocking thread. A receive
//! timeout and a cap on rows keep a misbehaving kernel answer bounded.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    SockDiagMessage,
    constants::{AF_INET, AF_INET6, IPPROTO_TCP, TCP_LISTEN},
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
    unix::{ShowFlags, StateFlags as UnixStateFlags, UnixRequest},
};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_SOCK_DIAG};
use nix::sys::socket::{setsockopt, sockopt::ReceiveTimeout};
use nix::sys::time::TimeVal;

use super::procfs::UNIX_STREAM;

/// A listener as the kernel reports it, before owner lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawListener {
    /// `tcp4`, `tcp6` or `unix`.
    pub family: &'static str,
    /// IP address, or the unix path (`@name` for abstract sockets).
    pub address: String,
    /// TCP port, 0 for unix.
    pub port: u32,
    /// Accept-queue length.
    pub queued: u32,
    /// Configured backlog (0 when unknown).
    pub backlog: u32,
    /// Socket inode.
    pub inode: u64,
}

/// Dumps TCP v4, v6 and unix stream listeners, at most `cap` rows in all.
pub fn dump_listeners(timeout: Duration, cap: usize) -> io::Result<Vec<RawListener>> {
    let mut out = Vec::new();
    for family in [AF_INET, AF_INET6] {
        let request = SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id: if family == AF_INET {
                SocketId::new_v4()
            } else {
                SocketId::new_v6()
            },
        });
        dump(request, timeout, cap, &mut out)?;
    }
    let request = SockDiagMessage::UnixRequest(UnixRequest {
        state_flags: UnixStateFlags::LISTEN,
        inode: 0,
        show_flags: ShowFlags::NAME | ShowFlags::RQLEN | ShowFlags::PEER,
        cookie: [0xff; 8],
    });
    dump(request, timeout, cap, &mut out)?;
    Ok(out)
}

fn dump(
    request: SockDiagMessage,
    timeout: Duration,
    cap: usize,
    out: &mut Vec<RawListener>,
) -> io::Result<()> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&SocketAddr::new(0, 0))?;
    setsockopt(
        &socket,
        ReceiveTimeout,
        &TimeVal::from(libc::timeval {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_usec: i64::from(timeout.subsec_micros()),
        }),
    )
    .map_err(io::Error::from)?;

    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut packet = NetlinkMessage::new(header, request.into());
    packet.finalize();
    let mut buf = vec![0; packet.buffer_len()];
    packet.serialize(&mut buf);
    socket.send(&buf, 0)?;

    let mut receive = vec![0u8; 64 * 1024];
    loop {
        let size = socket.recv(&mut &mut receive[..], 0)?;
        if size == 0 {
            return Ok(());
        }
        let mut offset = 0;
        while offset < size {
            let bytes = &receive[offset..size];
            // The header's length field lets us skip a message we cannot decode.
            let Some(length) = bytes
                .get(..4)
                .map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize)
            else {
                break;
            };
            if length < 16 || length > bytes.len() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated netlink message",
                ));
            }
            offset += nlmsg_align(length);
            let Ok(message) = NetlinkMessage::<SockDiagMessage>::deserialize(&bytes[..length])
            else {
                continue;
            };
            match message.payload {
                NetlinkPayload::Done(_) => return Ok(()),
                NetlinkPayload::Error(error) => {
                    return Err(match error.code {
                        Some(code) => io::Error::from_raw_os_error(-code.get()),
                        None => io::Error::other("netlink error"),
                    });
                }
                NetlinkPayload::InnerMessage(inner) => {
                    if out.len() < cap
                        && let Some(listener) = convert(inner)
                    {
                        out.push(listener);
                    }
                }
                _ => {}
            }
        }
    }
}

fn nlmsg_align(length: usize) -> usize {
    (length + 3) & !3
}

fn convert(message: SockDiagMessage) -> Option<RawListener> {
    match message {
        SockDiagMessage::InetResponse(response) => {
            let header = &response.header;
            if header.state != TCP_LISTEN {
                return None;
            }
            let address = header.socket_id.source_address;
            Some(RawListener {
                family: if matches!(address, IpAddr::V4(_)) {
                    "tcp4"
                } else {
                    "tcp6"
                },
                address: address.to_string(),
                port: u32::from(header.socket_id.source_port),
                queued: header.recv_queue,
                backlog: header.send_queue,
                inode: u64::from(header.inode),
            })
        }
        SockDiagMessage::UnixResponse(response) => {
            if response.header.state != TCP_LISTEN || response.header.kind != UNIX_STREAM as u8 {
                return None;
            }
            let address = response
                .name()
                .map(|n| abstract_name(n))
                .unwrap_or_default();
            Some(RawListener {
                family: "unix",
                address,
                port: 0,
                queued: response.number_of_pending_connection().unwrap_or(0),
                backlog: response.max_number_of_pending_connection().unwrap_or(0),
                inode: u64::from(response.header.inode),
            })
        }
        _ => None,
    }
}

/// Abstract names start with NUL; show them as `@name` like `ss` does.
fn abstract_name(name: &str) -> String {
    match name.strip_prefix('\0') {
        Some(rest) => format!("@{}", rest.replace('\0', "@")),
        None => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_names_get_an_at_sign() {
        assert_eq!(abstract_name("\0/tmp/x"), "@/tmp/x");
        assert_eq!(abstract_name("/run/a.sock"), "/run/a.sock");
    }

    #[test]
    fn dump_sees_a_fresh_listener_with_its_backlog() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = u32::from(listener.local_addr().unwrap().port());
        let rows = dump_listeners(Duration::from_secs(2), 100_000).unwrap();
        let row = rows
            .iter()
            .find(|r| r.family == "tcp4" && r.port == port)
            .unwrap();
        assert_eq!(row.address, "127.0.0.1");
        assert_eq!(row.queued, 0);
        // std listens with a backlog of 128 (capped by somaxconn).
        assert!(row.backlog > 0);
        assert!(row.inode > 0);
    }
}
