//! Live sessions by chat: fan-out of events to protocol-2 clients, closing the sockets of a
//! deleted chat, and the one agent run each chat may have at a time.
//!
//! Events go out through the store's event bus and come back from it to be fanned out here:
//! in-process on SQLite, through the database when several instances share it, so a client
//! connected to any instance sees every change, in the same order. Likewise the agent slot is
//! claimed from the store, which holds it across instances.
//!
//! Each session owns a bounded outbound queue drained by its own writer task. Publishing
//! never waits: a client whose queue is full is dropped (its socket closed), so one slow or
//! dead client cannot hold up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;

use kafka_protocol::ws::{ChatEvent, ErrorFrame};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::store::{ChatSignal, EventBus, RunLease, SignalKind, Store, StoreResult};

/// What a session's writer task sends.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A reply for this session.
    Text(Arc<str>),
    /// The initial payload: one text message in parts, each valid UTF-8, so that a long
    /// chat's cached conversation text is sent from the cache rather than copied.
    Parts(Vec<bytes::Bytes>),
    /// A live event of the chat; written only after the session's first `Text` (its initial
    /// payload), since the bus may deliver it while that payload is being built.
    Event(Arc<str>),
    /// A keep-alive ping.
    Ping,
    /// Close the socket with this reason.
    Close(&'static str),
}

/// The error frame a session gets before the hub closes it for a revoked token.
pub const LOGGED_OUT: &str = "This session was logged out (logout or password change); log in again.";

/// Frames a session may have queued before it counts as stuck.
pub const SESSION_QUEUE: usize = 1024;

#[derive(Debug)]
struct Subscriber {
    id: u64,
    wants_events: Arc<AtomicBool>,
    queue: mpsc::Sender<Outgoing>,
    /// The hash of the token the session was opened with (none in open mode without one).
    token_hash: Option<String>,
}

#[derive(Debug)]
pub struct Hub {
    next_id: AtomicU64,
    chats: Mutex<HashMap<String, Vec<Subscriber>>>,
    agent_runs: Mutex<HashMap<String, LocalRun>>,
    store: Store,
    /// Set once by `start`, before the hub is shared.
    bus: OnceLock<EventBus>,
}

/// An agent run on this instance: how to stop it, and its claim in the store (`None` while
/// the claim is being made).
#[derive(Debug)]
struct LocalRun {
    cancel: CancellationToken,
    lease: Option<RunLease>,
}

/// A session's membership; leaving the hub happens when it is dropped.
#[derive(Debug)]
pub struct Membership {
    hub: Arc<Hub>,
    chat_id: String,
    id: u64,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut chats = self.hub.chats.lock();
        if let Some(subscribers) = chats.get_mut(&self.chat_id) {
            subscribers.retain(|s| s.id != self.id);
            if subscribers.is_empty() {
                chats.remove(&self.chat_id);
            }
        }
    }
}

impl Hub {
    /// A hub whose events go through `store`'s event bus.
    pub async fn start(store: Store) -> StoreResult<Arc<Self>> {
        let hub = Arc::new(Hub {
            next_id: AtomicU64::new(0),
            chats: Mutex::default(),
            agent_runs: Mutex::default(),
            store: store.clone(),
            bus: OnceLock::new(),
        });
        // Weak: the bus's tasks must not keep the hub (and so themselves) alive forever.
        let weak = Arc::downgrade(&hub);
        let bus = store
            .event_bus(Arc::new(move |signal| {
                if let Some(hub) = weak.upgrade() {
                    hub.deliver(signal);
                }
            }))
            .await?;
        let _ = hub.bus.set(bus);
        Ok(hub)
    }

