//! A unified diff, parsed into rows the diff pane draws: line numbers for the gutter, a kind
//! for the colour, and where each hunk starts for `[` / `]`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// `--- a` / `+++ b`: the file names.
    Header,
    /// `@@ -a,b +c,d @@`.
    Hunk,
    Context,
    Added,
    Removed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub kind: RowKind,
    pub old_line: Option<usize>,
    pub new_line: Option<usize>,
    /// The line without its `+`/`-`/` ` sign.
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedDiff {
    pub rows: Vec<Row>,
    /// Indices into `rows` of each `@@` row.
    pub hunk_starts: Vec<usize>,
    pub added: usize,
    pub removed: usize,
}

impl ParsedDiff {
    pub fn parse(diff: &str) -> Self {
        let mut parsed = ParsedDiff::default();
        let (mut old, mut new) = (0, 0);
        for line in diff.lines() {
            let row = if line.starts_with("--- ") || line.starts_with("+++ ") {
                Row::new(RowKind::Header, None, None, line)
            } else if let Some((old_start, new_start)) = hunk_starts(line) {
                (old, new) = (old_start, new_start);
                parsed.hunk_starts.push(parsed.rows.len());
                Row::new(RowKind::Hunk, None, None, line)
            } else if let Some(text) = line.strip_prefix('+') {
                parsed.added += 1;
                new += 1;
                Row::new(RowKind::Added, None, Some(new - 1), text)
            } else if let Some(text) = line.strip_prefix('-') {
                parsed.removed += 1;
                old += 1;
                Row::new(RowKind::Removed, Some(old - 1), None, text)
            } else if line.starts_with('\\') {
                // "\ No newline at end of file": not a line of either version.
                continue;
            } else {
                let text = line.strip_prefix(' ').unwrap_or(line);
                (old, new) = (old + 1, new + 1);
                Row::new(RowKind::Context, Some(old - 1), Some(new - 1), text)
            };
            parsed.rows.push(row);
        }
        parsed
    }

    /// The widest line number, for sizing the gutter.
    pub fn max_line_number(&self) -> usize {
        self.rows
            .iter()
            .flat_map(|row| [row.old_line, row.new_line])
            .flatten()
            .max()
            .unwrap_or(0)
    }

    /// The first hunk starting after row `from`, or the last one if there is none.
    pub fn next_hunk(&self, from: usize) -> Option<usize> {
        self.hunk_starts
            .iter()
            .copied()
            .find(|&start| start > from)
            .or_else(|| self.hunk_starts.last().copied())
    }

    /// The last hunk starting before row `from`, or the first one.
    pub fn previous_hunk(&self, from: usize) -> Option<usize> {
        self.hunk_starts
            .iter()
            .rev()
            .copied()
            .find(|&start| start < from)
            .or_else(|| self.hunk_starts.first().copied())
    }
}

impl Row {
    fn new(kind: RowKind, old_line: Option<usize>, new_line: Option<usize>, text: &str) -> Self {
        Row {
            kind,
            old_line,
            new_line,
            text: text.to_owned(),
        }
    }
}

/// `@@ -3,4 +3,5 @@` → `(3, 3)`.
fn hunk_starts(line: &str) -> Option<(usize, usize)> {
    let ranges = line.strip_prefix("@@ ")?.split(" @@").next()?;
    let mut parts = ranges.split(' ');
    let old = parts.next()?.strip_prefix('-')?;
    let new = parts.next()?.strip_prefix('+')?;
    let start = |range: &str| range.split(',').next()?.parse::<usize>().ok();
    Some((start(old)?, start(new)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIFF: &str = "--- a.based\n+++ a.based\n@@ -1,3 +1,3 @@\n loop:\n-    x = talk(\"a\")\n+    x = talk(\"b\")\n until \"x\":\n@@ -10,2 +10,3 @@\n say(1)\n+say(2)\n say(3)\n";

    #[test]
    fn rows_carry_line_numbers_and_counts() {
        let diff = ParsedDiff::parse(DIFF);
        assert_eq!((diff.added, diff.removed), (2, 1));
        assert_eq!(diff.hunk_starts, [2, 7]);
        let removed = &diff.rows[4];
        assert_eq!(
            (removed.kind, removed.old_line, removed.new_line),
            (RowKind::Removed, Some(2), None)
        );
        let added = &diff.rows[5];
        assert_eq!(
            (added.kind, added.new_line, added.text.as_str()),
            (RowKind::Added, Some(2), "    x = talk(\"b\")")
        );
        let last = diff.rows.last().unwrap();
        assert_eq!((last.old_line, last.new_line), (Some(11), Some(12)));
        assert_eq!(diff.max_line_number(), 12);
    }

    #[test]
    fn hunk_jumps_stop_at_the_ends() {
        let diff = ParsedDiff::parse(DIFF);
        assert_eq!(diff.next_hunk(0), Some(2));
        assert_eq!(diff.next_hunk(2), Some(7));
        assert_eq!(diff.next_hunk(7), Some(7));
        assert_eq!(diff.previous_hunk(7), Some(2));
        assert_eq!(diff.previous_hunk(2), Some(2));
        assert_eq!(ParsedDiff::parse("").next_hunk(0), None);
    }
}
