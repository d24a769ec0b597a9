//! Errors reported when a patch cannot be parsed or applied. The messages are shown
//! to users and fed back to the model, so they name the hunk and quote the lines.

/// Why a patch could not be applied. Hunks and lines are numbered from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    #[error("patch line {line}: {message}")]
    Malformed { line: usize, message: String },
    #[error("the patch contains no hunks (no line starting with `@@`)")]
    NoHunks,
    #[error("hunk {hunk} does not apply at line {line}: expected {expected:?}, found {found:?}")]
    Mismatch {
        hunk: usize,
        line: usize,
        expected: String,
        found: String,
    },
    #[error("hunk {hunk} starts at line {line}, which overlaps the previous hunk or lies past the end of the file")]
    OutOfRange { hunk: usize, line: usize },
    #[error("hunk {hunk}: could not find these lines in the file:\n{lines}{hint}")]
    NotFound { hunk: usize, lines: String, hint: String },
    #[error(
        "hunk {hunk} is ambiguous: matches at lines {first} and {second}; add more unchanged context lines so that it matches only once"
    )]
    Ambiguous { hunk: usize, first: usize, second: usize },
    #[error(
        "hunk {hunk} has neither context nor removed lines, so its position is unknown; include a few unchanged lines around the change"
    )]
    NoContext { hunk: usize },
}
