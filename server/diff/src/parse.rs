//! Unified-diff parsing. Strict mode follows the header counts exactly; tolerant mode
//! ignores counts and line numbers (models get them wrong) and finds hunk bodies by
//! their line prefixes instead.

use super::PatchError;
use super::hunk::{Hunk, HunkLine, LineKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Strict,
    Tolerant,
}

/// Parsed `@@ -a,b +c,d @@` header; any part may be missing in tolerant mode.
struct Header {
    old: (Option<usize>, Option<usize>),
    new: (Option<usize>, Option<usize>),
}

/// Parses every hunk of a single-file patch. File headers and other lines outside
/// hunks (`diff --git`, `index`, prose, code fences) are skipped.
/// An empty patch (what `make_patch` returns for equal texts) has no hunks and
/// changes nothing; any other text without hunks is an error.
pub(crate) fn parse_patch(patch: &str, mode: Mode) -> Result<Vec<Hunk>, PatchError> {
    if patch.trim().is_empty() {
        return Ok(Vec::new());
    }
    let mut lines: Vec<&str> = patch.split('\n').collect();
    if lines.last() == Some(&"") {
        lines.pop();
    }
    let mut hunks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !lines[i].starts_with("@@") {
            i += 1;
            continue;
        }
        let header = parse_header(lines[i], i + 1, mode)?;
        let (body, next) = match mode {
            Mode::Strict => strict_body(&lines, i + 1, &header, hunks.len() + 1)?,
            Mode::Tolerant => tolerant_body(&lines, i + 1)?,
        };
        hunks.push(Hunk {
            old_start: header.old.0,
            new_start: header.new.0,
            lines: body,
        });
        i = next;
    }
    if hunks.is_empty() {
        return Err(PatchError::NoHunks);
    }
    Ok(hunks)
}

fn parse_header(line: &str, number: usize, mode: Mode) -> Result<Header, PatchError> {
    let malformed = |message: &str| PatchError::Malformed {
        line: number,
        message: message.to_string(),
    };
    let inner = line.trim_end().trim_start_matches('@').trim_start();
    let inner = inner.split("@@").next().unwrap_or("").trim();
    let mut header = Header {
        old: (None, None),
        new: (None, None),
    };
    for part in inner.split_whitespace() {
        let (target, range) = match (part.strip_prefix('-'), part.strip_prefix('+')) {
            (Some(digits), _) => (&mut header.old, parse_range(digits)),
            (_, Some(digits)) => (&mut header.new, parse_range(digits)),
            _ => (&mut header.old, None),
        };
        match range {
            Some(range) => *target = range,
            // Models write placeholders such as `@@ ... @@`; numbers are only hints.
            None if mode == Mode::Tolerant => {}
            None => return Err(malformed("hunk header must look like `@@ -3,4 +3,5 @@`")),
        }
    }
    if mode == Mode::Strict && (header.old.0.is_none() || header.new.0.is_none()) {
        return Err(malformed("hunk header must give line numbers, e.g. `@@ -3,4 +3,5 @@`"));
    }
    Ok(header)
}

/// `start[,count]`; a missing count means 1, as in GNU diff.
fn parse_range(text: &str) -> Option<(Option<usize>, Option<usize>)> {
    let (start, count) = match text.split_once(',') {
        Some((s, c)) => (s, c.parse().ok()?),
        None => (text, 1),
    };
    Some((Some(start.parse().ok()?), Some(count)))
}

/// Reads exactly as many lines as the header counts announce.
fn strict_body(
    lines: &[&str],
    mut i: usize,
    header: &Header,
    hunk: usize,
) -> Result<(Vec<HunkLine>, usize), PatchError> {
    let (mut old_left, mut new_left) = (header.old.1.unwrap_or(1), header.new.1.unwrap_or(1));
    let mut body: Vec<HunkLine> = Vec::new();
    while old_left > 0 || new_left > 0 {
        let Some(raw) = lines.get(i) else {
            return Err(PatchError::Malformed {
                line: i,
                message: format!("hunk {hunk} ends early: its header announces more lines"),
            });
        };
        let line = body_line(raw).ok_or_else(|| PatchError::Malformed {
            line: i + 1,
            message: format!("hunk {hunk}: line must start with ' ', '-' or '+'"),
        })?;
        match line {
            Body::Line(l) => {
                old_left = old_left.saturating_sub(usize::from(l.kind != LineKind::Add));
                new_left = new_left.saturating_sub(usize::from(l.kind != LineKind::Remove));
                body.push(l);
            }
            Body::NoNewline => strip_newline(&mut body),
        }
        i += 1;
    }
    if lines.get(i).is_some_and(|l| l.starts_with('\\')) {
        strip_newline(&mut body);
        i += 1;
    }
    Ok((body, i))
}

/// Reads lines up to the next hunk, file header or code fence. Trailing lines without
/// a diff prefix are prose and dropped; unprefixed lines between prefixed ones are
/// context lines whose leading space the model forgot.
fn tolerant_body(lines: &[&str], start: usize) -> Result<(Vec<HunkLine>, usize), PatchError> {
    let mut end = start;
    while end < lines.len() && !ends_hunk(lines, end) {
        end += 1;
    }
    let mut last = end;
    while last > start && !has_prefix(lines[last - 1]) {
        last -= 1;
    }
    let mut body = Vec::new();
    for raw in &lines[start..last] {
        match body_line(raw) {
            Some(Body::Line(l)) => body.push(l),
            Some(Body::NoNewline) => strip_newline(&mut body),
            None => body.push(HunkLine {
                kind: LineKind::Context,
                text: format!("{raw}\n"),
            }),
        }
    }
    Ok((body, end))
}

fn ends_hunk(lines: &[&str], i: usize) -> bool {
    let line = lines[i];
    line.starts_with("@@")
        || line.starts_with("```")
        || line.starts_with("diff ")
        || (line.starts_with("--- ") && lines.get(i + 1).is_some_and(|n| n.starts_with("+++ ")))
}

fn has_prefix(line: &str) -> bool {
    matches!(line.chars().next(), Some(' ' | '-' | '+' | '\\'))
}

enum Body {
    Line(HunkLine),
    NoNewline,
}

/// Classifies a body line; an empty line is an empty context line whose leading
/// space was stripped by an editor.
fn body_line(raw: &str) -> Option<Body> {
    let kind = match raw.chars().next() {
        None => {
            return Some(Body::Line(HunkLine {
                kind: LineKind::Context,
                text: "\n".into(),
            }));
        }
        Some('\\') => return Some(Body::NoNewline),
        Some(' ') => LineKind::Context,
        Some('-') => LineKind::Remove,
        Some('+') => LineKind::Add,
        Some(_) => return None,
    };
    Some(Body::Line(HunkLine {
        kind,
        text: format!("{}\n", &raw[1..]),
    }))
}

fn strip_newline(body: &mut [HunkLine]) {
    if let Some(last) = body.last_mut()
        && last.text.ends_with('\n')
    {
        last.text.pop();
    }
}
