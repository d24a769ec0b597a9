//! Golden JSON files whose IDs and timestamps vary from run to run.
//!
//! [`normalize`] replaces every UUID (also inside longer strings such as paths and diffs)
//! with `<id-N>`, numbered by first appearance, and every ISO-8601 timestamp with
//! `<timestamp>`, so two runs of the same scenario give the same JSON.

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

/// Compares `actual` (normalized) with the golden file; `UPDATE_GOLDEN=1` rewrites the file.
pub fn assert_golden(path: &Path, actual: &Value) {
    let actual = normalize(actual);
    let pretty = serde_json::to_string_pretty(&actual).expect("serializable") + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &pretty).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(path)
        .unwrap_or_else(|_| panic!("missing golden file {}; run with UPDATE_GOLDEN=1", path.display()));
    let expected: Value = serde_json::from_str(&expected).expect("golden file is JSON");
    assert_eq!(actual, expected, "differs from {}:\n{pretty}", path.display());
}

pub fn normalize(value: &Value) -> Value {
    let mut ids = HashMap::new();
    normalize_with(value, &mut ids)
}

fn normalize_with(value: &Value, ids: &mut HashMap<String, usize>) -> Value {
    match value {
        Value::String(s) => Value::String(normalize_str(s, ids)),
        Value::Array(items) => Value::Array(items.iter().map(|v| normalize_with(v, ids)).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize_with(v, ids))).collect()),
        other => other.clone(),
    }
}

fn normalize_str(s: &str, ids: &mut HashMap<String, usize>) -> String {
    if is_timestamp(s) {
        return "<timestamp>".into();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while !rest.is_empty() {
        if rest.len() >= 36 && rest.is_char_boundary(36) && is_uuid(&rest[..36]) {
            let next = ids.len() + 1;
            let n = *ids.entry(rest[..36].to_owned()).or_insert(next);
            out.push_str(&format!("<id-{n}>"));
            rest = &rest[36..];
        } else {
            let c = rest.chars().next().expect("non-empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// `2025-03-20T11:00:00.123456` (fraction optional).
fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b'T'
        && b[13] == b':'
        && b[16] == b':'
        && s[..4].bytes().all(|c| c.is_ascii_digit())
        && s[19..].bytes().all(|c| c.is_ascii_digit() || c == b'.' || c == b'Z')
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::normalize;

    #[test]
    fn replaces_ids_and_times_consistently() {
        let a = "123e4567-e89b-12d3-a456-426614174000";
        let b = "223e4567-e89b-12d3-a456-426614174000";
        let value =
            json!({"x": a, "y": format!("uploads/files/{b}_f.txt"), "z": [a], "t": "2025-03-20T11:00:00.123456"});
        assert_eq!(
            normalize(&value),
            json!({"x": "<id-1>", "y": "uploads/files/<id-2>_f.txt", "z": ["<id-1>"], "t": "<timestamp>"})
        );
    }
}
