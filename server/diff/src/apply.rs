//! Strict application: every hunk must sit exactly where its header says.

use super::hunk::Hunk;
use super::parse::{Mode, parse_patch};
use super::{PatchError, split_lines};

/// Applies `patch` to `text`; line numbers and context must match exactly.
pub fn apply_patch(text: &str, patch: &str) -> Result<String, PatchError> {
    let hunks = parse_patch(patch, Mode::Strict)?;
    apply_strict(text, &hunks)
}

/// Undoes `patch`: turns the patched text back into the original.
pub fn apply_patch_reverse(text: &str, patch: &str) -> Result<String, PatchError> {
    let hunks: Vec<Hunk> = parse_patch(patch, Mode::Strict)?.iter().map(Hunk::reversed).collect();
    apply_strict(text, &hunks)
}

fn apply_strict(text: &str, hunks: &[Hunk]) -> Result<String, PatchError> {
    let src = split_lines(text);
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0;
    for (n, hunk) in hunks.iter().enumerate() {
        let number = n + 1;
        let start = hunk.old_index().ok_or(PatchError::NoContext { hunk: number })?;
        let old = hunk.old_lines();
        // `checked_add`: a header's line number can be anything up to `u64::MAX`.
        let in_range = start.checked_add(old.len()).is_some_and(|end| end <= src.len());
        if start < cursor || !in_range {
            return Err(PatchError::OutOfRange {
                hunk: number,
                line: start.saturating_add(1),
            });
        }
        check_lines(&src[start..start + old.len()], &old, number, start)?;
        out.extend(src[cursor..start].iter().copied());
        out.extend(hunk.new_lines());
        cursor = start + old.len();
    }
    out.extend(src[cursor..].iter().copied());
    Ok(out)
}

fn check_lines(found: &[&str], expected: &[&str], hunk: usize, start: usize) -> Result<(), PatchError> {
    match found.iter().zip(expected).position(|(f, e)| f != e) {
        None => Ok(()),
        Some(k) => Err(PatchError::Mismatch {
            hunk,
            line: start + k + 1,
            expected: expected[k].to_string(),
            found: found[k].to_string(),
        }),
    }
}
