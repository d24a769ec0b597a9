//! Diff engine tests: exact output format, strict and reverse application, the
//! tolerant applier on sloppy model-written diffs, and round-trip properties.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a test: a panic is the failure report"
)]

use kafka_server::diff::{PatchError, apply_patch, apply_patch_reverse, apply_tolerant, make_patch};
use proptest::prelude::*;

fn numbered(n: usize) -> String {
    (1..=n).map(|i| format!("line {i}\n")).collect()
}

#[test]
fn make_patch_matches_diff_u() {
    let old = "a\nb\nc\nd\ne\nf\ng\nh\n";
    let new = "a\nb\nc\nD\ne\nf\ng\nh\ni\n";
    let expected = "--- old.based\n+++ new.based\n@@ -1,8 +1,9 @@\n a\n b\n c\n-d\n+D\n e\n f\n g\n h\n+i\n";
    assert_eq!(make_patch(old, new, "old.based", "new.based"), expected);
    assert_eq!(make_patch(old, old, "a", "b"), "");
}

#[test]
fn separate_hunks_and_headers() {
    let old = numbered(20);
    let new = old.replace("line 2\n", "line two\n").replace("line 18\n", "");
    let patch = make_patch(&old, &new, "a", "b");
    assert!(patch.contains("@@ -1,5 +1,5 @@\n"), "{patch}");
    assert!(patch.contains("@@ -15,6 +15,5 @@\n"), "{patch}");
    assert_eq!(apply_patch(&old, &patch).unwrap(), new);
}

#[test]
fn no_newline_at_end_of_file() {
    let patch = make_patch("a\nb", "a\nc", "x", "y");
    assert_eq!(
        patch,
        "--- x\n+++ y\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+c\n\\ No newline at end of file\n"
    );
    let patch = make_patch("a\n", "a", "x", "y");
    assert_eq!(
        patch,
        "--- x\n+++ y\n@@ -1,1 +1,1 @@\n-a\n+a\n\\ No newline at end of file\n"
    );
    assert_eq!(apply_patch("a\n", &patch).unwrap(), "a");
    assert_eq!(apply_patch_reverse("a", &patch).unwrap(), "a\n");
}

#[test]
fn empty_files() {
    let patch = make_patch("", "x\n", "a", "b");
    assert_eq!(patch, "--- a\n+++ b\n@@ -0,0 +1,1 @@\n+x\n");
    assert_eq!(apply_patch("", &patch).unwrap(), "x\n");
    assert_eq!(apply_patch_reverse("x\n", &patch).unwrap(), "");
    assert_eq!(apply_tolerant("", &patch).unwrap(), "x\n");
}

#[test]
fn strict_apply_refuses_moved_context() {
    let old = numbered(10);
    let new = old.replace("line 5\n", "five\n");
    let patch = make_patch(&old, &new, "a", "b");
    let shifted = format!("extra\n{old}");
    let err = apply_patch(&shifted, &patch).unwrap_err();
    assert!(matches!(err, PatchError::Mismatch { hunk: 1, line: 2, .. }), "{err}");
    assert!(err.to_string().starts_with("hunk 1 does not apply at line 2"));
    assert_eq!(apply_tolerant(&shifted, &patch).unwrap(), format!("extra\n{new}"));
}

#[test]
fn strict_accepts_counts_of_one_omitted() {
    assert_eq!(apply_patch("a\nb\nc\n", "@@ -2 +2 @@\n-b\n+B\n").unwrap(), "a\nB\nc\n");
}

#[test]
fn tolerant_ignores_wrong_line_numbers_both_ways() {
    let old = numbered(40);
    let new = old.replace("line 10\n", "ten\n").replace("line 30\n", "thirty\n");
    let patch = make_patch(&old, &new, "a", "b");
    for delta in [-6i64, -1, 1, 7, 25] {
        let skewed = skew_headers(&patch, delta);
        assert_eq!(apply_tolerant(&old, &skewed).unwrap(), new, "delta {delta}:\n{skewed}");
    }
    // Real drift: lines inserted above and between the hunks.
    let drifted_old = format!("x\ny\n{}", old.replace("line 20\n", "line 20\nz\nz\nz\n"));
    let drifted_new = format!("x\ny\n{}", new.replace("line 20\n", "line 20\nz\nz\nz\n"));
    assert_eq!(apply_tolerant(&drifted_old, &patch).unwrap(), drifted_new);
}

fn skew_headers(patch: &str, delta: i64) -> String {
    patch
        .lines()
        .map(|l| match l.strip_prefix("@@ -") {
            Some(rest) => {
                let nums: Vec<i64> = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse().unwrap())
                    .collect();
                format!(
                    "@@ -{},{} +{},{} @@",
                    (nums[0] + delta).max(1),
                    nums[1],
                    (nums[2] + delta).max(1),
                    nums[3]
                )
            }
            None => l.to_string(),
        })
        .map(|l| l + "\n")
        .collect()
}

