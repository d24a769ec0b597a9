//! The WebSocket handshake (RFC 6455), done here rather than by warp's `ws()` filter so that
//! each connection's buffers can be sized.
//!
//! Why: warp offers no way to set tungstenite's read buffer, whose default is 128 KiB and is
//! zero-filled on the first read — 128 KiB of resident memory for every idle socket. With a
//! small buffer an idle session costs a few KiB; big frames are still read, in more steps.

use std::future::Future;

use hyper::upgrade::{OnUpgrade, Upgraded};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use warp::Filter;
use warp::http::{HeaderMap, HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

/// A server-side WebSocket over the upgraded HTTP connection.
pub type Socket = WebSocketStream<TokioIo<Upgraded>>;

/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 4 * 1024;
/// Frames are written out once this much is buffered (and on every flush).
const WRITE_BUFFER: usize = 8 * 1024;

/// A request to upgrade, not yet answered.
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

/// Extracts a WebSocket upgrade request; `Err` says what is wrong with anything else.
pub fn upgrade() -> impl Filter<Extract = (Result<Upgrade, &'static str>,), Error = warp::Rejection> + Clone {
    warp::get()
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<OnUpgrade>())
        .map(|headers: HeaderMap, on_upgrade: Option<OnUpgrade>| check(&headers, on_upgrade))
}

/// The 400 answer to a request that is not a valid upgrade.
pub fn refused(why: &str) -> Response {
    warp::reply::with_status(why.to_owned(), StatusCode::BAD_REQUEST).into_response()
}

fn check(headers: &HeaderMap, on_upgrade: Option<OnUpgrade>) -> Result<Upgrade, &'static str> {
    let has = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has(header::CONNECTION, "upgrade") || !has(header::UPGRADE, "websocket") {
        return Err("Expected a WebSocket upgrade (Connection: upgrade, Upgrade: websocket).");
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(HeaderValue::as_bytes) != Some(b"13") {
        return Err("Unsupported WebSocket version; this server speaks 13.");
    }
    match (headers.get(header::SEC_WEBSOCKET_KEY), on_upgrade) {
        (Some(key), Some(on_upgrade)) => Ok(Upgrade {
            key: key.clone(),
            on_upgrade,
        }),
        (None, _) => Err("Missing Sec-WebSocket-Key."),
        (_, None) => Err("This connection cannot be upgraded."),
    }
}

impl Upgrade {
    /// Answers 101 and runs `session` on the socket once the upgrade completes. Messages and
    /// frames above `max_message` bytes are refused by the transport.
    pub fn on_upgrade<F, Fut>(self, max_message: usize, session: F) -> Response
    where
        F: FnOnce(Socket) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let config = WebSocketConfig::default()
            .read_buffer_size(READ_BUFFER)
            .write_buffer_size(WRITE_BUFFER)
            .max_message_size(Some(max_message))
            .max_frame_size(Some(max_message));
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let socket = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config));
                    session(socket.await).await;
                }
                Err(error) => tracing::debug!(%error, "websocket upgrade failed"),
            }
        });
        let mut response = Response::default();
        *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(self.key.as_bytes())) {
            headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
        }
        response
    }
}
