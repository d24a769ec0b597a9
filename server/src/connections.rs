//! The accept loop: every connection a stranger can open is bounded.
//!
//! - at most `max_total` open connections, and `max_per_address` from one client address
//!   (past either, a new connection is closed at once, so the listen backlog never fills and
//!   `/healthz` keeps answering others);
//! - a request's headers must arrive within `header_read_timeout`, which also ends a
//!   keep-alive connection that stays silent that long (hyper starts the timer whenever it
//!   waits for a request head);
//! - a WebSocket keeps its connection's place until it closes: the place travels with the
//!   request as a [`ConnectionTicket`].
//!
//! warp's own server loop has none of these knobs, so the routes are served here through
//! hyper directly; the client's address reaches handlers as a [`PeerAddr`] extension.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use parking_lot::Mutex;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;
use warp::Filter;

/// Bounds on connections.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    pub max_total: usize,
    pub max_per_address: usize,
    pub header_read_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_total: 16_384,
            max_per_address: 1_024,
            header_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The TCP peer of the request.
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// The request's TCP peer, for handlers (`warp::addr::remote` only works with warp's loop).
pub fn peer_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<PeerAddr>().map(|peer: Option<PeerAddr>| peer.map(|p| p.0))
}

/// A connection's place among the open ones; the place is free once every clone is dropped.
#[derive(Debug, Clone)]
pub struct ConnectionTicket(#[allow(dead_code)] Arc<Place>);

#[derive(Debug)]
struct Place {
    gate: Arc<Gate>,
    address: IpAddr,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.gate.release(self.address);
    }
}

/// Counts open connections, in total and per address.
#[derive(Debug)]
struct Gate {
    limits: ConnectionLimits,
    open: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    by_address: HashMap<IpAddr, usize>,
}

impl Gate {
    fn admit(self: &Arc<Self>, address: IpAddr) -> Option<ConnectionTicket> {
        let mut open = self.lock();
        let from_address = open.by_address.get(&address).copied().unwrap_or(0);
        if open.total >= self.limits.max_total || from_address >= self.limits.max_per_address {
            return None;
        }
        open.total += 1;
        open.by_address.insert(address, from_address + 1);
        Some(ConnectionTicket(Arc::new(Place {
            gate: self.clone(),
            address,
        })))
    }

    fn release(&self, address: IpAddr) {
        let mut open = self.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(count) = open.by_address.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&address);
            }
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Counts> {
        // Counts are whole between statements: recover them after a panic elsewhere.
        self.open.lock()
    }
}

/// Serves `routes` on `listener` until `shutdown` completes; then open requests finish.
pub async fn serve<F>(
    listener: TcpListener,
    routes: F,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    F: Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone + Send + Sync + 'static,
{
    let gate = Arc::new(Gate {
        limits: limits.clone(),
        open: Mutex::default(),
    });
    // Connections end gracefully at shutdown: those between requests at once, the others
    // after their response.
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Out of file descriptors, mostly: give open connections a moment to end.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(ticket) = gate.admit(peer.ip()) else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(%peer, refused, "connection limit reached; closing new connections");
            }
            continue;
        };
        let routes = warp::service(routes.clone());
        let request_ticket = ticket.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            request.extensions_mut().insert(request_ticket.clone());
            let mut routes = routes.clone();
            async move { routes.call(request).await }
        });
        // HTTP/1 only: an auto-detecting server reads the first bytes before any timeout
        // applies, so a silent connection would stay open.
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        let stopping = stopping.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = stopping.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(ticket);
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    connections.wait().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_counted_per_address_and_given_back() {
        let gate = Arc::new(Gate {
            limits: ConnectionLimits {
                max_total: 3,
                max_per_address: 2,
                header_read_timeout: Duration::from_secs(1),
            },
            open: Mutex::default(),
        });
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = gate.admit(a).unwrap();
        let second = gate.admit(a).unwrap();
        assert!(gate.admit(a).is_none(), "per address");
        let third = gate.admit(b).unwrap();
        assert!(gate.admit(b).is_none(), "in total");
        let copy = first.clone();
        drop(first);
        assert!(gate.admit(a).is_none(), "a clone still holds the place");
        drop(copy);
        assert!(gate.admit(a).is_some());
        drop((second, third));
        assert_eq!(gate.lock().total, 0);
        assert!(gate.lock().by_address.is_empty());
    }
}
