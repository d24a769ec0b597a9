//! Deciding what an upload is and extracting the text the agent and clients read.

use crate::store::FileKind;

/// What an upload holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted {
    pub kind: FileKind,
    /// The readable text: the file itself for text and `.based`, the text layer for PDFs.
    pub text: Option<String>,
}

const IMAGE_EXTENSIONS: &[&str] = &["png", "jpg", "jpeg", "gif", "webp", "bmp", "svg"];

/// Classifies an upload by name and content. Never fails: unreadable files are `Binary`.
pub fn classify(filename: &str, bytes: &[u8]) -> Extracted {
    let extension = filename
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
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
        "pdf" => match pdf_text(bytes) {
            Some(t) => Extracted {
                kind: FileKind::Text,
                text: Some(t),
            },
            None => Extracted {
                kind: FileKind::Binary,
                text: None,
            },
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

/// The text layer of a PDF. The parser has panicked on malformed files in the past, so a
/// panic is caught and treated as "no text".
fn pdf_text(bytes: &[u8]) -> Option<String> {
    std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem(bytes).ok())
        .ok()
        .flatten()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
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
