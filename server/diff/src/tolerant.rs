//! Tolerant application for model-written diffs: hunk line numbers are only a hint,
//! and each hunk is located by its context and removed lines, first exactly, then
//! ignoring trailing whitespace, then ignoring indentation width.

use super::hunk::{Hunk, LineKind};
use super::parse::{Mode, parse_patch};
use super::{PatchError, split_lines};

/// How loosely a hunk line may match a file line; tried in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tier {
    Exact,
    TrailingSpace,
    Indentation,
}

impl Tier {
    fn same(self, file: &str, patch: &str) -> bool {
        match self {
            Tier::Exact => file == patch,
            Tier::TrailingSpace => file.trim_end() == patch.trim_end(),
            Tier::Indentation => file.trim() == patch.trim(),
        }
    }
}

/// Longest quote of a missing hunk in an error message.
const MAX_QUOTED: usize = 12;

/// Applies a possibly sloppy patch, refusing hunks that match nowhere or twice.
pub fn apply_tolerant(text: &str, patch: &str) -> Result<String, PatchError> {
    let hunks = parse_patch(patch, Mode::Tolerant)?;
    let src = split_lines(text);
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    // How far the real positions have drifted from the header's line numbers so far.
    let mut drift: isize = 0;
    for (n, hunk) in hunks.iter().enumerate() {
        let (start, tier) = locate(&src, cursor, hunk, drift, n + 1)?;
        if let Some(hint) = hunk.old_index() {
            drift = drift_between(start, hint);
        }
        out.extend(src[cursor..start].iter().copied());
        let old_len = hunk.old_lines().len();
        out.push_str(&rewrite(hunk, &src[start..start + old_len], tier));
        cursor = start + old_len;
    }
    out.extend(src[cursor..].iter().copied());
    Ok(out)
}

/// Finds where a hunk's old lines start at or after `cursor`.
fn locate(src: &[&str], cursor: usize, hunk: &Hunk, drift: isize, number: usize) -> Result<(usize, Tier), PatchError> {
    let old = hunk.old_lines();
    let hint = hunk.old_index().map(|h| h.saturating_add_signed(drift));
    if old.is_empty() {
        return match hint {
            Some(h) => Ok((h.clamp(cursor, src.len()), Tier::Exact)),
            None if src.is_empty() => Ok((0, Tier::Exact)),
            None => Err(PatchError::NoContext { hunk: number }),
        };
    }
    // A hunk that sits exactly where its header says needs no search.
    if let Some(h) = hint.filter(|&h| h >= cursor && matches_at(src, h, &old, Tier::Exact)) {
        return Ok((h, Tier::Exact));
    }
    for tier in [Tier::Exact, Tier::TrailingSpace, Tier::Indentation] {
        let mut found = (cursor..src.len()).filter(|&s| matches_at(src, s, &old, tier));
        match (found.next(), found.next()) {
            (Some(s), None) => return Ok((s, tier)),
            (Some(first), Some(second)) => {
                return Err(PatchError::Ambiguous {
                    hunk: number,
                    first: first + 1,
                    second: second + 1,
                });
            }
            _ => {}
        }
    }
    Err(not_found(src, &old, number))
}

/// How far a hunk was found from where its header put it. A header line number can be
/// anything a model wrote (up to `u64::MAX`), so the arithmetic saturates instead of overflowing.
fn drift_between(start: usize, hint: usize) -> isize {
    let start = isize::try_from(start).unwrap_or(isize::MAX);
    let hint = isize::try_from(hint).unwrap_or(isize::MAX);
    start.saturating_sub(hint)
}

fn matches_at(src: &[&str], start: usize, old: &[&str], tier: Tier) -> bool {
    // `checked_add`: `start` may come from a header near `usize::MAX`.
    start.checked_add(old.len()).is_some_and(|end| end <= src.len())
        && src[start..].iter().zip(old).all(|(f, p)| tier.same(f, p))
}

fn not_found(src: &[&str], old: &[&str], hunk: usize) -> PatchError {
    let mut lines: Vec<String> = old
        .iter()
        .take(MAX_QUOTED)
        .map(|l| format!("    {}", l.trim_end()))
        .collect();
    if old.len() > MAX_QUOTED {
        lines.push(format!("    ... ({} more lines)", old.len() - MAX_QUOTED));
    }
    let absent = old
        .iter()
        .find(|p| !p.trim().is_empty() && !src.iter().any(|f| Tier::Indentation.same(f, p)));
    let hint = match absent {
        Some(line) => format!("\nthe line `{}` does not occur in the file at all", line.trim()),
        None => "\nevery line exists in the file, but not consecutively in this order".to_string(),
    };
    PatchError::NotFound {
        hunk,
        lines: lines.join("\n"),
        hint,
    }
}

/// Produces the hunk's replacement text. Context lines are copied from the file so
/// its own whitespace survives; added lines are adapted to the file's line endings
/// and indentation when the hunk only matched loosely.
fn rewrite(hunk: &Hunk, matched: &[&str], tier: Tier) -> String {
    let indents = IndentMap::new(hunk, matched);
    let crlf = matched.first().is_some_and(|l| l.ends_with("\r\n"));
    let mut file_lines = matched.iter();
    let mut out = String::new();
    for line in &hunk.lines {
        match line.kind {
            LineKind::Context => out.push_str(file_lines.next().copied().unwrap_or(&line.text)),
            LineKind::Remove => {
                file_lines.next();
            }
            LineKind::Add if tier == Tier::Exact => out.push_str(&line.text),
            LineKind::Add => {
                let reindented = match tier {
                    Tier::Indentation => indents.apply(&line.text),
                    _ => line.text.clone(),
                };
                out.push_str(&with_line_ending(&reindented, crlf));
            }
        }
    }
    out
}

fn with_line_ending(line: &str, crlf: bool) -> String {
    let Some(body) = line.strip_suffix('\n') else {
        return line.to_string();
    };
    let body = body.strip_suffix('\r').unwrap_or(body);
    if crlf {
        format!("{body}\r\n")
    } else {
        format!("{body}\n")
    }
}

fn indent_of(line: &str) -> &str {
    &line[..line.len() - line.trim_start_matches([' ', '\t']).len()]
}

/// Maps the patch's indentation widths to the file's indentation strings, learned
/// from the context and removed lines that matched.
struct IndentMap {
    pairs: Vec<(usize, String)>,
}

impl IndentMap {
    fn new(hunk: &Hunk, matched: &[&str]) -> Self {
        let pairs = hunk
            .old_lines()
            .iter()
            .zip(matched)
            .filter(|(p, _)| !p.trim().is_empty())
            .map(|(p, f)| (indent_of(p).chars().count(), indent_of(f).to_string()))
            .collect();
        IndentMap { pairs }
    }

    /// Re-indents an added line: a width seen in the hunk maps to the file's indent
    /// for it; other widths scale by the ratio seen on the first indented line.
    fn apply(&self, line: &str) -> String {
        let own = indent_of(line);
        let width = own.chars().count();
        let rest = &line[own.len()..];
        if let Some((_, file)) = self.pairs.iter().find(|(w, _)| *w == width) {
            return format!("{file}{rest}");
        }
        match self.pairs.iter().find(|(w, f)| *w > 0 && !f.is_empty()) {
            Some((w, f)) => {
                let unit = f.chars().next().unwrap_or(' ');
                let scaled = width * f.chars().count() / w;
                format!("{}{rest}", unit.to_string().repeat(scaled))
            }
            None => line.to_string(),
        }
    }
}
