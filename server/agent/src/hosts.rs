//! Which hosts a model's `base_url` may name. A model is registered by a user but called by
//! the server, so without a rule any user could make the server POST to its own loopback
//! services, the private network or a cloud's metadata endpoint (SSRF).
//!
//! The rule (in token mode, unless the operator allows private hosts): an address that is
//! loopback, private (RFC 1918, unique-local, CGNAT), link-local, unspecified, multicast,
//! reserved or a known cloud-metadata address is refused. It is checked when the model is
//! registered and again at every call: [`GuardedResolver`] is the HTTP client's DNS resolver
//! and drops such addresses, so a name that resolved to a public address at registration and
//! later to `127.0.0.1` (DNS rebinding) is still refused, and IP-literal hosts (which the
//! client never resolves) are checked by [`check_url`] before each call.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest wait for a name to resolve at registration.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a host lookup returns.
pub type LookupFuture = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;

/// How host names become addresses: the system resolver, or a stand-in (tests use one to play
/// a DNS server that changes its answer).
#[derive(Clone)]
pub struct HostLookup(Arc<dyn Fn(&str) -> LookupFuture + Send + Sync>);

impl HostLookup {
    /// The system's resolver (`getaddrinfo`, on tokio's blocking pool).
    pub fn system() -> Self {
        Self::new(|host| {
            let host = host.to_owned();
            Box::pin(async move {
                let addrs = tokio::net::lookup_host((host.as_str(), 0)).await?;
                Ok(addrs.map(|addr| addr.ip()).collect())
            })
        })
    }

    pub fn new(lookup: impl Fn(&str) -> LookupFuture + Send + Sync + 'static) -> Self {
        Self(Arc::new(lookup))
    }

    pub async fn lookup(&self, host: &str) -> io::Result<Vec<IpAddr>> {
        (self.0)(host).await
    }
}

impl Default for HostLookup {
    fn default() -> Self {
        Self::system()
    }
}

impl fmt::Debug for HostLookup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HostLookup")
    }
}

/// Why a model's URL is not called. Display is shown to the user (and is the detail of a 422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostRefusal {
    #[error("{url:?} is not a URL")]
    NotAUrl { url: String },
    #[error("{url:?} must be an http(s) URL such as https://api.openai.com/v1")]
    Scheme { url: String },
    #[error(
        "the host {host} {how} a {kind} address; this server does not call loopback, private, \
         link-local or cloud-metadata addresses (the operator can allow them with --allow-private-model-hosts)"
    )]
    Forbidden {
        host: String,
        /// "is" for an address, "resolves to" for a name.
        how: &'static str,
        kind: &'static str,
    },
    #[error("the host {host} could not be resolved: {reason}")]
    Unresolved { host: String, reason: String },
}

