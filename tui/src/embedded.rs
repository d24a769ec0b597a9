//! The in-process server `kafka` starts when no `--server` is given: the real
//! `kafka-server` on 127.0.0.1 and a free port, over SQLite in the data directory.

use std::path::Path;

use kafka_server::config::Settings;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct EmbeddedServer {
    pub base_url: String,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl EmbeddedServer {
    pub async fn start(data_dir: &Path) -> anyhow::Result<Self> {
        let state = kafka_server::open_state(Settings::for_data_dir(data_dir)).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(kafka_server::serve(listener, state, async {
            let _ = stopped.await;
        }));
        tracing::info!(%base_url, data_dir = %data_dir.display(), "embedded server started");
        Ok(EmbeddedServer {
            base_url,
            shutdown,
            task,
        })
    }

    /// Stops accepting requests and lets open ones finish.
    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        let _ = self.task.await;
    }
}
