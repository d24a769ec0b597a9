//! What every request handler shares.

use std::sync::Arc;

use crate::agent::LlmClient;
use crate::auth::passwords::Hasher;
use crate::auth::throttle::LoginThrottle;
use crate::config::Settings;
use crate::files::Uploads;
use crate::hub::Hub;
use crate::quota::StorageQuota;
use crate::store::Store;
use crate::ws::PayloadCache;

#[derive(Debug)]
pub struct AppState {
    pub store: Store,
    pub uploads: Uploads,
    pub settings: Settings,
    /// Live WebSocket sessions by chat, for events and for closing deleted chats.
    pub hub: Arc<Hub>,
    /// One HTTP client for all model calls (connection reuse).
    pub llm: LlmClient,
    /// The legacy payload's conversation text and version diffs, kept between connects.
    pub payload_cache: PayloadCache,
    /// Failed logins per account and address.
    pub throttle: LoginThrottle,
    /// The bounded pool every password hash and check runs on.
    pub hasher: Hasher,
    /// Decides whether a user's next write fits in their storage quota.
    pub quota: StorageQuota,
}

pub type SharedState = Arc<AppState>;
