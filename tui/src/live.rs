//! The agent's answer as it streams in (`agent_output` frames). Each line is styled once, when
//! it is complete (code in a fenced block highlighted with the parser's state carried from
//! line to line), so drawing a frame costs only the lines on screen however long it grows.

use std::time::{Duration, Instant};

use ratatui::style::{Color, Style};
use ratatui::text::Line;

use crate::highlight::{Background, LineHighlighter};

/// One complete line of the answer, styled.
#[derive(Debug, Clone)]
pub enum LiveLine {
    /// Markdown prose, wrapped when drawn.
    Prose(String),
    /// A fence line (```` ```based ````) or a heading: drawn dim.
    Marker(String),
    /// A line inside a fenced block, styled.
    Code(Line<'static>),
}

/// The fenced block being written: its tag's kind and the opening fence's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Based(usize),
    Diff(usize),
    Other(usize),
}

impl Block {
    fn fence_len(self) -> usize {
        match self {
            Block::Based(n) | Block::Diff(n) | Block::Other(n) => n,
        }
    }
}

#[derive(Debug)]
pub struct LiveAnswer {
    pub attempt: u32,
    lines: Vec<LiveLine>,
    /// The line being written (no newline yet).
    partial: String,
    block: Option<Block>,
    highlighter: LineHighlighter,
    background: Background,
}

impl LiveAnswer {
    pub fn new(attempt: u32, background: Background) -> Self {
        Self {
            attempt,
            lines: Vec::new(),
            partial: String::new(),
            block: None,
            highlighter: LineHighlighter::new(background),
            background,
        }
    }

    pub fn push(&mut self, delta: &str) {
        self.partial.push_str(delta);
        while let Some(at) = self.partial.find('\n') {
            let rest = self.partial.split_off(at + 1);
            let line = std::mem::replace(&mut self.partial, rest);
            self.take_line(line.trim_end_matches(['\n', '\r']));
        }
    }

    /// Complete lines, and the one being written.
    pub fn line_count(&self) -> usize {
        self.lines.len() + usize::from(!self.partial.is_empty())
    }

    /// The last `count` complete lines.
    pub fn tail(&self, count: usize) -> &[LiveLine] {
        &self.lines[self.lines.len().saturating_sub(count)..]
    }

    /// The line being written, and whether it is inside a fenced block.
    pub fn partial(&self) -> (&str, bool) {
        (&self.partial, self.block.is_some())
    }

    fn take_line(&mut self, line: &str) {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        match self.block {
            // A closing fence: backticks only, at least as many as opened the block.
            Some(block) if ticks >= block.fence_len() && trimmed.trim_end().len() == ticks => {
                self.block = None;
                self.lines.push(LiveLine::Marker(line.to_owned()));
            }
            Some(Block::Based(_)) => {
                let styled = self.highlighter.line(&format!("{line}\n"));
                self.lines.push(LiveLine::Code(styled));
            }
            Some(Block::Diff(_)) => self.lines.push(LiveLine::Code(diff_line(line))),
            Some(Block::Other(_)) => self.lines.push(LiveLine::Code(Line::raw(line.to_owned()))),
            None if ticks >= 3 => {
                let tag = trimmed[ticks..].split_whitespace().next().unwrap_or_default();
                self.block = Some(match tag.to_ascii_lowercase().as_str() {
                    "based" => Block::Based(ticks),
                    "diff" => Block::Diff(ticks),
                    _ => Block::Other(ticks),
                });
                self.highlighter = LineHighlighter::new(self.background);
                self.lines.push(LiveLine::Marker(line.to_owned()));
            }
            None if trimmed.starts_with('#') => self.lines.push(LiveLine::Marker(line.to_owned())),
            None => self.lines.push(LiveLine::Prose(line.to_owned())),
        }
    }
}

fn diff_line(line: &str) -> Line<'static> {
    let style = match line.chars().next() {
        Some('+') => Style::default().fg(Color::Green),
        Some('-') => Style::default().fg(Color::Red),
        Some('@') => Style::default().fg(Color::Cyan),
        _ => Style::default(),
    };
    Line::styled(line.to_owned(), style)
}

/// `12s`, `3m05s`: how long the agent has been at it.
pub fn elapsed_label(elapsed: Duration) -> String {
    let secs = elapsed.as_secs();
    if secs < 60 {
        format!("{secs}s")
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

/// When the run started, for the elapsed time.
pub fn since(started: Option<Instant>) -> Option<String> {
    started.map(|at| elapsed_label(at.elapsed()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(answer: &LiveAnswer) -> Vec<String> {
        answer
            .tail(usize::MAX)
            .iter()
            .map(|line| match line {
                LiveLine::Prose(text) => format!("prose:{text}"),
                LiveLine::Marker(text) => format!("marker:{text}"),
                LiveLine::Code(line) => format!("code:{line}"),
            })
            .collect()
    }

    #[test]
    fn pieces_split_anywhere_make_the_same_lines() {
        let answer_text = "Here:\n## a.based\n```based\nloop:\n    x = talk(\"a ``` b\", True)\n```\nDone.\npart";
        let mut whole = LiveAnswer::new(1, Background::Dark);
        whole.push(answer_text);
        let mut pieces = LiveAnswer::new(1, Background::Dark);
        for c in answer_text.chars() {
            pieces.push(&c.to_string());
        }
        assert_eq!(kinds(&whole), kinds(&pieces));
        assert_eq!(
            kinds(&whole),
            [
                "prose:Here:",
                "marker:## a.based",
                "marker:```based",
                "code:loop:",
                "code:    x = talk(\"a ``` b\", True)",
                "marker:```",
                "prose:Done.",
            ]
        );
        assert_eq!(whole.partial(), ("part", false));
        assert_eq!(whole.line_count(), 8);
    }

    #[test]
    fn based_code_is_highlighted_and_diffs_coloured() {
        let mut answer = LiveAnswer::new(1, Background::Dark);
        answer.push("```based\nloop:\n```\n```diff\n+added\n-removed\n````\n");
        let LiveLine::Code(code) = &answer.tail(usize::MAX)[1] else {
            panic!("code")
        };
        assert_ne!(code.spans[0].style, Style::default(), "loop is a keyword");
        let LiveLine::Code(added) = &answer.tail(usize::MAX)[4] else {
            panic!("diff")
        };
        assert_eq!(added.style.fg, Some(Color::Green));
        // A longer fence closes a block too.
        assert!(!answer.partial().1);
    }

    #[test]
    fn elapsed_reads_naturally() {
        assert_eq!(elapsed_label(Duration::from_millis(12_400)), "12s");
        assert_eq!(elapsed_label(Duration::from_secs(185)), "3m05s");
    }
}
