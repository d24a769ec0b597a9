//! The client address the login throttle counts failures against.
//!
//! Behind a reverse proxy every request comes from the proxy's address, so one address bucket
//! would hold every client (and one attacker would lock everyone out). The proxy names the
//! client in `X-Forwarded-For`, but any client can send that header too: it is believed only
//! from peers the operator listed (`--trusted-proxy`), and then read from the right, skipping
//! the listed proxies, so a client cannot pick its bucket by writing addresses on the left.

use std::net::{IpAddr, SocketAddr};

/// The address to throttle: `peer`, unless `peer` is a trusted proxy, in which case the
/// rightmost `X-Forwarded-For` entry that is not itself a trusted proxy. `forwarded_for`
/// holds every `X-Forwarded-For` header value, in order. An entry that is not an address
/// stops the walk at the proxy that wrote it.
pub fn client_address(peer: Option<IpAddr>, forwarded_for: &[&str], trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let mut nearest = peer;
    let entries = forwarded_for.iter().flat_map(|value| value.split(',')).rev();
    for entry in entries {
        match parse_entry(entry.trim()) {
            Some(address) if trusted.contains(&address) => nearest = address,
            Some(address) => return Some(address),
            None => break,
        }
    }
    Some(nearest)
}

/// `203.0.113.7`, `2001:db8::1`, or either with a port (`203.0.113.7:4711`, `[2001:db8::1]:4711`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let trusted = [ip("10.0.0.1")];
        assert_eq!(
            client_address(Some(ip("198.51.100.4")), &["203.0.113.7"], &trusted),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(
            client_address(Some(ip("198.51.100.4")), &[], &[]),
            Some(ip("198.51.100.4"))
        );
        assert_eq!(client_address(None, &["203.0.113.7"], &trusted), None);
    }

    #[test]
    fn a_trusted_proxy_names_the_client_on_the_right() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(
            client_address(peer, &["203.0.113.7"], &trusted),
            Some(ip("203.0.113.7"))
        );
        // A client writing an address on the left does not get to choose its bucket.
        assert_eq!(
            client_address(peer, &["1.2.3.4, 203.0.113.7"], &trusted),
            Some(ip("203.0.113.7"))
        );
        // A chain of trusted proxies is skipped, across several headers.
        assert_eq!(
            client_address(peer, &["203.0.113.7, 10.0.0.2", "10.0.0.1"], &trusted),
            Some(ip("203.0.113.7"))
        );
        // Ports and IPv6.
        assert_eq!(
            client_address(peer, &["[2001:db8::1]:4711"], &trusted),
            Some(ip("2001:db8::1"))
        );
        assert_eq!(
            client_address(peer, &["203.0.113.7:4711"], &trusted),
            Some(ip("203.0.113.7"))
        );
    }

    #[test]
    fn without_a_usable_entry_the_nearest_proxy_is_the_client() {
        let trusted = [ip("10.0.0.1"), ip("10.0.0.2")];
        let peer = Some(ip("10.0.0.1"));
        assert_eq!(client_address(peer, &[], &trusted), Some(ip("10.0.0.1")));
        assert_eq!(client_address(peer, &["unknown"], &trusted), Some(ip("10.0.0.1")));
        assert_eq!(
            client_address(peer, &["203.0.113.7, garbage, 10.0.0.2"], &trusted),
            Some(ip("10.0.0.2"))
        );
    }
}
