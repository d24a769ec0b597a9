//! Unified-diff engine: produce patches with [`make_patch`], apply them strictly
//! ([`apply_patch`], [`apply_patch_reverse`]) or tolerantly ([`apply_tolerant`]) for
//! diffs written by language models.
//!
//! Lines are kept byte-for-byte, including `\r\n` endings, so CRLF files survive a
//! make/apply round trip. A line without a final newline is marked with
//! `\ No newline at end of file`, as GNU diff does.

mod apply;
mod error;
mod hunk;
mod make;
mod parse;
mod tolerant;

pub use apply::{apply_patch, apply_patch_reverse};
pub use error::PatchError;
pub use make::make_patch;
pub use tolerant::apply_tolerant;

/// Splits text into lines that keep their terminators; the last line may lack one.
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}
