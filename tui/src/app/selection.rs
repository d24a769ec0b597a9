//! A line selection in the code pane (the file, or the diff in the versions view): `V`
//! anchors it on the top line shown, moves stretch it, `y` copies exactly its lines.

use std::ops::RangeInclusive;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineSelection {
    /// Where `V` started it.
    pub anchor: usize,
    /// The end that moves.
    pub head: usize,
}

impl LineSelection {
    pub fn at(line: usize) -> Self {
        LineSelection {
            anchor: line,
            head: line,
        }
    }

    /// The selected line indices, whichever way the selection was stretched.
    pub fn range(&self) -> RangeInclusive<usize> {
        self.anchor.min(self.head)..=self.anchor.max(self.head)
    }

    pub fn contains(&self, line: usize) -> bool {
        self.range().contains(&line)
    }

    pub fn line_count(&self) -> usize {
        self.anchor.abs_diff(self.head) + 1
    }

    /// Moves the head by `lines_down` (negative: up), within `count` lines.
    pub fn stretch(&mut self, lines_down: isize, count: usize) {
        let moved = self.head.saturating_add_signed(lines_down);
        self.head = moved.min(count.saturating_sub(1));
    }

    /// The selected lines, each ending in a newline so they paste as whole lines. Lines past
    /// the end (the text shrank since) are left out.
    pub fn extract<'a>(&self, lines: impl Iterator<Item = &'a str>) -> String {
        let range = self.range();
        lines
            .skip(*range.start())
            .take(self.line_count())
            .map(|line| format!("{line}\n"))
            .collect()
    }

    /// How the pane's title names it: `lines 3–7`, `row 4`.
    pub fn label(&self, noun: &str) -> String {
        let range = self.range();
        if range.start() == range.end() {
            format!("{noun} {}", range.start() + 1)
        } else {
            format!("{noun}s {}–{}", range.start() + 1, range.end() + 1)
        }
    }
}

/// The first line to show so that `line` is inside a window of `rows` lines that starts as
/// close to `top` as possible.
pub fn keep_visible(top: usize, line: usize, rows: usize) -> usize {
    let rows = rows.max(1);
    if line < top {
        line
    } else if line >= top + rows {
        line + 1 - rows
    } else {
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_selection_stretches_both_ways_within_the_text() {
        let mut selection = LineSelection::at(3);
        selection.stretch(2, 10);
        assert_eq!(selection.range(), 3..=5);
        selection.stretch(-4, 10);
        assert_eq!((selection.range(), selection.line_count()), (1..=3, 3));
        selection.stretch(-9, 10);
        assert_eq!(selection.range(), 0..=3);
        selection.stretch(100, 10);
        assert_eq!(selection.range(), 3..=9);
    }

    #[test]
    fn extracting_takes_exactly_the_selected_lines() {
        let text = "a\nb\nc\nd\n";
        let mut selection = LineSelection::at(1);
        selection.stretch(1, 4);
        assert_eq!(selection.extract(text.lines()), "b\nc\n");
        assert_eq!(LineSelection::at(7).extract(text.lines()), "", "past the end");
        assert_eq!(selection.label("line"), "lines 2–3");
        assert_eq!(LineSelection::at(0).label("row"), "row 1");
    }

    #[test]
    fn the_moving_end_stays_in_view() {
        assert_eq!(keep_visible(10, 12, 5), 10);
        assert_eq!(keep_visible(10, 15, 5), 11);
        assert_eq!(keep_visible(10, 4, 5), 4);
        assert_eq!(keep_visible(0, 3, 0), 3, "a zero-height pane still follows");
    }
}
