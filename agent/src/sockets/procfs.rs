//! Pure parsers for the `/proc/net/tcp`, `/proc/net/tcp6` and `/proc/net/unix`
//! tables, the fallback when netlink sock_diag is refused (old kernels,
//! seccomp, missing capabilities).
//!
//! They take the whole file text and skip lines they cannot read, so a fuzz
//! target can feed them anything. The tables print addresses as native-endian
//! hex words, which is why the address decoding goes through `to_ne_bytes`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP state number of a listening socket (`TCP_LISTEN` in the kernel).
pub const TCP_LISTEN: u8 = 10;

/// `__SO_ACCEPTCON`: the flag `/proc/net/unix` shows for listening sockets.
const SO_ACCEPTCON: u32 = 0x0001_0000;

/// `SOCK_STREAM` as printed in the `Type` column of `/proc/net/unix`.
pub const UNIX_STREAM: u16 = 1;

/// One row of `/proc/net/tcp` or `/proc/net/tcp6`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNetSocket {
    /// Read from the `tcp6` table.
    pub v6: bool,
    /// Local address.
    pub local: IpAddr,
    /// Local port.
    pub local_port: u16,
    /// Remote address (unspecified for listeners).
    pub remote: IpAddr,
    /// Remote port (0 for listeners).
    pub remote_port: u16,
    /// Kernel TCP state number; [`TCP_LISTEN`] for listeners.
    pub state: u8,
    /// `tx_queue` column.
    pub tx_queue: u32,
    /// `rx_queue` column: the accept-queue length for listeners.
    pub rx_queue: u32,
    /// Owner uid.
    pub uid: u32,
    /// Socket inode, the key to find the owning process.
    pub inode: u64,
}

impl ProcNetSocket {
    /// Whether the row is a listening socket.
    pub fn is_listener(&self) -> bool {
        self.state == TCP_LISTEN
    }
}

/// One row of `/proc/net/unix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcNetUnix {
    /// `Flags` column; listening sockets carry `__SO_ACCEPTCON`.
    pub flags: u32,
    /// `Type` column: 1 stream, 2 datagram, 5 seqpacket.
    pub kind: u16,
    /// `St` column (socket state, not TCP state).
    pub state: u8,
    /// Socket inode.
    pub inode: u64,
    /// Bound path; abstract names start with `@`. `None` when unbound.
    pub path: Option<String>,
}

impl ProcNetUnix {
    /// Whether the row is a listening stream socket.
    pub fn is_stream_listener(&self) -> bool {
        self.flags & SO_ACCEPTCON != 0 && self.kind == UNIX_STREAM
    }
}

/// Parses `/proc/net/tcp` (`v6 == false`) or `/proc/net/tcp6` text. Lines
/// that do not parse (the header, truncated rows) are skipped.
pub fn parse_proc_net_tcp(text: &str, v6: bool) -> Vec<ProcNetSocket> {
    text.lines()
        .filter_map(|line| parse_tcp_line(line, v6))
        .collect()
}

fn parse_tcp_line(line: &str, v6: bool) -> Option<ProcNetSocket> {
    let mut fields = line.split_ascii_whitespace();
    let slot = fields.next()?;
    if !slot.ends_with(':') {
        return None;
    }
    let (local, local_port) = parse_endpoint(fields.next()?, v6)?;
    let (remote, remote_port) = parse_endpoint(fields.next()?, v6)?;
    let state = u8::from_str_radix(fields.next()?, 16).ok()?;
    let (tx, rx) = fields.next()?.split_once(':')?;
    let tx_queue = u32::from_str_radix(tx, 16).ok()?;
    let rx_queue = u32::from_str_radix(rx, 16).ok()?;
    let _timer = fields.next()?;
    let _retransmits = fields.next()?;
    let uid = fields.next()?.parse().ok()?;
    let _timeout = fields.next()?;
    let inode = fields.next()?.parse().ok()?;
    Some(ProcNetSocket {
        v6,
        local,
        local_port,
        remote,
        remote_port,
        state,
        tx_queue,
        rx_queue,
        uid,
        inode,
    })
}

