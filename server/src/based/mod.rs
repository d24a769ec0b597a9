//! SCRATCH STAND-IN for the real Based validator (built elsewhere with the same API).
//! It knows only two rules, enough to drive the agent's fix loop in tests:
//! R6 (`while` is not allowed) and R1 (a `loop:` body holds exactly one statement).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

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

pub fn validate(source: &str) -> Vec<Diagnostic> {
    let lines: Vec<&str> = source.lines().collect();
    let mut diags = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let column = line.len() - trimmed.len() + 1;
        if trimmed.starts_with("while ") || trimmed.starts_with("while(") {
            diags.push(error(
                "R6",
                "`while` loops are not allowed; use `loop:` / `until`",
                index + 1,
                column,
                line.len() + 1,
            ));
        }
        if trimmed.trim_end() == "loop:"
            && let Some(extra) = second_body_statement(&lines, index, column - 1)
        {
            let extra_column = lines[extra].len() - lines[extra].trim_start().len() + 1;
            diags.push(error(
                "R1",
                "a `loop:` body holds exactly one `talk(...)` statement",
                extra + 1,
                extra_column,
                lines[extra].len() + 1,
            ));
        }
    }
    diags
}

/// Index of the second statement line indented under the `loop:` at `loop_index`, if any.
fn second_body_statement(lines: &[&str], loop_index: usize, loop_indent: usize) -> Option<usize> {
    lines
        .iter()
        .enumerate()
        .skip(loop_index + 1)
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .take_while(|(_, l)| l.len() - l.trim_start().len() > loop_indent)
        .nth(1)
        .map(|(i, _)| i)
}

fn error(code: &str, message: &str, line: usize, column: usize, end_column: usize) -> Diagnostic {
    Diagnostic {
        severity: Severity::Error,
        code: code.to_string(),
        message: message.to_string(),
        line,
        column,
        end_line: line,
        end_column,
    }
}

pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}

pub fn describe_for_model(source: &str, d: &Diagnostic) -> String {
    let text = source.lines().nth(d.line.saturating_sub(1)).unwrap_or("");
    format!(
        "line {}, column {}: {} [{}]\n    {} | {}",
        d.line, d.column, d.message, d.code, d.line, text
    )
}
pub fn render(path: &str, _source: &str, d: &Diagnostic) -> String {
    format!("{path}:{}:{}: error[{}]: {}", d.line, d.column, d.code, d.message)
}
