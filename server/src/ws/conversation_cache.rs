//! The legacy payload's conversation, kept as JSON text per chat and extended on connect
//! with the entries saved since.
//!
//! Why: a legacy client gets the whole conversation on every connect, and a long chat's
//! conversation is megabytes (each agent edit and revert carries the whole file). Entries are
//! never changed once saved, only appended (and dropped with their chat), so the text built
//! for one connect stays right for the next: only the entries after its last `seq` are read.
//! Bounded by bytes; the least recently built chats go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

/// Conversation text the cache may hold in all.
const MAX_BYTES: usize = 128 * 1024 * 1024;

/// Entries `1..=last_seq` of a chat, each a JSON object, joined by commas (no brackets).
#[derive(Debug, Default)]
pub struct CachedConversation {
    pub last_seq: i64,
    pub entries_json: String,
}

#[derive(Debug, Default)]
pub struct ConversationCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    chats: HashMap<String, Arc<CachedConversation>>,
    /// Chat IDs, least recently stored first.
    order: VecDeque<String>,
    bytes: usize,
}

impl ConversationCache {
    pub fn get(&self, chat_id: &str) -> Option<Arc<CachedConversation>> {
        self.lock().chats.get(chat_id).cloned()
    }

    pub fn put(&self, chat_id: &str, conversation: Arc<CachedConversation>) {
        let size = conversation.entries_json.len();
        if size > MAX_BYTES {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.chats.insert(chat_id.to_owned(), conversation) {
            inner.bytes -= old.entries_json.len();
            inner.order.retain(|id| id != chat_id);
        }
        inner.bytes += size;
        inner.order.push_back(chat_id.to_owned());
        while inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(evicted) = inner.chats.remove(&oldest) {
                inner.bytes -= evicted.entries_json.len();
            }
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Inner> {
        // The map is consistent between statements: recover it after a panic elsewhere.
        self.inner.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_newer_text_replaces_the_older_and_sizes_add_up() {
        let cache = ConversationCache::default();
        let text = |seq: i64, json: &str| {
            Arc::new(CachedConversation {
                last_seq: seq,
                entries_json: json.into(),
            })
        };
        cache.put("a", text(1, "{}"));
        cache.put("a", text(2, "{},{}"));
        cache.put("b", text(1, "{}"));
        assert_eq!(cache.get("a").map(|c| c.last_seq), Some(2));
        assert_eq!(cache.lock().bytes, 7);
        assert!(cache.get("c").is_none());
    }
}
