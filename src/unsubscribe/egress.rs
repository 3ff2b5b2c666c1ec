//! Where the webhook worker may connect, and how it gets there: a complete classification of IP
//! addresses into public unicast or not, and a name resolver for the HTTP client that checks
//! every address a host resolves to and hands the client exactly those — the check and the
//! connection use one lookup, so DNS rebinding cannot slip a private address in between.
//!
//! What lives here is only the network rule; the URL rules (https, no credentials) and the
//! delivery schedule are in `webhooks.rs`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// Turns a host and port into socket addresses: the system's resolver in the service, one the
/// test controls in tests.
pub trait Lookup: Send + Sync + 'static {
    /// The addresses `host` (a name or an IP literal without brackets) resolves to.
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver.
#[derive(Debug, Default)]
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

/// Whether an IPv4 address is public unicast (RFC 6890's special-purpose registry: none of
/// this network, private, shared, loopback, link-local, IETF protocol assignments, documentation,
/// 6to4 relay anycast, benchmarking, multicast, reserved, broadcast).
pub fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b))
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 88 && c == 99)
        || (a == 192 && b == 168)
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

/// Whether an IPv6 address is public unicast. An allow-list: global unicast `2000::/3` outside
/// its special blocks (IETF protocol assignments `2001::/23` with Teredo, benchmarking and
/// ORCHID, documentation `2001:db8::/32` and `3fff::/20`, 6to4 `2002::/16`), or an IPv4 address
/// embedded by mapping (`::ffff:0:0/96`) or by the well-known NAT64 prefix (`64:ff9b::/96`) that
/// is itself public. Everything else is refused: unspecified, loopback, IPv4-compatible `::/96`,
/// local-use NAT64 `64:ff9b:1::/48`, discard `100::/64`, SRv6 `5f00::/16`, unique local,
/// link-local, site-local, multicast.
pub fn public_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return public_v4(v4);
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [.., hi, lo] = s;
        return public_v4(Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo)));
    }
    let global_unicast = (s[0] & 0xe000) == 0x2000;
    let special = match s[0] {
        0x2001 => s[1] < 0x0200 || s[1] == 0x0db8,
        0x2002 => true,
        first => (first & 0xfff0) == 0x3ff0,
    };
    global_unicast && !special
}

/// Whether the worker may connect to `ip`: a public address, or a loopback one where allowed
/// (development and tests: `127.0.0.0/8`, `::1`).
pub fn reachable(ip: IpAddr, allow_loopback: bool) -> bool {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => allow_loopback,
        IpAddr::V6(v6) if v6.is_loopback() => allow_loopback,
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => public_v6(v6),
    }
}

/// Resolves `host`, refusing it unless every address is reachable: the addresses to connect to,
/// or why not (for a person: it names the address, not the network behind it).
pub fn checked(
    lookup: &dyn Lookup,
    host: &str,
    port: u16,
    allow_loopback: bool,
) -> Result<Vec<SocketAddr>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses = lookup
        .lookup(host, port)
        .map_err(|_| format!("cannot resolve {host}"))?;
    if addresses.is_empty() {
        return Err(format!("{host} has no address"));
    }
    if let Some(bad) = addresses
        .iter()
        .find(|a| !reachable(a.ip(), allow_loopback))
    {
        return Err(format!(
            "it resolves to {}, which is not a public address",
            bad.ip()
        ));
    }
    Ok(addresses)
}

/// The HTTP client's resolver: [`checked`] on every connection, so the client connects only to
/// addresses that passed the check in the same lookup.
#[derive(Clone)]
pub struct PinnedResolver {
    lookup: Arc<dyn Lookup>,
    allow_loopback: bool,
}

impl PinnedResolver {
    /// A resolver over `lookup`.
    pub fn new(lookup: Arc<dyn Lookup>, allow_loopback: bool) -> Self {
        Self {
            lookup,
            allow_loopback,
        }
    }
}

impl fmt::Debug for PinnedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinnedResolver")
            .field("allow_loopback", &self.allow_loopback)
            .finish_non_exhaustive()
    }
}

impl Resolver for PinnedResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("http") => Some(80),
                Some("https") => Some(443),
                _ => None,
            })
            .ok_or(ureq::Error::HostNotFound)?;
        let addresses =
            checked(self.lookup.as_ref(), host, port, self.allow_loopback).map_err(|why| {
                tracing::warn!(host, why, "webhook: connection refused by the egress check");
                ureq::Error::HostNotFound
            })?;
        let mut out = self.empty();
        for a in addresses.into_iter().take(16) {
            out.push(a);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn only_public_unicast_is_reachable() {
        let public = [
            "93.184.215.14",
            "8.8.8.8",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ];
        let private = [
            // IPv4 special-purpose ranges.
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.7",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6: the forms that embed 10.0.0.1 or 127.0.0.1, or are not global.
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:127.0.0.1",
            "::a00:1",
            "::7f00:1",
            "64:ff9b::a00:1",
            "64:ff9b::7f00:1",
            "64:ff9b:1::808:808",
            "100::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:20::1",
            "2001:db8::1",
            "2002:a00:1::",
            "2002:808:808::1",
            "3fff::1",
            "5f00::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
        ];
        for ip in public {
            assert!(reachable(ip.parse().unwrap(), false), "{ip} is public");
        }
        for ip in private {
            let parsed: IpAddr = ip.parse().unwrap();
            assert!(!reachable(parsed, false), "{ip} is not public");
            if !parsed.is_loopback() {
                assert!(!reachable(parsed, true), "{ip} is not loopback either");
            }
        }
        assert!(reachable("127.0.0.1".parse().unwrap(), true));
        assert!(reachable("::1".parse().unwrap(), true));
    }

    /// A resolver that answers a public address the first time and this machine after: a host
    /// that rebinds between a check and a connection.
    struct Rebinding {
        calls: AtomicUsize,
        port: u16,
    }

    impl Lookup for Rebinding {
        fn lookup(&self, _host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
            let first = self.calls.fetch_add(1, Ordering::SeqCst) == 0;
            Ok(vec![if first {
                SocketAddr::from(([93, 184, 215, 14], port))
            } else {
                SocketAddr::from(([127, 0, 0, 1], self.port))
            }])
        }
    }

    #[test]
    fn the_client_connects_only_to_what_the_check_saw() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let lookup = Arc::new(Rebinding {
            calls: AtomicUsize::new(1), // the registration's check already saw the public answer
            port,
        });
        let agent: ureq::Agent = ureq::Agent::with_parts(
            ureq::Agent::config_builder().max_redirects(0).build(),
            ureq::unversioned::transport::DefaultConnector::default(),
            PinnedResolver::new(lookup.clone(), false),
        );
        let sent = agent
            .post(&format!("http://hook.example:{port}/"))
            .send("{}");
        assert!(matches!(sent, Err(ureq::Error::HostNotFound)), "{sent:?}");
        assert_eq!(
            lookup.calls.load(Ordering::SeqCst),
            2,
            "one lookup per send"
        );
        assert!(
            listener.accept().is_err(),
            "the rebound address on this machine was connected to"
        );
    }
}