/// Decodes `0100007F:1F90` (v4) or the 32-hex-digit v6 form.
fn parse_endpoint(text: &str, v6: bool) -> Option<(IpAddr, u16)> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let want = if v6 { 32 } else { 8 };
    if addr.len() != want || !addr.is_ascii() {
        return None;
    }
    let mut octets = [0u8; 16];
    for (i, chunk) in addr.as_bytes().chunks(8).enumerate() {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        octets[i * 4..i * 4 + 4].copy_from_slice(&word.to_ne_bytes());
    }
    let ip = if v6 {
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        IpAddr::V4(Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
    };
    Some((ip, port))
}

/// Parses `/proc/net/unix` text. Lines that do not parse are skipped.
pub fn parse_proc_net_unix(text: &str) -> Vec<ProcNetUnix> {
    text.lines().filter_map(parse_unix_line).collect()
}

fn parse_unix_line(line: &str) -> Option<ProcNetUnix> {
    let mut rest = line;
    let mut field = || -> Option<&str> {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (value, tail) = trimmed.split_at(end);
        rest = tail;
        (!value.is_empty()).then_some(value)
    };
    let slot = field()?;
    if !slot.ends_with(':') {
        return None;
    }
    let _ref_count = u32::from_str_radix(field()?, 16).ok()?;
    let _protocol = u32::from_str_radix(field()?, 16).ok()?;
    let flags = u32::from_str_radix(field()?, 16).ok()?;
    let kind = u16::from_str_radix(field()?, 16).ok()?;
    let state = u8::from_str_radix(field()?, 16).ok()?;
    let inode = field()?.parse().ok()?;
    // The path is the rest of the line and may itself contain spaces.
    let path = rest.strip_prefix(' ').unwrap_or(rest);
    let path = (!path.is_empty()).then(|| path.to_string());
    Some(ProcNetUnix {
        flags,
        kind,
        state,
        inode,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:07E8 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 1225 1 0000000054089d96 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000    33        0 99 1 0000000054089d96 100 0 0 10 0
   2: garbage";

    #[test]
    fn tcp_rows_decode_addresses_ports_and_queues() {
        let rows = parse_proc_net_tcp(TCP, false);
        assert_eq!(rows.len(), 2);
        assert!(rows[0].is_listener());
        assert_eq!(rows[0].local, IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        assert_eq!(rows[0].local_port, 2024);
        assert_eq!(rows[0].rx_queue, 3);
        assert_eq!(rows[0].inode, 1225);
        assert!(!rows[1].is_listener());
        assert_eq!(rows[1].local, IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert_eq!(rows[1].local_port, 8080);
        assert_eq!(rows[1].remote_port, 50000);
        assert_eq!(rows[1].uid, 33);
    }

    #[test]
    fn tcp6_loopback_decodes() {
        let text = "   0: 00000000000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0";
        let rows = parse_proc_net_tcp(text, true);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].local, IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(rows[0].local_port, 80);
        // A v6 row is not a v4 row.
        assert!(parse_proc_net_tcp(text, false).is_empty());
    }

    #[test]
    fn unix_rows_keep_paths_with_spaces_and_abstract_names() {
        let text = "Num       RefCount Protocol Flags    Type St Inode Path
0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/php/a b.sock
0000000000000000: 00000002 00000000 00010000 0001 01 12346 @/tmp/.X11-unix/X0
0000000000000000: 00000003 00000000 00000000 0001 03 12347
0000000000000000: 00000002 00000000 00010000 0005 01 12348 /run/seq.sock";
        let rows = parse_proc_net_unix(text);
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0].path.as_deref(), Some("/run/php/a b.sock"));
        assert!(rows[0].is_stream_listener());
        assert_eq!(rows[1].path.as_deref(), Some("@/tmp/.X11-unix/X0"));
        assert_eq!(rows[2].path, None);
        assert!(!rows[2].is_stream_listener());
        assert!(!rows[3].is_stream_listener());
        assert_eq!(rows[3].inode, 12348);
    }

    #[test]
    fn parsers_survive_hostile_input() {
        for text in [
            "",
            ":",
            "0: :",
            "0: 1:1 1:1 ZZ",
            "\u{0}\u{ffff} é: é",
            "0: 0000000é:0 0",
        ] {
            let _ = parse_proc_net_tcp(text, false);
            let _ = parse_proc_net_tcp(text, true);
            let _ = parse_proc_net_unix(text);
        }
        assert!(parse_proc_net_tcp("0: 0000000é:0 0", false).is_empty());
    }
}
