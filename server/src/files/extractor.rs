//! Text extraction from uploaded PDFs, in a child process.
//!
//! Why out of process: a PDF parser fed hostile bytes can overflow its stack (a form that
//! draws itself), loop forever (a page tree that contains itself) or inflate a small stream to
//! gigabytes. A stack overflow aborts the whole process — `catch_unwind` cannot stop it — and
//! a spinning thread cannot be cancelled. A child process can be limited and killed: it sets
//! its own CPU-time and address-space limits before it reads a byte, the parent kills it at a
//! wall-clock deadline (or when the request that started it goes away), and reads at most
//! `max_output` bytes of its answer. Any failure means "no text"; the upload itself succeeds.
//!
//! The child is this same executable run with [`CHILD_ARG`]: every binary that serves calls
//! [`run_child_if_asked`] first thing in `main`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

/// The first argument that makes a binary the extraction child instead of itself.
pub const CHILD_ARG: &str = "__kafka-extract-pdf";
/// The first line of a child's answer; anything else is not an answer (e.g. a program that is
/// not a Kafka binary was configured).
const ANSWER_HEADER: &[u8] = b"kafka-extract-pdf ok\n";

const MIB: u64 = 1024 * 1024;

/// Bounds of one extraction.
#[derive(Debug, Clone)]
pub struct ExtractLimits {
    /// The executable to run as the child; `None`: this process's own executable.
    pub program: Option<PathBuf>,
    /// CPU seconds the child may use (RLIMIT_CPU).
    pub cpu_secs: u64,
    /// Address space of the child (RLIMIT_AS), in bytes.
    pub memory_bytes: u64,
    /// Wall-clock time before the child is killed.
    pub wall: Duration,
    /// Text kept from one file; the rest is cut.
    pub max_output: u64,
    /// Children running at once; further uploads wait their turn.
    pub concurrent: usize,
}

impl Default for ExtractLimits {
    fn default() -> Self {
        Self {
            program: None,
            cpu_secs: 10,
            memory_bytes: 1024 * MIB,
            wall: Duration::from_secs(20),
            max_output: 8 * MIB,
            concurrent: std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }
}

/// Why a file's text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtractFailure {
    #[error("the reader took longer than {0} seconds")]
    TimedOut(u64),
    #[error("the reader stopped: {0}")]
    Crashed(String),
    #[error("the reader could not be started: {0}")]
    NotStarted(String),
    #[error("the server was shutting down")]
    Stopped,
}

/// Runs extraction children within [`ExtractLimits`].
#[derive(Debug, Clone)]
pub struct Extractor {
    limits: ExtractLimits,
    slots: Arc<Semaphore>,
    /// Cancelled at shutdown: readers are killed so that their uploads finish at once.
    stopping: CancellationToken,
}

impl Extractor {
    pub fn new(limits: ExtractLimits) -> Self {
        let slots = Arc::new(Semaphore::new(limits.concurrent.max(1)));
        let stopping = CancellationToken::new();
        Self {
            limits,
            slots,
            stopping,
        }
    }

