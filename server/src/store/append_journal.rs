//! The append journal: chat messages the write thread has acknowledged but that are not yet
//! in the conversation table (SQLite only; see `sqlite_writer`).
//!
//! Why: committing each batch of messages into the table wrote a B-tree leaf per chat in every
//! commit — ≈11 WAL frames of 4 KiB for five chats, ≈115 µs before the replies could go —
//! and that commit capped a server at ≈25,000 echoes a second. Here a batch is one line of
//! JSON per message, written with one call: the same promise as SQLite's WAL at
//! `synchronous = NORMAL` (in the operating system's file cache before the answer; survives
//! a crash of the process, not of the machine). Another thread copies the entries into the
//! table in large batches (`journal_copier`), where each leaf is written once for many
//! messages.
//!
//! The journal is a series of numbered files beside the database
//! (`<database>-kafka-appends.<n>`). The write thread starts a new one whenever it hands the
//! entries written so far to the copier, which removes the old one once their copy has
//! committed. At start-up the files left behind are copied again, in order; entries already in
//! the table (a crash between a copy's commit and the removal) are skipped by their
//! `(chat_id, seq)` key.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One acknowledged conversation entry, numbered in its chat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct JournalEntry {
    pub chat_id: String,
    pub seq: i64,
    pub role: String,
    pub kind: String,
    /// The entry's content as the table stores it: JSON text.
    pub content: String,
    pub created_at: String,
}

/// The journal's files: numbered segments, one being written, older ones waiting for their
/// copy into the table to commit.
#[derive(Debug)]
pub(super) struct Journal {
    /// Held by this process while the journal is in use (see `JournalLock`).
    lock: Arc<JournalLock>,
    /// The database file's path: segments are named after it.
    database: String,
    number: u64,
    file: File,
    /// Bytes of whole entries in the current segment: the next write goes here.
    len: u64,
}

/// A segment's file and the entries it holds.
#[derive(Debug)]
pub(super) struct Segment {
    pub path: PathBuf,
    pub entries: Vec<JournalEntry>,
}

const SEGMENT_INFIX: &str = "-kafka-appends.";
/// How long a starting server waits for another one on the same database to let go (a
/// restart: the old process may still be finishing).
const LOCK_WAIT: Duration = Duration::from_secs(2);
const LOCK_POLL: Duration = Duration::from_millis(20);

/// An exclusive lock on `<database>-kafka-appends.lock`, held by the write thread and the
/// copier. Two servers on one SQLite file would number the same chat from different journals
/// (and copy each other's segments): the second one refuses to start instead.
#[derive(Debug)]
pub(super) struct JournalLock {
    _file: File,
}

impl JournalLock {
    fn take(database: &str) -> io::Result<Self> {
        let path = format!("{database}-kafka-appends.lock");
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let started = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(JournalLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    std::thread::sleep(LOCK_POLL);
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io::Error::other(format!(
                        "another Kafka server is using the database {database} (it holds {path}); \
                         stop it, or give this one another data directory"
                    )));
                }
                Err(std::fs::TryLockError::Error(error)) => return Err(error),
            }
        }
    }
}

/// Segment `number` of the journal of the database file at `database`.
fn segment_path(database: &str, number: u64) -> PathBuf {
    PathBuf::from(format!("{database}{SEGMENT_INFIX}{number}"))
}

impl Journal {
    /// Reads the segments an earlier run left beside the database file at `database`, in
    /// order, and starts a new segment after them. A last line cut short (the process died
    /// inside a write, so nobody was answered) is dropped.
    pub(super) fn open(database: &str) -> io::Result<(Self, Vec<Segment>)> {
        let lock = Arc::new(JournalLock::take(database)?);
        let mut found = Vec::new();
        for number in segment_numbers(database)? {
            let path = segment_path(database, number);
            let mut text = Vec::new();
            File::open(&path)?.read_to_end(&mut text)?;
            let entries = parse(&text, &path);
            found.push((number, Segment { path, entries }));
        }
        let number = found.last().map_or(1, |(n, _)| n + 1);
        let journal = Journal {
            lock,
            database: database.to_owned(),
            number,
            file: create(&segment_path(database, number))?,
            len: 0,
        };
        Ok((journal, found.into_iter().map(|(_, s)| s).collect()))
    }

    /// Writes `entries` at the end of the current segment, in one call. On failure the file is
    /// cut back to where it was, so that a partial write never sits before later entries.
    pub(super) fn append(&mut self, entries: &[JournalEntry]) -> io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut lines = Vec::with_capacity(entries.len() * 160);
        for entry in entries {
            serde_json::to_writer(&mut lines, entry)?;
            lines.push(b'\n');
        }
        if let Err(error) = self.file.write_all_at(&lines, self.len) {
            let _ = self.file.set_len(self.len);
            return Err(error);
        }
        self.len += lines.len() as u64;
        Ok(())
    }

    /// Starts the next segment; returns the path of the one just finished, whose entries are
    /// about to be copied (the copier removes it once that has committed).
    pub(super) fn rotate(&mut self) -> io::Result<PathBuf> {
        self.file = create(&segment_path(&self.database, self.number + 1))?;
        self.len = 0;
        self.number += 1;
        Ok(segment_path(&self.database, self.number - 1))
    }

    /// The lock, for the copier to hold as long as it runs.
    pub(super) fn lock(&self) -> Arc<JournalLock> {
        self.lock.clone()
    }

    /// The current segment's path.
    #[cfg(test)]
    pub(super) fn path(&self) -> PathBuf {
        segment_path(&self.database, self.number)
    }
}

