//! Markdown tables, number formatting, and the original's figures to compare against.

use std::fmt;
use std::time::Duration;

/// The original (FastAPI, one uvicorn worker) as measured earlier on the same 2-core machine
/// by another (Python) client: context for the single-server tables, not a comparison.
/// `kafka-load compare` measures both servers side by side with this client.
pub mod original {
    /// Echo messages per second at 15 sessions; from the 16th socket on it served nothing.
    pub const ECHO_PER_SECOND: f64 = 18_800.0;
    pub const ECHO_MAX_SESSIONS: usize = 15;
    /// Initial payload of a 200-line file with 1,000 versions.
    pub const PAYLOAD_VERSIONS: usize = 1_000;
    pub const PAYLOAD_MILLIS: f64 = 536.0;
    pub const PAYLOAD_BYTES: f64 = 16.7e6;
    /// `/auth/login` with 20 concurrent clients.
    pub const LOGIN_PER_SECOND: f64 = 358.0;
    pub const LOGIN_P99_MILLIS: f64 = 193.0;
    /// RSS per open WebSocket.
    pub const RSS_PER_SOCKET_BYTES: f64 = 2.3e6;
    /// `new_message` server overhead with an instant model.
    pub const AGENT_OVERHEAD_MILLIS: f64 = 68.0;
}

/// One scenario's results as a Markdown table, with notes under it.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub title: String,
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub notes: Vec<String>,
}

impl Table {
    pub fn new(title: &str, headers: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "### {}\n", self.title)?;
        writeln!(f, "| {} |", self.headers.join(" | "))?;
        writeln!(f, "|{}", "---|".repeat(self.headers.len()))?;
        for row in &self.rows {
            writeln!(f, "| {} |", row.join(" | "))?;
        }
        for note in &self.notes {
            writeln!(f, "\n{note}")?;
        }
        Ok(())
    }
}

pub fn millis(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

/// Decimal megabytes, as the original's figures are given.
pub fn megabytes(bytes: f64) -> String {
    if bytes.abs() < 1e5 {
        format!("{:.1} kB", bytes / 1e3)
    } else {
        format!("{:.2} MB", bytes / 1e6)
    }
}

pub fn rate(per_second: f64) -> String {
    format!("{per_second:.0}/s")
}

/// How ours compares with the original's figure, as a factor where above 1 is better.
pub fn versus(ours: f64, original: f64, higher_is_better: bool) -> String {
    let factor = if higher_is_better {
        ours / original
    } else {
        original / ours
    };
    if !factor.is_finite() {
        return "n/a".into();
    }
    let verdict = if factor >= 1.0 { "better" } else { "worse" };
    format!("{factor:.1}× {verdict}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_renders_as_markdown() {
        let mut table = Table::new("Echo", &["sessions", "rate"]);
        table.row(vec!["10".into(), rate(1234.4)]);
        table.note("Loopback.");
        assert_eq!(
            table.to_string(),
            "### Echo\n\n| sessions | rate |\n|---|---|\n| 10 | 1234/s |\n\nLoopback.\n"
        );
    }

    #[test]
    fn comparisons_say_which_way_is_better() {
        assert_eq!(versus(200.0, 100.0, true), "2.0× better");
        assert_eq!(versus(200.0, 100.0, false), "0.5× worse");
        assert_eq!(versus(0.0, 100.0, false), "n/a");
        assert_eq!(megabytes(16.7e6), "16.70 MB");
        assert_eq!(megabytes(2_300.0), "2.3 kB");
    }
}
