//! The initial payload and the shapes of files and versions in frames and events.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::ws::{BasedFile, DeletedContent, TextFile, VersionInfo, WorkspaceFile};
use serde::Serialize;

use super::PayloadCache;
use super::conversation_cache::{CachedConversation, ConversationCache};
use super::diff_cache::{DiffCache, FileDiffs};
use crate::service::events::{based_file, text_file};
use crate::store::{
    ChatFileRecord, ChatRecord, FileKind, Store, StoreResult, StoredMessage, VersionMeta, VersionRecord,
};

/// What the initial payload carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    /// The original's payload, for protocol-1 clients: [`PayloadKind::Full`] with every
    /// conversation entry's content a string, as the original sends it (file entries as their
    /// JSON text, a deletion as "<name> was deleted.").
    Legacy,
    /// The brief's payload: the whole conversation and every version's diff to the newest.
    Full,
    /// For clients that asked (`?v=2&lean=1`): versions without diffs (`get_diff` fetches one)
    /// and the newest `page` conversation entries with their `seq` (`get_messages` pages back).
    Lean { page: u32 },
}

/// Everything a client needs on connect: the JSON text of the frame, in parts that are sent
/// as one message.
///
/// Written by hand around the stored conversation: its entries are JSON already (the store
/// wrote them with serde), so they are copied, not parsed and re-serialized — with a long
/// history that is most of the payload's bytes. The legacy payload's conversation is not even
/// copied: its part shares the cached text.
pub async fn initial_payload(
    store: &Store,
    cache: &PayloadCache,
    chat: &ChatRecord,
    kind: PayloadKind,
) -> StoreResult<Vec<Bytes>> {
    let (full, page, has_more) = match kind {
        PayloadKind::Legacy | PayloadKind::Full => (
            full_conversation(store, &cache.conversations, &chat.id, kind == PayloadKind::Legacy).await?,
            Vec::new(),
            false,
        ),
        PayloadKind::Lean { page } => {
            let mut entries = store.conversation_page(&chat.id, None, page + 1).await?;
            let has_more = entries.len() > page as usize;
            if has_more {
                entries.remove(0);
            }
            (Arc::default(), entries, has_more)
        }
    };
    let files = store.chat_files(&chat.id).await?;
    let (based, text): (Vec<&ChatFileRecord>, Vec<&ChatFileRecord>) =
        files.iter().partition(|f| f.kind == FileKind::Based);
    let text_files: Vec<TextFile> = text
        .iter()
        .map(|f| text_file(&f.id, &f.filename, &f.path, f.kind, f.extracted_text.as_deref()))
        .collect();
    let workspace_files: Vec<WorkspaceFile> = store
        .workspace_files(&chat.workspace_id)
        .await?
        .into_iter()
        .map(|(file_id, name)| WorkspaceFile { file_id, name })
        .collect();
    let models: Vec<String> = store
        .models_of(&chat.user_id)
        .await?
        .into_iter()
        .map(|m| m.name)
        .collect();

    let page_bytes: usize = page.iter().map(|m| m.content_json.len() + 64).sum();
    let mut parts = Vec::with_capacity(3);
    let mut out = String::with_capacity(page_bytes + 4096);
    out.push_str("{\"chat_id\":");
    push_json(&mut out, &chat.id);
    out.push_str(",\"chat_name\":");
    push_json(&mut out, &chat.name);
    out.push_str(",\"conversation\":[");
    if !full.entries_json.is_empty() {
        parts.push(Bytes::from(std::mem::take(&mut out)));
        parts.push(Bytes::from_owner(SharedEntries(full)));
    }
    for (i, message) in page.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_message(&mut out, message, Form::WithSeq);
    }
    out.push_str("],\"chat_files_text\":");
    push_json(&mut out, &text_files);
    out.push_str(",\"chat_files_based\":");
    match kind {
        PayloadKind::Legacy | PayloadKind::Full => push_json(
            &mut out,
            &full_based_files(store, &cache.diffs, &chat.id, &based).await?,
        ),
        PayloadKind::Lean { .. } => out.push_str(&lean_based_files(store, &chat.id, &based).await?),
    }
    out.push_str(",\"workspace_files\":");
    push_json(&mut out, &workspace_files);
    out.push_str(",\"workspace_id\":");
    push_json(&mut out, &chat.workspace_id);
    out.push_str(",\"models\":");
    push_json(&mut out, &models);
    out.push_str(",\"initial\":true");
    if let PayloadKind::Lean { .. } = kind {
        out.push_str(",\"lean\":true,\"conversation_has_more\":");
        out.push_str(if has_more { "true" } else { "false" });
    }
    out.push('}');
    parts.push(Bytes::from(out));
    Ok(parts)
}

