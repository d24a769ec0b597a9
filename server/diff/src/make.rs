//! Patch generation on top of the `similar` crate's line diff.

use similar::{Algorithm, DiffOp, DiffTag, capture_diff_slices, group_diff_ops};

use super::split_lines;

/// Lines of unchanged context around each change, as in `diff -u`.
const CONTEXT: usize = 3;

/// Builds a unified diff turning `old` into `new`; returns "" when they are equal.
pub fn make_patch(old: &str, new: &str, old_name: &str, new_name: &str) -> String {
    if old == new {
        return String::new();
    }
    let a = split_lines(old);
    let b = split_lines(new);
    let ops = capture_diff_slices(Algorithm::Myers, &a, &b);
    let mut out = format!("--- {old_name}\n+++ {new_name}\n");
    for group in group_diff_ops(ops, CONTEXT) {
        write_hunk(&mut out, &group, &a, &b);
    }
    out
}

fn write_hunk(out: &mut String, group: &[DiffOp], a: &[&str], b: &[&str]) {
    let (Some(first), Some(last)) = (group.first(), group.last()) else {
        return;
    };
    let old = first.old_range().start..last.old_range().end;
    let new = first.new_range().start..last.new_range().end;
    out.push_str(&format!(
        "@@ -{} +{} @@\n",
        header_range(old.start, old.len()),
        header_range(new.start, new.len())
    ));
    for op in group {
        let (tag, old_r, new_r) = op.as_tag_tuple();
        match tag {
            DiffTag::Equal => write_lines(out, ' ', &a[old_r]),
            DiffTag::Delete => write_lines(out, '-', &a[old_r]),
            DiffTag::Insert => write_lines(out, '+', &b[new_r]),
            DiffTag::Replace => {
                write_lines(out, '-', &a[old_r]);
                write_lines(out, '+', &b[new_r]);
            }
        }
    }
}

/// `start,count` with a 1-based start; an empty range names the line before it.
fn header_range(start: usize, len: usize) -> String {
    if len == 0 {
        format!("{start},0")
    } else {
        format!("{},{len}", start + 1)
    }
}

fn write_lines(out: &mut String, prefix: char, lines: &[&str]) {
    for line in lines {
        out.push(prefix);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}
