//! The parsed form of a unified-diff hunk.

/// What a hunk line does to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineKind {
    Context,
    Remove,
    Add,
}

/// One body line. `text` holds the line's content with its terminator, which is
/// absent only when the patch marked the line with `\ No newline at end of file`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HunkLine {
    pub kind: LineKind,
    pub text: String,
}

/// A hunk. Starts are the 1-based numbers from the `@@` header (for an empty side,
/// the line after which the change goes); tolerant parsing may leave them unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Hunk {
    pub old_start: Option<usize>,
    pub new_start: Option<usize>,
    pub lines: Vec<HunkLine>,
}

impl Hunk {
    /// Lines the hunk expects in the file: context and removed lines.
    pub fn old_lines(&self) -> Vec<&str> {
        self.side(LineKind::Remove)
    }

    /// Lines the hunk leaves in the file: context and added lines.
    pub fn new_lines(&self) -> Vec<&str> {
        self.side(LineKind::Add)
    }

    fn side(&self, changed: LineKind) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.kind == LineKind::Context || l.kind == changed)
            .map(|l| l.text.as_str())
            .collect()
    }

    /// 0-based index of the first old line, derived from the header.
    pub fn old_index(&self) -> Option<usize> {
        let start = self.old_start?;
        Some(if self.old_lines().is_empty() {
            start
        } else {
            start.saturating_sub(1)
        })
    }

    /// The hunk that undoes this one.
    pub fn reversed(&self) -> Hunk {
        let flip = |kind| match kind {
            LineKind::Add => LineKind::Remove,
            LineKind::Remove => LineKind::Add,
            LineKind::Context => LineKind::Context,
        };
        Hunk {
            old_start: self.new_start,
            new_start: self.old_start,
            lines: self
                .lines
                .iter()
                .map(|l| HunkLine {
                    kind: flip(l.kind),
                    text: l.text.clone(),
                })
                .collect(),
        }
    }
}
