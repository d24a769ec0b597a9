//! Deciding what an upload is and extracting the text the agent and clients read.

use super::extractor::ExtractFailure;
use crate::store::FileKind;

/// What an upload holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub kind: FileKind,
    /// The readable text: the file itself for text and `.based`, the text layer for PDFs.
    pub text: Option<String>,
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "bmp", "svg"];

fn extension(filename: &str) -> String {
    filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// A PDF, whose text only a child process may read (see `extractor`).
pub fn is_pdf(filename: &str) -> bool {
    extension(filename) == "pdf"
}

/// A PDF's text as the child read it; a failure is noted in the text, as the original did, so
/// that clients and the agent see why there is nothing.
pub fn pdf(filename: &str, text: Result<Option<String>, ExtractFailure>) -> Extracted {
    match text {
        Ok(Some(text)) => Extracted {
            kind: FileKind::Text,
            text: Some(text),
        },
        Ok(None) => Extracted {
            kind: FileKind::Binary,
            text: None,
        },
        Err(failure) => {
            tracing::warn!(filename, %failure, "could not read the text of an uploaded PDF");
            Extracted {
                kind: FileKind::Text,
                text: Some(format!("[The text of {filename} could not be read: {failure}.]")),
            }
        }
    }
}

/// Classifies an upload by name and content, in process. Never fails: unreadable files are
/// `Binary`. PDFs are read by [`pdf`] after a child process has extracted their text; here
/// they are `Binary`.
pub fn classify(filename: &str, bytes: &[u8]) -> Extracted {
    let extension = extension(filename);
    let text = || {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|t| !t.contains('\0'))
            .map(str::to_owned)
    };
    match extension.as_str() {
        "based" => match text() {
            Some(t) => Extracted {
                kind: FileKind::Based,
                text: Some(t),
            },
            None => Extracted {
                kind: FileKind::Binary,
                text: None,
            },
        },
        e if IMAGE_EXTENSIONS.contains(&e) => Extracted {
            kind: FileKind::Image,
            text: None,
        },
        "pdf" => Extracted {
            kind: FileKind::Binary,
            text: None,
        },
        _ => match text() {
            Some(t) => Extracted {
                kind: FileKind::Text,
                text: Some(t),
            },
            None => Extracted {
                kind: FileKind::Binary,
                text: None,
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_by_name_and_content() {
        assert_eq!(classify("a.based", b"say(\"hi\")").kind, FileKind::Based);
        assert_eq!(classify("a.PNG", b"\x89PNG").kind, FileKind::Image);
        assert_eq!(classify("a.txt", b"hello").text.as_deref(), Some("hello"));
        assert_eq!(classify("a.bin", &[0, 159, 146, 150]).kind, FileKind::Binary);
        assert_eq!(classify("broken.pdf", b"%PDF-1.4 garbage").kind, FileKind::Binary);
    }
}
