//! Kafka's server: the brief's REST and WebSocket API over SQLite or PostgreSQL, a local Based toolchain,
//! and the coding agent. `serve` is the one entry point, for `main`, the TUI's embedded server
//! and the tests alike.

pub mod auth;
pub mod cli;
pub mod config;
pub mod connections;
pub mod error;
pub mod files;
pub mod http;
pub mod hub;
pub mod json;
pub mod quota;
pub mod service;
pub mod state;
pub mod ws;

// The agent, the toolchain, the diff engine and the store are crates of their own (they
// depend on nothing here); their old paths stay valid inside the server.
pub use kafka_agent as agent;
pub use kafka_based as based;
pub use kafka_diff as diff;
pub use kafka_store as store;
pub use kafka_store::secrets;

/// The allocator every binary that serves declares as its global allocator: after a burst it
/// returns freed memory to the system within moments, where glibc's malloc kept hundreds of
/// MiB in its arenas.
pub use mimalloc::MiMalloc as Allocator;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::agent::{LlmClient, LlmSettings};
use crate::auth::throttle::LoginThrottle;
use crate::config::{Settings, UploadStore};
use crate::files::Uploads;
use crate::hub::Hub;
use crate::quota::StorageQuota;
use crate::state::{AppState, SharedState};
use crate::store::Store;

/// Opens the storage the settings name, creating the data directory if needed.
pub async fn open_state(settings: Settings) -> anyhow::Result<SharedState> {
    tokio::fs::create_dir_all(&settings.data_dir).await?;
    let store = Store::connect_with(&settings.database_url, settings.sqlite_synchronous)
        .await?
        .with_sealer(settings.sealer.clone());
    let purged = store.purge_expired_tokens().await?;
    if purged > 0 {
        tracing::info!(purged, "removed expired login tokens");
    }
    let sealed = store.seal_plain_keys().await?;
    if sealed > 0 {
        tracing::info!(sealed, "encrypted model keys that were stored in plain text");
    }
    let llm = LlmClient::new(LlmSettings {
        timeout: settings.llm_timeout,
        idle_timeout: settings.llm_idle_timeout,
        max_reply_bytes: settings.max_model_reply_bytes,
        allow_private_hosts: settings.private_model_hosts_allowed(),
        lookup: settings.model_host_lookup.clone(),
        ..LlmSettings::default()
    });
    let quota = StorageQuota::new(settings.storage_quota_bytes);
    let uploads = uploads_for(&settings, &store)?
        .with_extract_limits(settings.extract_limits.clone())
        .with_max_files(settings.max_files_per_upload);
    Ok(Arc::new(AppState {
        hub: Hub::start(store.clone()).await?,
        store,
        uploads,
        settings,
        llm,
        payload_cache: Default::default(),
        throttle: LoginThrottle::default(),
        hasher: Default::default(),
        quota,
    }))
}

/// The uploads' home the settings name: the database by default on PostgreSQL, the data
/// directory on SQLite.
fn uploads_for(settings: &Settings, store: &Store) -> anyhow::Result<Uploads> {
    let in_db = match settings.upload_store {
        Some(UploadStore::Db) if !store.can_store_upload_bytes() => {
            anyhow::bail!("--upload-store db needs PostgreSQL; SQLite keeps uploads in the data directory")
        }
        Some(UploadStore::Db) => true,
        Some(UploadStore::Dir) => false,
        None => store.can_store_upload_bytes(),
    };
    tracing::debug!(in_db, "where uploaded bytes live");
    Ok(match in_db {
        true => Uploads::in_database(store.clone(), &settings.data_dir),
        false => Uploads::new(&settings.data_dir),
    })
}

/// Serves the API on `listener` until `shutdown` completes; then open requests finish, and PDF
/// readers are stopped so that the uploads waiting for them finish at once.
pub async fn serve(listener: TcpListener, state: SharedState, shutdown: impl Future<Output = ()> + Send + 'static) {
    let limits = state.settings.connections.clone();
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.uploads.stop_readers();
    };
    connections::serve(listener, http::routes(state), limits, shutdown).await;
}
