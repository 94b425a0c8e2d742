//! Which OS user is on the other end of a loopback connection.
//!
//! On a loopback bind every local user can connect, and the launcher runs programs as its
//! own user, so a connection from another account is a privilege boundary. The owner of
//! the client's socket is read from the kernel once per connection (in the server's
//! `on_connect` hook) and kept in the connection's extensions; the guard reads it per
//! request. Everything platform-specific is in this module.

use actix_web::dev::Extensions;
use std::any::Any;
use std::net::{IpAddr, SocketAddr};

/// The uid that owns the client's end of this connection; `None` when it could not be
/// determined (the guard then treats the connection as another user's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOwner(pub Option<u32>);

/// Whether this platform can tell who owns a loopback client socket.
pub const SUPPORTED: bool = cfg!(target_os = "linux");

/// The `HttpServer::on_connect` hook: stashes the peer's [`PeerOwner`] for the guard.
pub fn on_connect(conn: &dyn Any, ext: &mut Extensions) {
    let owner = conn
        .downcast_ref::<actix_web::rt::net::TcpStream>()
        .and_then(|s| Some((s.peer_addr().ok()?, s.local_addr().ok()?)))
        .and_then(|(peer, local)| owner_of(peer, local));
    ext.insert(PeerOwner(owner));
}

/// The uid of the process that owns the client socket `peer` connected to our `local`.
pub fn owner_of(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    if !unmapped(peer.ip()).is_loopback() {
        // Only loopback peers are on this machine; anything else has no local owner.
        return None;
    }
    imp::owner_of(peer, local)
}

/// The launcher's own (effective) uid, when the platform can tell.
pub fn own_uid() -> Option<u32> {
    imp::own_uid()
}

/// `::ffff:a.b.c.d` as `a.b.c.d`, so dual-stack sockets compare with IPv4 ones.
fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn same(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port() && unmapped(a.ip()) == unmapped(b.ip())
}

#[cfg(target_os = "linux")]
mod imp {
    use super::same;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

    /// TCP state `TIME_WAIT` in `/proc/net/tcp`: such entries report uid 0, so they must
    /// never be taken for the peer's socket.
    const TIME_WAIT: &str = "06";

    /// Finds the client's socket in `/proc/net/tcp{,6}`: the entry whose local address is
    /// the peer's address and whose remote address is ours. Its `uid` column is the owner.
    pub(super) fn owner_of(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        ["/proc/net/tcp", "/proc/net/tcp6"]
            .into_iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .find_map(|table| find(&table, peer, local))
    }

    pub(super) fn find(table: &str, peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        table.lines().skip(1).find_map(|line| {
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid ...
            let f: Vec<&str> = line.split_whitespace().collect();
            let (l, r, st, uid) = (f.get(1)?, f.get(2)?, f.get(3)?, f.get(7)?);
            if *st == TIME_WAIT {
                return None;
            }
            (same(parse(l)?, peer) && same(parse(r)?, local))
                .then(|| uid.parse().ok())
                .flatten()
        })
    }

    /// `0100007F:1F90` → 127.0.0.1:8080. The kernel prints each 32-bit word of the address
    /// as a native-endian integer in hex, and the port in host order.
    pub(super) fn parse(s: &str) -> Option<SocketAddr> {
        let (addr, port) = s.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        let word = |i: usize| -> Option<[u8; 4]> {
            let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
            Some(w.to_ne_bytes())
        };
        let ip = match addr.len() {
            8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
            32 => {
                let mut b = [0u8; 16];
                for i in 0..4 {
                    b[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
                }
                IpAddr::V6(Ipv6Addr::from(b))
            }
            _ => return None,
        };
        Some(SocketAddr::new(ip, port))
    }

    pub(super) fn own_uid() -> Option<u32> {
        use std::os::unix::fs::MetadataExt;
        // `/proc/self` is owned by the process's effective uid.
        std::fs::metadata("/proc/self").ok().map(|m| m.uid())
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::net::SocketAddr;

    pub(super) fn owner_of(_peer: SocketAddr, _local: SocketAddr) -> Option<u32> {
        None
    }

    pub(super) fn own_uid() -> Option<u32> {
        None
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_proc_net_addresses() {
        let v4 = imp::parse("0100007F:5BA0").unwrap();
        assert_eq!(v4, "127.0.0.1:23456".parse().unwrap());
        let v6 = imp::parse("00000000000000000000000001000000:0050").unwrap();
        assert_eq!(v6, "[::1]:80".parse().unwrap());
        let mapped = imp::parse("0000000000000000FFFF00000100007F:0050").unwrap();
        assert!(same(mapped, "127.0.0.1:80".parse().unwrap()));
        assert!(imp::parse("zz:1").is_none());
    }

    #[test]
    fn finds_the_client_end_not_the_server_end_nor_time_wait() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:5BA0 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 1\n\
   1: 0100007F:C351 0100007F:5BA0 06 00000000:00000000 00:00000000 00000000     0        0 0\n\
   2: 0100007F:C350 0100007F:5BA0 01 00000000:00000000 00:00000000 00000000  1234        0 2\n";
        let local: SocketAddr = "127.0.0.1:23456".parse().unwrap();
        assert_eq!(
            imp::find(table, "127.0.0.1:50000".parse().unwrap(), local),
            Some(1234)
        );
        assert_eq!(
            imp::find(table, "127.0.0.1:50001".parse().unwrap(), local),
            None
        );
    }

    #[test]
    fn a_real_loopback_client_is_ours() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (s, _) = l.accept().unwrap();
        let owner = owner_of(s.peer_addr().unwrap(), s.local_addr().unwrap());
        assert_eq!(owner, own_uid());
        assert!(owner.is_some());
        drop(c);
    }
}
