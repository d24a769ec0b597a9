//! The legacy payload's per-version diffs ("from this version to the newest"), cached per
//! file until the file gets a new version or a new name.
//!
//! Why: those diffs change only when the newest version does, yet every connect of a legacy
//! client needs all of them. Computing them once per newest version (and once per distinct
//! content: reverts repeat contents) makes a reconnect cost a lookup instead of a diff per
//! version. The cache is bounded by bytes; the oldest entries go first.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::diff::make_patch;

/// Diff bytes the cache may hold in all.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// Every version's diff to the newest, for one newest version and one file name.
#[derive(Debug)]
pub struct FileDiffs {
    latest_id: String,
    filename: String,
    /// By version ID.
    diffs: HashMap<String, Arc<str>>,
    bytes: usize,
}

impl FileDiffs {
    /// Diffs each `(version id, content)` to `latest`, once per distinct content.
    pub fn compute(filename: &str, latest_id: &str, latest: &str, versions: &[(String, String)]) -> Self {
        let mut by_content: HashMap<&str, Arc<str>> = HashMap::new();
        let diffs: HashMap<String, Arc<str>> = versions
            .iter()
            .map(|(id, content)| {
                let diff = by_content
                    .entry(content.as_str())
                    .or_insert_with(|| make_patch(content, latest, filename, filename).into())
                    .clone();
                (id.clone(), diff)
            })
            .collect();
        let bytes = by_content.values().map(|d| d.len()).sum::<usize>() + diffs.len() * 64;
        Self {
            latest_id: latest_id.to_owned(),
            filename: filename.to_owned(),
            diffs,
            bytes,
        }
    }

    /// The diff from `version_id` to the newest, if that version was known.
    pub fn get(&self, version_id: &str) -> Option<&Arc<str>> {
        self.diffs.get(version_id)
    }
}

#[derive(Debug, Default)]
pub struct DiffCache {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    files: HashMap<String, Arc<FileDiffs>>,
    /// File IDs, oldest insertion first, for eviction.
    order: VecDeque<String>,
    bytes: usize,
}

impl DiffCache {
    /// The file's diffs, if cached for this newest version and name.
    pub fn get(&self, file_id: &str, latest_id: &str, filename: &str) -> Option<Arc<FileDiffs>> {
        let inner = self.lock();
        inner
            .files
            .get(file_id)
            .filter(|f| f.latest_id == latest_id && f.filename == filename)
            .cloned()
    }

    pub fn put(&self, file_id: &str, diffs: Arc<FileDiffs>) {
        if diffs.bytes > MAX_BYTES {
            return;
        }
        let mut inner = self.lock();
        if let Some(old) = inner.files.insert(file_id.to_owned(), diffs.clone()) {
            inner.bytes -= old.bytes;
            inner.order.retain(|id| id != file_id);
        }
        inner.bytes += diffs.bytes;
        inner.order.push_back(file_id.to_owned());
        while inner.bytes > MAX_BYTES {
            let Some(oldest) = inner.order.pop_front() else { break };
            if let Some(evicted) = inner.files.remove(&oldest) {
                inner.bytes -= evicted.bytes;
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

    fn versions() -> Vec<(String, String)> {
        vec![
            ("v1".into(), "a\nb\n".into()),
            ("v2".into(), "a\nc\n".into()),
            ("v3".into(), "a\nb\n".into()),
        ]
    }

    #[test]
    fn each_version_gets_its_diff_to_the_newest() {
        let diffs = FileDiffs::compute("f.based", "v3", "a\nb\n", &versions());
        assert_eq!(diffs.get("v1").map(|d| d.as_ref()), Some(""));
        assert_eq!(
            diffs.get("v2").map(|d| d.to_string()),
            Some(make_patch("a\nc\n", "a\nb\n", "f.based", "f.based"))
        );
        assert_eq!(diffs.get("v3").map(|d| d.as_ref()), Some(""));
    }

    #[test]
    fn a_new_newest_version_or_name_misses() {
        let cache = DiffCache::default();
        cache.put(
            "f",
            Arc::new(FileDiffs::compute("f.based", "v3", "a\nb\n", &versions())),
        );
        assert!(cache.get("f", "v3", "f.based").is_some());
        assert!(cache.get("f", "v4", "f.based").is_none());
        assert!(cache.get("f", "v3", "g.based").is_none());
        assert!(cache.get("g", "v3", "f.based").is_none());
    }
}
