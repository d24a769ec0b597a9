//! Making client-supplied file names safe to store.

/// The longest name we keep, in bytes; longer names are cut at a character boundary.
const MAX_NAME_BYTES: usize = 200;

/// Returns a safe file name: the last path segment, without control characters, `..`,
/// separators or leading dots, at most 200 bytes. Fails when nothing usable is left.
pub fn sanitize_filename(raw: &str) -> Result<String, String> {
    // Clients send paths ("C:\\docs\\a.pdf", "../../etc/passwd"): keep the last segment only.
    let last = raw.rsplit(['/', '\\']).next().unwrap_or(raw);
    // Control characters, and the bidirectional controls that make "exe.pdf" show as "fdp.exe".
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !is_bidi_control(*c))
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    let mut name = String::with_capacity(cleaned.len().min(MAX_NAME_BYTES));
    for c in cleaned.chars() {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        return Err(format!(
            "Invalid file name: {raw:?}. Use a plain name such as \"notes.txt\"."
        ));
    }
    Ok(name)
}

/// Unicode's explicit directional marks, embeddings, overrides and isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::sanitize_filename;

    #[test]
    fn strips_bidirectional_controls() {
        assert_eq!(sanitize_filename("invoice\u{202E}fdp.exe").unwrap(), "invoicefdp.exe");
        assert_eq!(sanitize_filename("\u{2067}a\u{2069}\u{200F}.txt").unwrap(), "a.txt");
        assert!(sanitize_filename("\u{202E}\u{202C}").is_err());
    }

    #[test]
    fn keeps_plain_names() {
        assert_eq!(sanitize_filename("notes v2.txt").unwrap(), "notes v2.txt");
        assert_eq!(sanitize_filename("日本語.based").unwrap(), "日本語.based");
    }

    #[test]
    fn strips_paths_and_traversal() {
        assert_eq!(sanitize_filename("../../etc/passwd").unwrap(), "passwd");
        assert_eq!(sanitize_filename("C:\\docs\\a.pdf").unwrap(), "a.pdf");
        assert_eq!(sanitize_filename("..\\..\\x").unwrap(), "x");
        assert_eq!(sanitize_filename(".hidden").unwrap(), "hidden");
        assert_eq!(sanitize_filename("a\u{0}b\nc.txt").unwrap(), "abc.txt");
    }

    #[test]
    fn refuses_empty_results() {
        for raw in ["", "..", "../", "/", "  ", "\u{7}", "a/.."] {
            assert!(sanitize_filename(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn caps_length_on_a_char_boundary() {
        let name = sanitize_filename(&"é".repeat(300)).unwrap();
        assert!(name.len() <= 200);
        assert!(name.chars().all(|c| c == 'é'));
    }
}
