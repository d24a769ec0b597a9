//! What a web page the user visits may do with this server.
//!
//! A browser attaches `Origin` to every cross-origin request it lets a page make (and to
//! WebSocket handshakes), and sends simple form or `text/plain` POSTs without asking first.
//! So a request whose `Origin` is not allowed is refused outright (403, nothing runs), not
//! only denied its response. Allowed: loopback origins (a frontend on `localhost`), the
//! server's own origin (its `/docs`), and what `--cors-origins` lists (`*`: any). A request
//! without `Origin` comes from a non-browser client and passes.
//!
//! In open mode the `Host` header must also be an IP address or `localhost`: a page on a
//! DNS name the attacker rebinds to 127.0.0.1 sends its own name as `Host`.

use std::net::IpAddr;
use std::sync::Arc;

use warp::Filter;
use warp::http::header::{self, HeaderValue};
use warp::http::{Method, StatusCode};
use warp::reply::Response;

use crate::auth::AuthMode;

/// Why a request was refused; answered 403 with the reason.
#[derive(Debug)]
pub struct Forbidden(pub String);

impl warp::reject::Reject for Forbidden {}

#[derive(Debug)]
pub struct Policy {
    /// Exact origins from `--cors-origins` (`scheme://host[:port]`), lower case.
    listed: Vec<String>,
    any_origin: bool,
    check_host: bool,
}

impl Policy {
    pub fn new(cors_origins: &[String], auth: AuthMode) -> Arc<Self> {
        let listed: Vec<String> = cors_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|o| !o.is_empty())
            .collect();
        Arc::new(Self {
            any_origin: listed.iter().any(|o| o == "*"),
            listed,
            check_host: auth == AuthMode::Open,
        })
    }

    /// `Ok(Some(origin))` to echo in CORS headers, `Ok(None)` for a non-browser request.
    fn check(&self, origin: Option<&str>, host: Option<&str>) -> Result<Option<String>, Forbidden> {
        if self.check_host {
            let host = host.unwrap_or_default();
            if !is_local_host(host) {
                return Err(Forbidden(format!(
                    "Host {host:?} is not allowed: an open server answers only to an IP address or localhost."
                )));
            }
        }
        let Some(origin) = origin else { return Ok(None) };
        let normalized = origin.trim_end_matches('/').to_ascii_lowercase();
        let same_origin = host.is_some_and(|h| origin_host(&normalized) == Some(h.to_ascii_lowercase()));
        let allowed =
            self.any_origin || same_origin || is_loopback_origin(&normalized) || self.listed.contains(&normalized);
        if allowed {
            Ok(Some(origin.to_owned()))
        } else {
            Err(Forbidden(format!(
                "Origin {origin:?} is not allowed; list it with --cors-origins to let its pages use this server."
            )))
        }
    }
}

/// The `host[:port]` of an origin.
fn origin_host(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    matches!(scheme, "http" | "https").then(|| rest.to_owned())
}

/// `host` without its port: `[::1]:80` → `::1`, `localhost:3000` → `localhost`.
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name,
        _ => host,
    }
}

fn is_localhost_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// An IP address (no name to rebind) or localhost.
fn is_local_host(host: &str) -> bool {
    let name = host_name(host);
    name.parse::<IpAddr>().is_ok() || is_localhost_name(name)
}

fn is_loopback_origin(origin: &str) -> bool {
    let Some(host) = origin_host(origin) else { return false };
    let name = host_name(&host);
    is_localhost_name(name) || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Checks every request; extracts the origin to echo in the response's CORS headers.
pub fn guard(policy: Arc<Policy>) -> impl Filter<Extract = (Option<String>,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("origin")
        .and(warp::header::optional::<String>("host"))
        .and_then(move |origin: Option<String>, host: Option<String>| {
            let checked = policy.check(origin.as_deref(), host.as_deref());
            async move { checked.map_err(warp::reject::custom) }
        })
}

/// Answers a CORS preflight (`OPTIONS` with `Origin`) of an allowed origin.
pub fn preflight(policy: Arc<Policy>) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    // Not `warp::options()`: its "method not allowed" would outrank the routes' "not found".
    warp::method()
        .and_then(|method: Method| async move {
            match method {
                Method::OPTIONS => Ok(()),
                _ => Err(warp::reject::not_found()),
            }
        })
        .untuple_one()
        .and(guard(policy))
        .and_then(|origin: Option<String>| async move {
            let Some(origin) = origin else {
                return Err(warp::reject::not_found());
            };
            let mut response = Response::new(Default::default());
            *response.status_mut() = StatusCode::NO_CONTENT;
            let headers = response.headers_mut();
            allow(headers, &origin);
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static("content-type, authorization"),
            );
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
            Ok(response)
        })
}

/// Adds the CORS headers of an allowed browser request.
pub fn decorate(origin: Option<String>, mut response: Response) -> Response {
    if let Some(origin) = origin {
        allow(response.headers_mut(), &origin);
    }
    response
}

fn allow(headers: &mut warp::http::HeaderMap, origin: &str) {
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
        headers.append(header::VARY, HeaderValue::from_static("origin"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(listed: &[&str]) -> Arc<Policy> {
        let listed: Vec<String> = listed.iter().map(|s| s.to_string()).collect();
        Policy::new(&listed, AuthMode::Open)
    }

    #[test]
    fn loopback_own_and_listed_origins_pass_others_do_not() {
        let policy = open(&["https://app.example"]);
        let host = Some("127.0.0.1:8000");
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:5173",
            "http://[::1]:3000",
            "https://app.example",
            "https://APP.example/",
            "http://127.0.0.1:8000",
        ] {
            assert!(policy.check(Some(origin), host).is_ok(), "{origin}");
        }
        for origin in [
            "https://evil.example",
            "null",
            "http://localhost.evil.example",
            "file://",
        ] {
            assert!(policy.check(Some(origin), host).is_err(), "{origin}");
        }
        assert_eq!(policy.check(None, host).unwrap(), None);
        assert!(open(&["*"]).check(Some("https://evil.example"), host).is_ok());
    }

    #[test]
    fn an_open_server_answers_only_to_ip_addresses_and_localhost() {
        let policy = open(&[]);
        for host in [
            "127.0.0.1:8000",
            "localhost:8000",
            "[::1]:8000",
            "192.168.1.5",
            "app.localhost",
        ] {
            assert!(policy.check(None, Some(host)).is_ok(), "{host}");
        }
        for host in ["rebind.evil.example:8000", "evil.example", ""] {
            assert!(policy.check(None, Some(host)).is_err(), "{host}");
        }
        let token = Policy::new(&[], AuthMode::Token);
        assert!(token.check(None, Some("kafka.example")).is_ok());
        assert!(
            token
                .check(Some("https://kafka.example"), Some("kafka.example"))
                .is_ok()
        );
        assert!(
            token
                .check(Some("https://evil.example"), Some("kafka.example"))
                .is_err()
        );
    }
}
