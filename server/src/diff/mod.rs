//! SCRATCH STAND-IN for the real diff engine (built elsewhere with the same API).
//! `apply_tolerant` finds each hunk by its content, nearest to the stated line number,
//! so hunks with wrong line numbers still apply.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchError {
    pub hunk: usize,
    pub reason: String,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hunk {} failed: {}", self.hunk, self.reason)
    }
}

impl std::error::Error for PatchError {}

/// A whole-file replacement hunk: honest, valid, and enough for a stand-in.
pub fn make_patch(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    let old_lines: Vec<&str> = old.lines().collect();
    let new_lines: Vec<&str> = new.lines().collect();
    let mut out = format!(
        "--- {old_name}\n+++ {new_name}\n@@ -1,{} +1,{} @@\n",
        old_lines.len(),
        new_lines.len()
    );
    old_lines.iter().for_each(|l| out.push_str(&format!("-{l}\n")));
    new_lines.iter().for_each(|l| out.push_str(&format!("+{l}\n")));
    out
}

struct Hunk {
    old_start: usize,
    before: Vec<String>,
    after: Vec<String>,
}

pub fn apply_tolerant(text: &str, patch: &str) -> Result<String, PatchError> {
    let hunks = parse_hunks(patch)?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let mut cursor = 0;
    for (index, hunk) in hunks.iter().enumerate() {
        let at = find_hunk(&lines, hunk, cursor).ok_or_else(|| PatchError {
            hunk: index + 1,
            reason: format!(
                "its context/removed lines were not found in the file (expected near line {})",
                hunk.old_start
            ),
        })?;
        lines.splice(at..at + hunk.before.len(), hunk.after.iter().cloned());
        cursor = at + hunk.after.len();
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') || text.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

fn parse_hunks(patch: &str) -> Result<Vec<Hunk>, PatchError> {
    let mut hunks: Vec<Hunk> = Vec::new();
    for line in patch.lines() {
        if let Some(header) = line.strip_prefix("@@") {
            let old_start = header
                .trim()
                .trim_start_matches('-')
                .split([',', ' '])
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            hunks.push(Hunk {
                old_start,
                before: Vec::new(),
                after: Vec::new(),
            });
            continue;
        }
        let Some(hunk) = hunks.last_mut() else {
            continue;
        };
        if let Some(rest) = line.strip_prefix('-').filter(|_| !line.starts_with("---")) {
            hunk.before.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix('+').filter(|_| !line.starts_with("+++")) {
            hunk.after.push(rest.to_string());
        } else if let Some(rest) = line.strip_prefix(' ').or((line.is_empty()).then_some("")) {
            hunk.before.push(rest.to_string());
            hunk.after.push(rest.to_string());
        }
    }
    if hunks.is_empty() {
        return Err(PatchError {
            hunk: 0,
            reason: "the patch has no `@@` hunk header".to_string(),
        });
    }
    Ok(hunks)
}

/// The match of the hunk's old lines at or after `cursor` nearest to its stated start.
fn find_hunk(lines: &[String], hunk: &Hunk, cursor: usize) -> Option<usize> {
    let len = hunk.before.len();
    let stated = hunk.old_start.saturating_sub(1);
    if len > lines.len() {
        return None;
    }
    (cursor..=lines.len().saturating_sub(len))
        .filter(|&at| lines[at..at + len] == hunk.before[..])
        .min_by_key(|&at| at.abs_diff(stated))
}
