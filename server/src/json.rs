//! Limits on untrusted JSON. Size is capped where bodies and frames are read; nesting depth is
//! capped here, by a linear scan before parsing, so no client can make a parser (ours, or one
//! in a client we forward to) recurse deeply — and ignored fields get no free pass.

/// Deepest nesting of arrays and objects accepted; real requests use 3 or 4 levels.
pub const MAX_DEPTH: usize = 64;

/// `Err` with a message for the client when `text` nests deeper than [`MAX_DEPTH`].
/// Brackets inside strings do not count.
pub fn check_depth(text: &[u8]) -> Result<(), String> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in text {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("JSON is nested too deeply (the limit is {MAX_DEPTH} levels)."));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_is_counted_outside_strings_only() {
        assert!(check_depth(br#"{"a": [1, {"b": 2}]}"#).is_ok());
        let deep = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert!(check_depth(deep.as_bytes()).is_err());
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(check_depth(at_limit.as_bytes()).is_ok());
        let in_string = format!(r#"{{"code": "{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
        assert!(check_depth(in_string.as_bytes()).is_ok());
        // Siblings do not add up.
        assert!(check_depth("[[]]".repeat(1000).as_bytes()).is_ok());
    }
}
