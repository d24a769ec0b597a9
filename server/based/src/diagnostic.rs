//! Diagnostics, source positions and their rendering for people and for models.

/// A 1-based source position; `col` counts characters, not bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: usize,
    pub col: usize,
}

/// A source range; `end` points just past the last character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    pub start: Pos,
    pub end: Pos,
}

impl Span {
    pub fn new(start: Pos, end: Pos) -> Self {
        Span { start, end }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            start: self.start,
            end: other.end,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(&self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding. Lines and columns are 1-based, columns count characters, and
/// `end_column` is one past the last character of the span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub code: String,
    pub message: String,
    pub line: usize,
    pub column: usize,
    pub end_line: usize,
    pub end_column: usize,
}

impl Diagnostic {
    pub(crate) fn new(severity: Severity, code: &str, message: impl Into<String>, span: Span) -> Self {
        let end = if span.end > span.start {
            span.end
        } else {
            Pos {
                line: span.start.line,
                col: span.start.col + 1,
            }
        };
        Diagnostic {
            severity,
            code: code.to_string(),
            message: message.into(),
            line: span.start.line,
            column: span.start.col,
            end_line: end.line,
            end_column: end.col,
        }
    }

    pub(crate) fn error(code: &str, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Error, code, message, span)
    }

    pub(crate) fn warning(code: &str, message: impl Into<String>, span: Span) -> Self {
        Self::new(Severity::Warning, code, message, span)
    }

    pub(crate) fn start(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.column,
        }
    }
}

/// The text of 1-based line `line`, without its terminator ("" past the end).
fn source_line(source: &str, line: usize) -> &str {
    let text = source.split('\n').nth(line.saturating_sub(1)).unwrap_or("");
    text.strip_suffix('\r').unwrap_or(text)
}

/// `PATH:LINE:COL: severity[CODE]: message` and the source line with a caret
/// underline. Spans running over several lines are underlined to the line's end.
pub fn render(path: &str, source: &str, d: &Diagnostic) -> String {
    let text = source_line(source, d.line);
    let gutter = d.line.to_string();
    let pad = " ".repeat(gutter.len());
    let line_chars = text.chars().count();
    let end = if d.end_line == d.line {
        d.end_column
    } else {
        line_chars + 1
    };
    let width = end.saturating_sub(d.column).max(1);
    // Tabs are echoed in the caret line so the caret stays aligned in terminals.
    let lead: String = text
        .chars()
        .chain(std::iter::repeat(' '))
        .take(d.column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    format!(
        "{path}:{}:{}: {}[{}]: {}\n{pad} |\n{gutter} | {text}\n{pad} | {lead}{}\n",
        d.line,
        d.column,
        d.severity.as_str(),
        d.code,
        d.message,
        "^".repeat(width)
    )
}

/// One line for a model: `line L, column C: message` and the offending line quoted.
pub fn describe_for_model(source: &str, d: &Diagnostic) -> String {
    let text = source_line(source, d.line).trim_end();
    format!(
        "line {}, column {}: {} (the line is: `{}`)",
        d.line, d.column, d.message, text
    )
}