    /// Kills running readers and refuses new ones: the server is stopping, and a graceful
    /// shutdown waits for the uploads that wait for them.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// The text layer of a PDF: `Ok(None)` when it has none, `Err` when it could not be read.
    pub async fn pdf_text(&self, bytes: &[u8]) -> Result<Option<String>, ExtractFailure> {
        let _slot = tokio::select! {
            slot = self.slots.acquire() => slot.map_err(|e| ExtractFailure::NotStarted(e.to_string()))?,
            () = self.stopping.cancelled() => return Err(ExtractFailure::Stopped),
        };
        let program = match &self.limits.program {
            Some(program) => program.clone(),
            None => std::env::current_exe().map_err(|e| ExtractFailure::NotStarted(e.to_string()))?,
        };
        let mut child = Command::new(program)
            .arg(CHILD_ARG)
            .arg(self.limits.cpu_secs.to_string())
            .arg(self.limits.memory_bytes.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // A request that goes away takes its child with it.
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| ExtractFailure::NotStarted(e.to_string()))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(ExtractFailure::NotStarted("no pipes to the child".into()));
        };
        let cap = self.limits.max_output + ANSWER_HEADER.len() as u64;
        let exchange = async {
            let write = async {
                // A child that dies early closes its end: the answer below says why.
                let _ = stdin.write_all(bytes).await;
                drop(stdin);
            };
            let read = async {
                let mut answer = Vec::new();
                let _ = stdout.take(cap).read_to_end(&mut answer).await;
                answer
            };
            let ((), answer) = tokio::join!(write, read);
            if answer.len() as u64 >= cap {
                // Cut at the cap: the child would block on a full pipe.
                let _ = child.start_kill();
            }
            (answer, child.wait().await)
        };
        let outcome = tokio::select! {
            outcome = tokio::time::timeout(self.limits.wall, exchange) => {
                outcome.map_err(|_| ExtractFailure::TimedOut(self.limits.wall.as_secs()))
            }
            () = self.stopping.cancelled() => Err(ExtractFailure::Stopped),
        };
        let (answer, status) = match outcome {
            Ok(exchanged) => exchanged,
            Err(failure) => {
                let _ = child.kill().await;
                return Err(failure);
            }
        };
        let status = status.map_err(|e| ExtractFailure::Crashed(e.to_string()))?;
        let Some(text) = answer.strip_prefix(ANSWER_HEADER) else {
            return Err(ExtractFailure::Crashed(describe(status)));
        };
        // An answer cut at the cap ends with the child killed, which is not a failure.
        if !status.success() && (answer.len() as u64) < cap {
            return Err(ExtractFailure::Crashed(describe(status)));
        }
        let text = String::from_utf8_lossy(text).trim().to_owned();
        Ok(Some(text).filter(|t| !t.is_empty()))
    }
}

/// A child's end in words (Linux signal numbers).
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(24)) => "its CPU time ran out".into(),
        (_, Some(9)) => "it was killed (CPU time)".into(),
        (_, Some(6)) => "it aborted (out of memory or stack)".into(),
        (_, Some(11)) => "it crashed (stack overflow)".into(),
        (_, Some(signal)) => format!("it died of signal {signal}"),
        (Some(101), None) => "it panicked".into(),
        (Some(code), None) => format!("it exited with code {code}"),
        (None, None) => "it ended without a status".into(),
    }
}

/// Turns this process into the extraction child when it was started as one: returns the exit
/// code to end with, or `None` to go on as the program it is.
pub fn run_child_if_asked() -> Option<std::process::ExitCode> {
    let args: Vec<OsString> = std::env::args_os().skip(1).take(3).collect();
    if args.first().and_then(|a| a.to_str()) != Some(CHILD_ARG) {
        return None;
    }
    let number = |i: usize| args.get(i).and_then(|a| a.to_str()).and_then(|a| a.parse::<u64>().ok());
    let (Some(cpu_secs), Some(memory_bytes)) = (number(1), number(2)) else {
        return Some(std::process::ExitCode::from(2));
    };
    Some(child_main(cpu_secs, memory_bytes))
}

/// The child: limits itself, reads the PDF from stdin, writes the header and its text.
fn child_main(cpu_secs: u64, memory_bytes: u64) -> std::process::ExitCode {
    use std::io::{Read, Write};
    use std::process::ExitCode;

    // The soft CPU limit sends SIGXCPU (fatal); the hard one a second later, SIGKILL.
    let limited = rlimit::setrlimit(rlimit::Resource::CPU, cpu_secs, cpu_secs + 1)
        .and_then(|()| rlimit::setrlimit(rlimit::Resource::AS, memory_bytes, memory_bytes))
        // It writes no files.
        .and_then(|()| rlimit::setrlimit(rlimit::Resource::FSIZE, 0, 0));
    if limited.is_err() {
        return ExitCode::from(3);
    }
    let mut bytes = Vec::new();
    if std::io::stdin().read_to_end(&mut bytes).is_err() {
        return ExitCode::from(4);
    }
    // Not a PDF it can read: no text (a crash or a limit ends the process instead).
    let text = pdf_extract::extract_text_from_mem(&bytes).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if out
        .write_all(ANSWER_HEADER)
        .and_then(|()| out.write_all(text.as_bytes()))
        .is_err()
    {
        return ExitCode::from(5);
    }
    ExitCode::SUCCESS
}
