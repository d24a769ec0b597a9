//! The `kafka-server` command line: serve the API, or check `.based` files.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::ServerArgs;
use crate::files::moving::Direction;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kafka-server",
    version,
    about = "Kafka: a chat-driven coding agent for Based"
)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the REST and WebSocket API (the default).
    Serve,
    /// Validate .based files: prints FILE:LINE:COL diagnostics; exits 1 if any has an error.
    Check {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Manage accounts in the database the server options name.
    #[command(subcommand)]
    User(UserCommand),
    /// Move uploaded files' bytes between the data directory and the database (PostgreSQL);
    /// resumable: run it again after an interruption.
    #[command(subcommand)]
    Uploads(UploadsCommand),
}

#[derive(Debug, Subcommand)]
enum UploadsCommand {
    /// Copy the bytes in <data-dir>/uploads into the database.
    ToDb {
        /// Remove each file from the data directory once the database has it.
        #[arg(long)]
        remove_source: bool,
    },
    /// Copy the bytes in the database into <data-dir>/uploads.
    ToDir {
        /// Remove each file's bytes from the database once the data directory has them.
        #[arg(long)]
        remove_source: bool,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Set EMAIL's password, read from stdin (one line, 8 characters or more); creates the
    /// account if there is none, and logs out every session of an existing one.
    SetPassword { email: String },
}

pub fn main() -> ExitCode {
    if let Some(code) = crate::files::extractor::run_child_if_asked() {
        return code;
    }
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check { files }) => check(&files),
        Some(Command::User(UserCommand::SetPassword { email })) => {
            crate::auth::admin::set_password_command(&cli.server, &email)
        }
        Some(Command::Uploads(command)) => {
            let (direction, remove_source) = match command {
                UploadsCommand::ToDb { remove_source } => (Direction::ToDatabase, remove_source),
                UploadsCommand::ToDir { remove_source } => (Direction::ToDataDir, remove_source),
            };
            crate::files::moving::command(&cli.server, direction, remove_source)
        }
        Some(Command::Serve) | None => run_server(&cli.server),
    }
}

fn run_server(args: &ServerArgs) -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    raise_open_files_limit();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("kafka-server: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("kafka-server: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Every WebSocket is an open file: the usual soft limit of 1,024 would refuse clients long
/// before memory or CPU run out, so take the hard limit the system allows.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(error) => tracing::warn!(%error, "cannot raise the open-files limit"),
    }
}

async fn serve(args: &ServerArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    if let Some(warning) = args.insecure_warning() {
        tracing::warn!("{warning}");
    }
    let state = crate::open_state(settings).await?;
    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", args.bind))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %state.settings.data_dir.display(),
        auth = ?state.settings.auth, "kafka-server listening");
    crate::serve(listener, state, shutdown_signal()).await;
    tracing::info!("kafka-server stopped");
    Ok(())
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

fn check(files: &[PathBuf]) -> ExitCode {
    let mut failed = false;
    for path in files {
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(error) => {
                eprintln!("{}: cannot read: {error}", path.display());
                failed = true;
                continue;
            }
        };
        let diagnostics = crate::based::validate(&source);
        for diagnostic in &diagnostics {
            println!(
                "{}",
                crate::based::render(&path.display().to_string(), &source, diagnostic)
            );
        }
        failed |= crate::based::has_errors(&diagnostics);
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
