//! `kafka`: the terminal UI, with an embedded server unless `--server` names one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use kafka_tui::app::App;
use kafka_tui::driver::Driver;
use kafka_tui::embedded::EmbeddedServer;
use kafka_tui::highlight::Background;
use kafka_tui::keymap::Keymap;
use kafka_tui::net::Rest;

#[derive(Debug, Parser)]
#[command(
    name = "kafka",
    version,
    about = "Kafka: chat Based agents into existence, in the terminal"
)]
struct Cli {
    /// A running kafka-server, e.g. http://127.0.0.1:8000 [default: start one in-process]
    #[arg(long, env = "KAFKA_SERVER")]
    server: Option<String>,
    /// Log in with this email, skipping the login screen.
    #[arg(long)]
    email: Option<String>,
    /// Open this chat right after logging in.
    #[arg(long)]
    chat: Option<String>,
    /// Where the embedded server keeps its database and uploads, and where the log goes
    /// [default: the platform's data dir + /kafka].
    #[arg(long, env = "KAFKA_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Colours for a dark or a light terminal background.
    #[arg(long, env = "KAFKA_THEME", value_enum, default_value_t = Background::Dark)]
    theme: Background,
}

#[global_allocator]
static ALLOCATOR: kafka_server::Allocator = kafka_server::Allocator;

fn main() -> ExitCode {
    // The embedded server reads uploaded PDFs in a child: this executable, run as the reader.
    if let Some(code) = kafka_server::files::extractor::run_child_if_asked() {
        return code;
    }
    let cli = Cli::parse();
    let outcome = data_dir(&cli).and_then(|dir| {
        init_logging(&dir)?;
        let keymap = load_keys(&dir)?;
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(run(cli, &dir, keymap))
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafka: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn data_dir(cli: &Cli) -> anyhow::Result<PathBuf> {
    let dir = match &cli.data_dir {
        Some(dir) => dir.clone(),
        None => kafka_server::config::default_data_dir()?,
    };
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// `<data-dir>/keys.conf`, when there is one, rebinds keys (see `Keymap::configured`).
fn load_keys(dir: &Path) -> anyhow::Result<Keymap> {
    let path = dir.join("keys.conf");
    match std::fs::read_to_string(&path) {
        Ok(text) => Keymap::configured(&text).map_err(|error| anyhow::anyhow!("{}: {error}", path.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(Keymap::default()),
        Err(error) => Err(anyhow::anyhow!("{}: {error}", path.display())),
    }
}

/// Logs go to `<data-dir>/kafka.log`: the terminal belongs to the UI.
fn init_logging(dir: &Path) -> anyhow::Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("kafka.log"))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .init();
    Ok(())
}

async fn run(cli: Cli, dir: &Path, keymap: Keymap) -> anyhow::Result<()> {
    let (embedded, base, label) = match cli.server.clone() {
        Some(url) => (None, url.clone(), url),
        None => {
            let server = EmbeddedServer::start(dir).await?;
            let base = server.base_url.clone();
            (Some(server), base, "embedded".to_owned())
        }
    };
    let mut app = App::new(label).with_keymap(keymap).with_background(cli.theme);
    let first = app.start(cli.email, cli.chat);
    let outcome = kafka_tui::terminal::run(Driver::new(app, Rest::new(&base)), first).await;
    if let Some(server) = embedded {
        server.stop().await;
    }
    outcome
}
