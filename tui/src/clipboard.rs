//! OSC 52: the terminal itself puts the text on the system clipboard, so copying works over
//! SSH and inside tmux (with `set-clipboard on`) without a clipboard library or a display.

use base64::Engine;

/// The escape sequence that asks the terminal to set the clipboard (`c`) to `text`.
pub fn osc52(text: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    format!("\x1b]52;c;{encoded}\x07")
}

/// The text an OSC 52 sequence carries, for tests and for anyone checking what was sent.
pub fn decode_osc52(sequence: &str) -> Option<String> {
    let encoded = sequence.strip_prefix("\x1b]52;c;")?.strip_suffix('\x07')?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn osc52_round_trips_any_text() {
        let text = "say(\"日本\")\n\ttab\n";
        let sequence = osc52(text);
        assert!(sequence.starts_with("\x1b]52;c;") && sequence.ends_with('\x07'));
        assert!(!sequence[1..].contains('\x1b'), "one sequence, no stray escapes");
        assert_eq!(decode_osc52(&sequence).as_deref(), Some(text));
    }
}