    /// Registers a session of `chat_id`, opened with the token whose hash is `token_hash`.
    /// It receives events while `wants_events` is true.
    pub fn join(
        self: &Arc<Self>,
        chat_id: &str,
        wants_events: Arc<AtomicBool>,
        queue: mpsc::Sender<Outgoing>,
        token_hash: Option<String>,
    ) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_chats()
            .entry(chat_id.to_owned())
            .or_default()
            .push(Subscriber {
                id,
                wants_events,
                queue,
                token_hash,
            });
        Membership {
            hub: self.clone(),
            chat_id: chat_id.to_owned(),
            id,
        }
    }

    /// Sends `event` to every protocol-2 session of the chat, on every instance.
    pub fn publish(&self, chat_id: &str, event: ChatEvent) {
        self.signal(chat_id, SignalKind::Event, &event);
    }

    /// Tells the chat's sessions it is gone and closes them, and stops its agent run, on
    /// every instance.
    pub fn chat_deleted(&self, chat_id: &str) {
        self.signal(chat_id, SignalKind::ChatDeleted, &ChatEvent::ChatDeleted);
    }

    /// Closes the sessions opened with these (just revoked) tokens, on every instance.
    pub fn tokens_revoked(&self, token_hashes: Vec<String>) {
        if token_hashes.is_empty() {
            return;
        }
        match serde_json::to_string(&token_hashes) {
            Ok(frame) => self.send(ChatSignal {
                chat_id: String::new(),
                kind: SignalKind::TokensRevoked,
                frame,
            }),
            Err(error) => tracing::error!(%error, "unserializable token list"),
        }
    }

    fn signal(&self, chat_id: &str, kind: SignalKind, event: &ChatEvent) {
        let frame = match serde_json::to_string(event) {
            Ok(text) => text,
            Err(error) => return tracing::error!(%error, "unserializable event"),
        };
        self.send(ChatSignal {
            chat_id: chat_id.to_owned(),
            kind,
            frame,
        });
    }

    fn send(&self, signal: ChatSignal) {
        match self.bus.get() {
            Some(bus) => bus.publish(signal),
            None => tracing::error!("event published before the hub started"),
        }
    }

    /// Acts on a signal from the bus, on this instance's sessions and runs.
    fn deliver(&self, signal: ChatSignal) {
        match signal.kind {
            SignalKind::Event => self.fan_out(&signal.chat_id, signal.frame.into()),
            SignalKind::ChatDeleted => {
                self.fan_out(&signal.chat_id, signal.frame.into());
                self.close_chat(&signal.chat_id, "chat deleted");
                self.cancel_local_run(&signal.chat_id);
            }
            SignalKind::CancelRun => {
                self.cancel_local_run(&signal.chat_id);
            }
            SignalKind::TokensRevoked => match serde_json::from_str::<Vec<String>>(&signal.frame) {
                Ok(hashes) => self.close_token_sessions(&hashes),
                Err(error) => tracing::error!(%error, "undecodable token list"),
            },
            SignalKind::Resync => {
                // Events were lost: clients reconnect and load the chat afresh.
                let chat_ids: Vec<String> = self.lock_chats().keys().cloned().collect();
                for chat_id in chat_ids {
                    self.close_chat(&chat_id, "events lost; reconnect");
                }
            }
        }
    }

    /// Queues `text` for every protocol-2 session of the chat on this instance.
    fn fan_out(&self, chat_id: &str, text: Arc<str>) {
        let mut chats = self.lock_chats();
        let Some(subscribers) = chats.get_mut(chat_id) else {
            return;
        };
        subscribers.retain(|s| {
            if !s.wants_events.load(Ordering::Relaxed) {
                return true;
            }
            match s.queue.try_send(Outgoing::Event(text.clone())) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    // Dropping the sender ends the writer task, which closes the socket.
                    tracing::warn!(chat_id, session = s.id, "dropping a client that stopped reading");
                    false
                }
            }
        });
    }

    fn close_chat(&self, chat_id: &str, reason: &'static str) {
        if let Some(subscribers) = self.lock_chats().remove(chat_id) {
            for s in subscribers {
                let _ = s.queue.try_send(Outgoing::Close(reason));
            }
        }
    }

    /// Closes every session opened with one of `token_hashes` (a scan of all sessions: a
    /// logout is rare beside the events this map is keyed for).
    fn close_token_sessions(&self, token_hashes: &[String]) {
        let why = ErrorFrame::new(LOGGED_OUT);
        let why: Arc<str> = match serde_json::to_string(&why) {
            Ok(text) => text.into(),
            Err(error) => return tracing::error!(%error, "unserializable frame"),
        };
        let mut chats = self.lock_chats();
        for subscribers in chats.values_mut() {
            subscribers.retain(|s| {
                let revoked = s.token_hash.as_ref().is_some_and(|hash| token_hashes.contains(hash));
                if revoked {
                    let _ = s.queue.try_send(Outgoing::Text(why.clone()));
                    let _ = s.queue.try_send(Outgoing::Close("logged out"));
                }
                !revoked
            });
        }
        chats.retain(|_, subscribers| !subscribers.is_empty());
    }

    /// Open sessions, for the load tool and tests.
    pub fn session_count(&self) -> usize {
        self.lock_chats().values().map(Vec::len).sum()
    }

    /// Claims the chat's agent slot, here and in the store (so across instances); `None`
    /// when a run is already going anywhere.
    pub async fn start_agent_run(&self, chat_id: &str) -> StoreResult<Option<CancellationToken>> {
        let cancel = CancellationToken::new();
        {
            // Reserve the slot here first: two sessions of this instance cannot both claim.
            let mut runs = self.lock_runs();
            if runs.contains_key(chat_id) {
                return Ok(None);
            }
            let run = LocalRun {
                cancel: cancel.clone(),
                lease: None,
            };
            runs.insert(chat_id.to_owned(), run);
        }
        let claimed = self.store.claim_agent_run(chat_id).await;
        let mut runs = self.lock_runs();
        match claimed {
            Ok(Some(lease)) => {
                // Gone only if the chat was deleted meanwhile: the lease drops, the run is
                // already cancelled.
                if let Some(run) = runs.get_mut(chat_id) {
                    run.lease = Some(lease);
                }
                Ok(Some(cancel))
            }
            Ok(None) => {
                runs.remove(chat_id);
                Ok(None)
            }
            Err(error) => {
                runs.remove(chat_id);
                Err(error)
            }
        }
    }

    /// Frees the chat's agent slot, here and in the store.
    pub async fn finish_agent_run(&self, chat_id: &str) {
        let run = self.lock_runs().remove(chat_id);
        if let Some(lease) = run.and_then(|run| run.lease) {
            lease.release().await;
        }
    }

    /// Cancels the chat's agent run, on this instance or the one running it; false when
    /// none is going.
    pub async fn cancel_agent_run(&self, chat_id: &str) -> StoreResult<bool> {
        if self.cancel_local_run(chat_id) {
            return Ok(true);
        }
        if !self.store.agent_run_elsewhere(chat_id).await? {
            return Ok(false);
        }
        self.send(ChatSignal {
            chat_id: chat_id.to_owned(),
            kind: SignalKind::CancelRun,
            frame: String::new(),
        });
        Ok(true)
    }

    fn cancel_local_run(&self, chat_id: &str) -> bool {
        match self.lock_runs().get(chat_id) {
            Some(run) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    fn lock_chats(&self) -> parking_lot::MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        // A panic while holding the lock cannot leave the map half-changed: recover it.
        self.chats.lock()
    }

    fn lock_runs(&self) -> parking_lot::MutexGuard<'_, HashMap<String, LocalRun>> {
        self.agent_runs.lock()
    }
}