/// A cached conversation's text as the bytes of a payload part.
struct SharedEntries(Arc<CachedConversation>);

impl AsRef<[u8]> for SharedEntries {
    fn as_ref(&self) -> &[u8] {
        self.0.entries_json.as_bytes()
    }
}

/// The whole conversation as JSON text: the cached text extended by the entries saved since.
async fn full_conversation(
    store: &Store,
    cache: &ConversationCache,
    chat_id: &str,
    legacy: bool,
) -> StoreResult<Arc<CachedConversation>> {
    // The two shapes of one chat are cached apart.
    let key = match legacy {
        true => format!("legacy:{chat_id}"),
        false => chat_id.to_owned(),
    };
    let form = match legacy {
        true => Form::Legacy,
        false => Form::Plain,
    };
    let cached = cache.get(&key);
    let after = cached.as_ref().map_or(0, |c| c.last_seq);
    let newer = store.conversation_after(chat_id, after).await?;
    let Some(last_seq) = newer.last().map(|m| m.seq) else {
        return Ok(cached.unwrap_or_default());
    };
    let old = cached.as_ref().map_or("", |c| c.entries_json.as_str());
    let mut text = String::with_capacity(old.len() + newer.iter().map(|m| m.content_json.len() + 64).sum::<usize>());
    text.push_str(old);
    for message in &newer {
        if !text.is_empty() {
            text.push(',');
        }
        push_message(&mut text, message, form);
    }
    let built = Arc::new(CachedConversation {
        last_seq,
        entries_json: text,
    });
    cache.put(&key, built.clone());
    Ok(built)
}

fn push_json<T: Serialize + ?Sized>(out: &mut String, value: &T) {
    // Serializing strings, vectors and derived structs cannot fail.
    out.push_str(&serde_json::to_string(value).unwrap_or_else(|_| "null".into()));
}

/// How [`push_message`] writes an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// Content as stored (objects for file entries).
    Plain,
    /// With `seq` first (lean payloads).
    WithSeq,
    /// Content always a string, as the original sends it.
    Legacy,
}

/// `{"role","type","content"}` (with `seq` first when asked), content copied as stored, or
/// for legacy clients turned into the string the original sends.
fn push_message(out: &mut String, message: &StoredMessage, form: Form) {
    out.push('{');
    if form == Form::WithSeq {
        out.push_str("\"seq\":");
        out.push_str(&message.seq.to_string());
        out.push(',');
    }
    out.push_str("\"role\":");
    push_json(out, &message.role);
    out.push_str(",\"type\":");
    push_json(out, &message.kind);
    out.push_str(",\"content\":");
    if form == Form::Legacy && message.content_json.starts_with('{') {
        push_json(out, &legacy_content(message));
    } else if looks_like_json(&message.content_json) {
        out.push_str(&message.content_json);
    } else {
        // A row not written by the store (edited by hand): sent as the text it holds.
        push_json(out, &message.content_json);
    }
    out.push('}');
}

/// A structured entry as the original stores it: its JSON text; a deletion in its words.
fn legacy_content(message: &StoredMessage) -> String {
    if message.role == "system"
        && let Ok(deleted) = serde_json::from_str::<DeletedContent>(&message.content_json)
    {
        return DeletedContent::note(&deleted.filename);
    }
    message.content_json.clone()
}