#[test]
fn tolerant_accepts_missing_headers_counts_and_final_newline() {
    let text = "def f():\n    a = 1\n    b = 2\n    return a\n";
    let want = "def f():\n    a = 1\n    c = 3\n    b = 2\n    return a\n";
    for patch in [
        "@@ -2,2 +2,3 @@\n     a = 1\n+    c = 3\n     b = 2\n",
        "@@ -2 +2 @@\n     a = 1\n+    c = 3\n     b = 2",
        "@@\n     a = 1\n+    c = 3\n     b = 2\n",
        "```diff\n--- a/f.based\n+++ b/f.based\n@@ ... @@\n     a = 1\n+    c = 3\n     b = 2\n```\nThat adds c.\n",
    ] {
        assert_eq!(apply_tolerant(text, patch).unwrap(), want, "patch:\n{patch}");
    }
}

#[test]
fn tolerant_handles_trailing_whitespace_crlf_and_reindented_context() {
    // Context with stray trailing spaces, and a CRLF patch for an LF file.
    let text = "a\nb\nc\n";
    assert_eq!(apply_tolerant(text, "@@\n a  \n-b\n+B\n c\n").unwrap(), "a\nB\nc\n");
    assert_eq!(
        apply_tolerant(text, "@@\r\n a\r\n-b\r\n+B\r\n c\r\n").unwrap(),
        "a\nB\nc\n"
    );
    // A CRLF file keeps CRLF on added lines.
    assert_eq!(
        apply_tolerant("a\r\nb\r\n", "@@\n a\n+x\n b\n").unwrap(),
        "a\r\nx\r\nb\r\n"
    );
    // Context written with 2-space indentation applied to a 4-space file.
    let file = "def f():\n    if x:\n        a = 1\n        b = 2\n    return a\n";
    let patch = "@@ -1,4 +1,5 @@\n   if x:\n     a = 1\n+    c = 3\n     b = 2\n";
    assert_eq!(
        apply_tolerant(file, patch).unwrap(),
        "def f():\n    if x:\n        a = 1\n        c = 3\n        b = 2\n    return a\n"
    );
}

#[test]
fn tolerant_refuses_ambiguous_and_missing_hunks() {
    let text = "start\nx = 1\ny = 2\nmiddle\nx = 1\ny = 2\nend\n";
    let patch = "@@ -1,1 +1,1 @@\n-start\n+begin\n@@ -40,2 +40,3 @@\n x = 1\n+z = 3\n y = 2\n";
    let err = apply_tolerant(text, patch).unwrap_err();
    assert_eq!(
        err,
        PatchError::Ambiguous {
            hunk: 2,
            first: 2,
            second: 5
        }
    );
    assert!(
        err.to_string()
            .contains("hunk 2 is ambiguous: matches at lines 2 and 5"),
        "{err}"
    );

    let err = apply_tolerant(text, "@@\n x = 1\n-w = 9\n+w = 10\n").unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with("hunk 1: could not find these lines in the file:\n    x = 1\n    w = 9"),
        "{message}"
    );
    assert!(message.contains("`w = 9` does not occur"), "{message}");
    assert_eq!(apply_tolerant(text, "no diff here"), Err(PatchError::NoHunks));
}

/// Texts built from few distinct lines (so diffs share context), with unicode,
/// CRLF and LF mixed, empty texts and a missing final newline.
fn text() -> impl Strategy<Value = String> {
    let line = prop::sample::select(vec!["a", "b", "c", "", "  é日本", "\tx = 1", "🎉 ok", "a\r", " "]);
    let ending = prop::sample::select(vec!["\n", "\n", "\r\n"]);
    (prop::collection::vec((line, ending), 0..25), any::<bool>()).prop_map(|(lines, trailing)| {
        let mut s: String = lines.iter().map(|(l, e)| format!("{l}{e}")).collect();
        if !trailing && s.ends_with('\n') {
            s.pop();
        }
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn apply_of_make_gives_new_and_reverse_gives_old(old in text(), new in text()) {
        let patch = make_patch(&old, &new, "a", "b");
        prop_assert_eq!(apply_patch(&old, &patch).unwrap_or_else(|e| panic!("{e}\n{patch}")), new.clone());
        if !patch.is_empty() {
            prop_assert_eq!(apply_patch_reverse(&new, &patch).unwrap(), old.clone());
        }
    }

    #[test]
    fn tolerant_apply_of_exact_patch_gives_new(old in text(), new in text()) {
        let patch = make_patch(&old, &new, "a", "b");
        if !patch.is_empty() {
            prop_assert_eq!(apply_tolerant(&old, &patch).unwrap(), new);
        }
    }

    #[test]
    fn tolerant_apply_never_panics(text in text(), patch in "(@@[ -+0-9,é]*\n|[ +\\-\\\\]?[abc ]{0,3}\r?\n|--- a\n\\+\\+\\+ b\n){0,12}") {
        let _ = apply_tolerant(&text, &patch);
        let _ = apply_patch(&text, &patch);
        let _ = apply_patch_reverse(&text, &patch);
    }
}