/// The kind of address `ip` is when a model may not live there, `None` for a public address.
/// IPv4 addresses embedded in IPv6 ones (mapped, compatible, NAT64, 6to4) are judged as IPv4.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, d] = ip.octets();
    Some(match (a, b, c, d) {
        // AWS, GCP, Azure, OpenStack… (inside link-local); Alibaba's is in CGNAT.
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => "cloud-metadata",
        (0, ..) => "unspecified",
        (127, ..) => "loopback",
        (10, ..) | (192, 168, ..) => "private",
        (172, 16..=31, ..) => "private",
        (100, 64..=127, ..) => "private (CGNAT)",
        (169, 254, ..) => "link-local",
        // IETF protocol assignments (Oracle's metadata is 192.0.0.192), benchmarking.
        (192, 0, 0, _) | (198, 18..=19, ..) => "private",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(v4) = embedded_v4(ip) {
        return forbidden_v4(v4);
    }
    Some(match segments[0] {
        // AWS's IPv6 metadata endpoint (inside unique-local).
        0xfd00 if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) => "cloud-metadata",
        0xfc00..=0xfdff => "private (unique-local)",
        0xfe80..=0xfebf => "link-local",
        // Deprecated site-local, still routed inside some networks.
        0xfec0..=0xfeff => "private (site-local)",
        0xff00..=0xffff => "multicast",
        // The local-use NAT64 prefix (64:ff9b:1::/48) translates to anything.
        0x64 if segments[1] == 0xff9b && segments[2] == 1 => "private (NAT64)",
        _ => return None,
    })
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`),
/// NAT64 (`64:ff9b::a.b.c.d`) or 6to4 (`2002:AABB:CCDD::`) address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            Some(low(hi, lo))
        }
        [0x2002, hi, lo, ..] => Some(low(hi, lo)),
        _ => None,
    }
}

/// Parses a model's base URL: http(s) with a host.
pub fn parse_base_url(base_url: &str) -> Result<Url, HostRefusal> {
    let url = Url::parse(base_url).map_err(|_| HostRefusal::NotAUrl {
        url: base_url.to_owned(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(HostRefusal::Scheme {
            url: base_url.to_owned(),
        });
    }
    Ok(url)
}

/// The check before each call: the scheme, and an IP-literal host (names are checked by the
/// resolver when the client connects).
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), HostRefusal> {
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(HostRefusal::Scheme { url: url.to_string() });
    }
    match url_ip(url) {
        Some(ip) if !allow_private => check_ip(&url_host(url), ip, "is"),
        _ => Ok(()),
    }
}

/// The check at registration: [`check_url`], and a name must resolve, to allowed addresses only.
pub async fn check_registration(url: &Url, allow_private: bool, lookup: &HostLookup) -> Result<(), HostRefusal> {
    check_url(url, allow_private)?;
    if allow_private || url_ip(url).is_some() {
        return Ok(());
    }
    let name = url.host_str().unwrap_or_default();
    let unresolved = |reason: String| HostRefusal::Unresolved {
        host: name.to_owned(),
        reason,
    };
    let addrs = tokio::time::timeout(LOOKUP_TIMEOUT, lookup.lookup(name))
        .await
        .map_err(|_| unresolved(format!("no answer within {} s", LOOKUP_TIMEOUT.as_secs())))?
        .map_err(|e| unresolved(e.to_string()))?;
    if addrs.is_empty() {
        return Err(unresolved("no addresses".into()));
    }
    addrs.into_iter().try_for_each(|ip| check_ip(name, ip, "resolves to"))
}

fn check_ip(host: &str, ip: IpAddr, how: &'static str) -> Result<(), HostRefusal> {
    match forbidden_kind(ip) {
        Some(kind) => Err(HostRefusal::Forbidden {
            host: host.to_owned(),
            how,
            kind,
        }),
        None => Ok(()),
    }
}

/// The host when it is an IP address (URL parsing has already normalised other spellings of
/// one, such as `http://2130706433/`).
fn url_ip(url: &Url) -> Option<IpAddr> {
    let host = url.host_str()?;
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    host.parse().ok()
}

/// The host as the URL shows it (`[::1]` keeps its brackets).
fn url_host(url: &Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

/// The model client's DNS resolver: looks names up and, unless private hosts are allowed,
/// drops the forbidden addresses; a name left with none fails with [`HostRefusal`].
#[derive(Debug)]
pub struct GuardedResolver {
    pub lookup: HostLookup,
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.lookup.clone();
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let ips = lookup.lookup(&host).await?;
            let mut refused = None;
            // Port 0: the client puts the URL's port (or the scheme's) in.
            let allowed: Vec<SocketAddr> = ips
                .into_iter()
                .filter(|&ip| match forbidden_kind(ip) {
                    Some(kind) if !allow_private => {
                        refused.get_or_insert(kind);
                        false
                    }
                    _ => true,
                })
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(kind)) => Err(Box::new(HostRefusal::Forbidden {
                    host,
                    how: "resolves to",
                    kind,
                }) as _),
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(ip: &str) -> Option<&'static str> {
        forbidden_kind(ip.parse().unwrap())
    }

    #[test]
    fn internal_addresses_are_forbidden() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.1.2.3", "loopback"),
            ("::1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private (CGNAT)"),
            ("100.127.255.255", "private (CGNAT)"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "cloud-metadata"),
            ("169.254.170.2", "cloud-metadata"),
            ("100.100.100.200", "cloud-metadata"),
            ("192.0.0.192", "private"),
            ("fd00:ec2::254", "cloud-metadata"),
            ("fd12:3456::1", "private (unique-local)"),
            ("fc00::1", "private (unique-local)"),
            ("fe80::1", "link-local"),
            ("fec0::1", "private (site-local)"),
            ("ff02::1", "multicast"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud-metadata"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::10.0.0.1", "private"),
            ("64:ff9b:1::1", "private (NAT64)"),
            ("2002:a9fe:a9fe::", "cloud-metadata"),
            ("2002:7f00:1::", "loopback"),
        ] {
            assert_eq!(kind(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn urls_are_parsed_strictly_and_ip_literals_checked() {
        assert!(matches!(parse_base_url("not a url"), Err(HostRefusal::NotAUrl { .. })));
        assert!(matches!(
            parse_base_url("ftp://example.com/v1"),
            Err(HostRefusal::Scheme { .. })
        ));
        assert!(matches!(
            parse_base_url("file:///etc/passwd"),
            Err(HostRefusal::Scheme { .. })
        ));
        let check = |url: &str, allow| check_url(&parse_base_url(url).unwrap(), allow);
        for url in [
            "http://127.0.0.1:11434/v1",
            "http://[::1]:8080",
            "http://169.254.169.254/latest",
            "http://[fd00:ec2::254]/",
            // Other spellings of 127.0.0.1 that URL parsing normalises.
            "http://2130706433/",
            "http://0x7f.1/",
            "http://[::ffff:7f00:1]/",
        ] {
            let refused = check(url, false).unwrap_err();
            assert!(matches!(refused, HostRefusal::Forbidden { .. }), "{url}: {refused}");
            assert!(refused.to_string().contains("--allow-private-model-hosts"));
            check(url, true).unwrap();
        }
        check("https://api.openai.com/v1", false).unwrap();
        check("http://8.8.8.8/v1", false).unwrap();
    }

    fn fixed(ips: &'static [&'static str]) -> HostLookup {
        HostLookup::new(move |_| Box::pin(async move { Ok(ips.iter().map(|ip| ip.parse().unwrap()).collect()) }))
    }

    #[tokio::test]
    async fn registration_resolves_names() {
        let url = parse_base_url("https://models.example/v1").unwrap();
        check_registration(&url, false, &fixed(&["93.184.216.34"]))
            .await
            .unwrap();
        // One internal address among public ones is enough to refuse.
        let refused = check_registration(&url, false, &fixed(&["93.184.216.34", "10.1.2.3"]))
            .await
            .unwrap_err();
        assert_eq!(
            refused,
            HostRefusal::Forbidden {
                host: "models.example".into(),
                how: "resolves to",
                kind: "private"
            }
        );
        assert!(matches!(
            check_registration(&url, false, &fixed(&[])).await,
            Err(HostRefusal::Unresolved { .. })
        ));
        check_registration(&url, true, &fixed(&["127.0.0.1"])).await.unwrap();
    }

    #[tokio::test]
    async fn the_resolver_drops_forbidden_addresses() {
        let name = |host: &str| host.parse::<Name>().unwrap();
        let resolve = |ips, allow_private| {
            GuardedResolver {
                lookup: fixed(ips),
                allow_private,
            }
            .resolve(name("models.example"))
        };
        // A rebinding answer: only loopback now.
        let error = resolve(&["127.0.0.1"], false).await.err().unwrap();
        let refusal = error.downcast_ref::<HostRefusal>().unwrap();
        assert!(matches!(refusal, HostRefusal::Forbidden { kind: "loopback", .. }));
        let mixed: Vec<_> = resolve(&["10.0.0.5", "93.184.216.34", "::1"], false)
            .await
            .unwrap()
            .collect();
        assert_eq!(mixed, ["93.184.216.34:0".parse::<SocketAddr>().unwrap()]);
        assert_eq!(resolve(&["127.0.0.1"], true).await.unwrap().count(), 1);
    }
}