/// A cheap check that stored content is one JSON string or object, as `append` writes it.
/// (A full parse of every entry on every connect is what this module avoids.)
fn looks_like_json(text: &str) -> bool {
    let bytes = text.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(b'"'), Some(b'"')) if bytes.len() >= 2 => true,
        (Some(b'{'), Some(b'}')) | (Some(b'['), Some(b']')) => true,
        _ => serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok(),
    }
}

/// The chat's `.based` files with every version's diff to the newest, from the cache when
/// the newest version is the one it was computed for.
async fn full_based_files(
    store: &Store,
    cache: &DiffCache,
    chat_id: &str,
    based: &[&ChatFileRecord],
) -> StoreResult<Vec<BasedFile>> {
    let (latest, metas) = version_lists(store, chat_id).await?;
    let mut files = Vec::with_capacity(based.len());
    for file in based {
        let Some(newest) = latest.get(file.id.as_str()) else {
            files.push(based_file(&file.id, &file.filename, &[]));
            continue;
        };
        let diffs = match cache.get(&file.id, &newest.id, &file.filename) {
            Some(diffs) => diffs,
            None => {
                let contents = store.version_contents(&file.id).await?;
                let diffs = Arc::new(FileDiffs::compute(
                    &file.filename,
                    &newest.id,
                    &newest.content,
                    &contents,
                ));
                cache.put(&file.id, diffs.clone());
                diffs
            }
        };
        let versions = metas
            .get(file.id.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|v| v.seq <= newest.seq)
            .map(|v| VersionInfo {
                version_id: v.id.clone(),
                timestamp: v.timestamp.clone(),
                diff: diffs.get(&v.id).map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect();
        files.push(BasedFile {
            file_id: file.id.clone(),
            name: file.filename.clone(),
            latest_content: newest.content.clone(),
            versions,
            kind: "based".to_owned(),
        });
    }
    Ok(files)
}

/// A version in a lean payload: no diff.
#[derive(Serialize)]
struct LeanVersion<'a> {
    version_id: &'a str,
    timestamp: &'a str,
}

#[derive(Serialize)]
struct LeanBasedFile<'a> {
    file_id: &'a str,
    name: &'a str,
    latest_content: &'a str,
    versions: Vec<LeanVersion<'a>>,
    #[serde(rename = "type")]
    kind: &'static str,
}

async fn lean_based_files(store: &Store, chat_id: &str, based: &[&ChatFileRecord]) -> StoreResult<String> {
    let (latest, metas) = version_lists(store, chat_id).await?;
    let files: Vec<LeanBasedFile> = based
        .iter()
        .map(|file| {
            let newest = latest.get(file.id.as_str());
            let versions = metas
                .get(file.id.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .filter(|v| newest.is_some_and(|n| v.seq <= n.seq))
                .map(|v| LeanVersion {
                    version_id: &v.id,
                    timestamp: &v.timestamp,
                })
                .collect();
            LeanBasedFile {
                file_id: &file.id,
                name: &file.filename,
                latest_content: newest.map_or("", |n| n.content.as_str()),
                versions,
                kind: "based",
            }
        })
        .collect();
    Ok(serde_json::to_string(&files).unwrap_or_else(|_| "[]".into()))
}

type LatestByFile = HashMap<String, VersionRecord>;
type MetasByFile = HashMap<String, Vec<VersionMeta>>;

/// The newest version (with content) and the content-less version list of each file. The
/// newest is read first: a version added in between is left out of this payload (its event
/// follows), never listed without a diff.
async fn version_lists(store: &Store, chat_id: &str) -> StoreResult<(LatestByFile, MetasByFile)> {
    let latest: LatestByFile = store
        .latest_chat_versions(chat_id)
        .await?
        .into_iter()
        .map(|v| (v.file_id.clone(), v))
        .collect();
    let mut metas: MetasByFile = HashMap::new();
    for meta in store.chat_version_list(chat_id).await? {
        metas.entry(meta.file_id.clone()).or_default().push(meta);
    }
    Ok((latest, metas))
}