fn create(path: &Path) -> io::Result<File> {
    OpenOptions::new().write(true).create(true).truncate(true).open(path)
}

/// The numbers of the segments beside `database`, in order.
fn segment_numbers(database: &str) -> io::Result<Vec<u64>> {
    let database = Path::new(database);
    let dir = match database.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let prefix = format!(
        "{}{SEGMENT_INFIX}",
        database.file_name().unwrap_or_default().to_string_lossy()
    );
    let mut numbers = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        if let Some(number) = name
            .to_string_lossy()
            .strip_prefix(&prefix)
            .and_then(|n| n.parse().ok())
        {
            numbers.push(number);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

/// The whole entries in `text`; what follows the last newline is a torn write. A whole line
/// that does not parse is skipped with a warning.
fn parse(text: &[u8], path: &Path) -> Vec<JournalEntry> {
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |last| last + 1);
    if whole < text.len() {
        tracing::warn!(path = %path.display(), bytes = text.len() - whole, "dropping a torn journal write");
    }
    text[..whole]
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| {
            serde_json::from_slice(line)
                .inspect_err(
                    |error| tracing::warn!(path = %path.display(), %error, "skipping an unreadable journal line"),
                )
                .ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64) -> JournalEntry {
        JournalEntry {
            chat_id: "chat-1".into(),
            seq,
            role: "user".into(),
            kind: "text".into(),
            content: "\"line one\\nline two\"".into(),
            created_at: "2026-11-26T10:00:00.000000".into(),
        }
    }

    fn database(dir: &tempfile::TempDir) -> String {
        dir.path().join("kafka.db").display().to_string()
    }

    fn entries(segments: &[Segment]) -> Vec<Vec<JournalEntry>> {
        segments.iter().map(|s| s.entries.clone()).collect()
    }

    #[test]
    fn segments_left_behind_are_read_in_order_and_writing_goes_on_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, found) = Journal::open(&database(&dir)).unwrap();
        assert!(found.is_empty());
        journal.append(&[entry(1), entry(2)]).unwrap();
        let finished = journal.rotate().unwrap();
        journal.append(&[entry(3)]).unwrap();
        drop(journal);

        let (mut journal, found) = Journal::open(&database(&dir)).unwrap();
        assert_eq!(entries(&found), [vec![entry(1), entry(2)], vec![entry(3)]]);
        assert_eq!(found[0].path, finished);
        // Copied: the caller removes them.
        for segment in &found {
            std::fs::remove_file(&segment.path).unwrap();
        }
        journal.append(&[entry(4)]).unwrap();
        drop(journal);
        let (_, found) = Journal::open(&database(&dir)).unwrap();
        assert_eq!(entries(&found), [vec![entry(4)]]);
    }

    #[test]
    fn a_torn_last_write_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, _) = Journal::open(&database(&dir)).unwrap();
        journal.append(&[entry(1)]).unwrap();
        let path = journal.path();
        drop(journal);
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(br#"{"chat_id":"chat-1","seq":2,"ro"#);
        std::fs::write(&path, &torn).unwrap();

        let (_, found) = Journal::open(&database(&dir)).unwrap();
        assert_eq!(entries(&found), [vec![entry(1)]]);
    }

    #[test]
    fn an_unreadable_whole_line_is_skipped_and_numbering_follows_the_highest_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = serde_json::to_vec(&entry(1)).unwrap();
        text.extend_from_slice(b"\nnot json\n");
        text.extend_from_slice(&serde_json::to_vec(&entry(2)).unwrap());
        text.push(b'\n');
        std::fs::write(segment_path(&database(&dir), 7), &text).unwrap();
        let (journal, found) = Journal::open(&database(&dir)).unwrap();
        assert_eq!(entries(&found), [vec![entry(1), entry(2)]]);
        assert_eq!(journal.path(), segment_path(&database(&dir), 8));
    }

    #[test]
    fn a_second_journal_on_the_same_database_is_refused_until_the_first_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = Journal::open(&database(&dir)).unwrap();
        let refused = Journal::open(&database(&dir)).unwrap_err();
        assert!(refused.to_string().contains("another Kafka server"), "{refused}");
        let lock = first.lock();
        drop(first);
        assert!(
            Journal::open(&database(&dir)).is_err(),
            "the copier's share still holds it"
        );
        drop(lock);
        assert!(Journal::open(&database(&dir)).is_ok());
    }
}
