//! Live sessions by chat: fan-out of events to protocol-2 clients, closing the sockets of a
//! deleted chat, and the one agent run each chat may have at a time.
//!
//! Each session owns a bounded outbound queue drained by its own writer task. Publishing
//! never waits: a client whose queue is full is dropped (its socket closed), so one slow or
//! dead client cannot hold up the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_protocol::ws::ChatEvent;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// What a session's writer task sends.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Text(Arc<str>),
    /// A keep-alive ping.
    Ping,
    /// Close the socket with this reason.
    Close(&'static str),
}

/// Frames a session may have queued before it counts as stuck.
pub const SESSION_QUEUE: usize = 1024;

#[derive(Debug)]
struct Subscriber {
    id: u64,
    wants_events: Arc<AtomicBool>,
    queue: mpsc::Sender<Outgoing>,
}

#[derive(Debug, Default)]
pub struct Hub {
    next_id: AtomicU64,
    chats: Mutex<HashMap<String, Vec<Subscriber>>>,
    agent_runs: Mutex<HashMap<String, CancellationToken>>,
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
        let mut chats = self.hub.chats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(subscribers) = chats.get_mut(&self.chat_id) {
            subscribers.retain(|s| s.id != self.id);
            if subscribers.is_empty() {
                chats.remove(&self.chat_id);
            }
        }
    }
}

impl Hub {
    /// Registers a session of `chat_id`. It receives events while `wants_events` is true.
    pub fn join(
        self: &Arc<Self>,
        chat_id: &str,
        wants_events: Arc<AtomicBool>,
        queue: mpsc::Sender<Outgoing>,
    ) -> Membership {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock_chats()
            .entry(chat_id.to_owned())
            .or_default()
            .push(Subscriber {
                id,
                wants_events,
                queue,
            });
        Membership {
            hub: self.clone(),
            chat_id: chat_id.to_owned(),
            id,
        }
    }

    /// Sends `event` to every protocol-2 session of the chat.
    pub fn publish(&self, chat_id: &str, event: ChatEvent) {
        let text: Arc<str> = match serde_json::to_string(&event) {
            Ok(text) => text.into(),
            Err(error) => return tracing::error!(%error, "unserializable event"),
        };
        let mut chats = self.lock_chats();
        let Some(subscribers) = chats.get_mut(chat_id) else {
            return;
        };
        subscribers.retain(|s| {
            if !s.wants_events.load(Ordering::Relaxed) {
                return true;
            }
            match s.queue.try_send(Outgoing::Text(text.clone())) {
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

    /// Tells the chat's sessions it is gone and closes them.
    pub fn chat_deleted(&self, chat_id: &str) {
        self.publish(chat_id, ChatEvent::ChatDeleted);
        if let Some(subscribers) = self.lock_chats().remove(chat_id) {
            for s in subscribers {
                let _ = s.queue.try_send(Outgoing::Close("chat deleted"));
            }
        }
        if let Some(run) = self.lock_runs().remove(chat_id) {
            run.cancel();
        }
    }

    /// Open sessions, for the load tool and tests.
    pub fn session_count(&self) -> usize {
        self.lock_chats().values().map(Vec::len).sum()
    }

    /// Claims the chat's agent slot; `None` when a run is already going.
    pub fn start_agent_run(&self, chat_id: &str) -> Option<CancellationToken> {
        let mut runs = self.lock_runs();
        if runs.contains_key(chat_id) {
            return None;
        }
        let token = CancellationToken::new();
        runs.insert(chat_id.to_owned(), token.clone());
        Some(token)
    }

    pub fn finish_agent_run(&self, chat_id: &str) {
        self.lock_runs().remove(chat_id);
    }

    /// Cancels the chat's agent run; false when none is going.
    pub fn cancel_agent_run(&self, chat_id: &str) -> bool {
        match self.lock_runs().get(chat_id) {
            Some(token) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    fn lock_chats(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Subscriber>>> {
        // A panic while holding the lock cannot leave the map half-changed: recover it.
        self.chats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_runs(&self) -> std::sync::MutexGuard<'_, HashMap<String, CancellationToken>> {
        self.agent_runs.lock().unwrap_or_else(|p| p.into_inner())
    }
}
