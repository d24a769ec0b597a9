//! `kafka-server uploads to-db | to-dir`: moves the bytes of existing uploads between the data
//! directory and the database (PostgreSQL). One file at a time, each committed before the
//! next, so an interrupted run is resumed by running it again: files already moved are
//! counted and skipped. Servers may keep running: in the database mode they read a file from
//! the data directory until its bytes are in the database.

use std::io;
use std::path::Path;

use futures_util::TryStreamExt;
use tokio::io::AsyncWriteExt;

use super::{ByteStore, LocalDir};
use crate::store::{Store, StoreError};

/// Which way the bytes go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From `<data-dir>/uploads` into the database.
    ToDatabase,
    /// From the database into `<data-dir>/uploads`.
    ToDataDir,
}

/// What a run did, file by file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MoveReport {
    /// Files whose bytes were copied, and how many bytes.
    pub moved: u64,
    pub bytes: u64,
    /// Files already at the destination (an earlier run).
    pub already: u64,
    /// Files with bytes at neither place (or deleted during the run).
    pub missing: u64,
    /// Source copies removed (with `remove_source`).
    pub removed: u64,
}

impl std::fmt::Display for MoveReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "moved {} file(s), {} byte(s); {} already there; {} with no bytes to move; {} source copies removed",
            self.moved, self.bytes, self.already, self.missing, self.removed
        )
    }
}

/// Moves every uploaded file's bytes in `direction`; with `remove_source` the copy left
/// behind is removed once the destination has the bytes.
pub async fn move_uploads(
    store: &Store,
    data_dir: &Path,
    direction: Direction,
    remove_source: bool,
) -> anyhow::Result<MoveReport> {
    if !store.can_store_upload_bytes() {
        anyhow::bail!(
            "uploaded bytes can be kept in the database only on PostgreSQL (give --database-url postgres://…)"
        );
    }
    let local = LocalDir::new(data_dir);
    let mut report = MoveReport::default();
    for (id, path) in store.uploaded_files().await? {
        match direction {
            Direction::ToDatabase => to_database(store, &local, &id, &path, remove_source, &mut report).await?,
            Direction::ToDataDir => to_data_dir(store, &local, &id, &path, remove_source, &mut report).await?,
        }
    }
    Ok(report)
}

async fn to_database(
    store: &Store,
    local: &LocalDir,
    id: &str,
    path: &str,
    remove_source: bool,
    report: &mut MoveReport,
) -> anyhow::Result<()> {
    if store.upload_bytes_size(id).await?.is_some() {
        report.already += 1;
    } else {
        let bytes = match tokio::fs::read(local.path_of(path)?).await {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                report.missing += 1;
                return Ok(());
            }
            Err(e) => return Err(anyhow::anyhow!("cannot read {path}: {e}")),
        };
        let len = bytes.len() as u64;
        match store.put_upload_bytes(id, bytes.into()).await {
            Ok(()) => (report.moved, report.bytes) = (report.moved + 1, report.bytes + len),
            // Deleted meanwhile: its bytes must not come back.
            Err(StoreError::NotFound(_)) => {
                report.missing += 1;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        }
    }
    if remove_source && local.path_of(path)?.exists() {
        local.delete(path).await?;
        report.removed += 1;
    }
    Ok(())
}

async fn to_data_dir(
    store: &Store,
    local: &LocalDir,
    id: &str,
    path: &str,
    remove_source: bool,
    report: &mut MoveReport,
) -> anyhow::Result<()> {
    let target = local.path_of(path)?;
    let on_disk = tokio::fs::metadata(&target).await.ok().map(|m| m.len());
    let Some(size) = store.upload_bytes_size(id).await? else {
        match on_disk {
            Some(_) => report.already += 1,
            None => report.missing += 1,
        }
        return Ok(());
    };
    if on_disk == Some(size.len) {
        report.already += 1;
    } else {
        write_atomically(&target, store.upload_bytes_stream(id, size))
            .await
            .map_err(|e| anyhow::anyhow!("cannot write {path}: {e}"))?;
        (report.moved, report.bytes) = (report.moved + 1, report.bytes + size.len);
    }
    if remove_source {
        store.delete_upload_bytes(id).await?;
        report.removed += 1;
    }
    Ok(())
}

/// Writes the stream beside `target`, syncs it and renames it into place: `target` is either
/// absent or complete, whenever the run stops.
async fn write_atomically(
    target: &Path,
    mut chunks: futures_util::stream::BoxStream<'static, io::Result<bytes::Bytes>>,
) -> io::Result<()> {
    if let Some(dir) = target.parent() {
        tokio::fs::create_dir_all(dir).await?;
    }
    let mut partial = target.as_os_str().to_owned();
    partial.push(".partial");
    let mut file = tokio::fs::File::create(&partial).await?;
    while let Some(chunk) = chunks.try_next().await? {
        file.write_all(&chunk).await?;
    }
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, target).await
}

/// `kafka-server uploads to-db | to-dir [--remove-source]`, on the database and data
/// directory the server options name; prints what it did.
pub fn command(args: &crate::config::ServerArgs, direction: Direction, remove_source: bool) -> std::process::ExitCode {
    let run = || -> anyhow::Result<MoveReport> {
        let settings = args.settings()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async {
            let store = Store::connect(&settings.database_url).await?;
            move_uploads(&store, &settings.data_dir, direction, remove_source).await
        })
    };
    match run() {
        Ok(report) => {
            println!("{report}");
            std::process::ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("kafka-server: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
