//! Syntax highlighting of `.based` code with guard rails: one lazily built `SyntaxSet` holding
//! the bundled Based grammar, one theme, foreground and bold only (the terminal's own
//! background shows through, so light and dark terminals both work), plain text above a size
//! limit, and a cache keyed by content so scrolling never re-highlights.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use syntect::easy::HighlightLines;
use syntect::highlighting::{FontStyle, Theme, ThemeSet};
use syntect::parsing::{SyntaxDefinition, SyntaxSet, SyntaxSetBuilder};
use syntect::util::LinesWithEndings;

const BASED_SYNTAX: &str = include_str!("../assets/based.sublime-syntax");
/// Above this size a file is shown as plain text: highlighting would cost more than it helps.
pub const MAX_HIGHLIGHT_BYTES: usize = 1024 * 1024;
/// Files with more lines than this are highlighted on a blocking thread, off the UI loop.
pub const BACKGROUND_LINES: usize = 1_500;
/// Highlighted texts kept; a chat rarely shows more files than this at once.
const CACHE_ENTRIES: usize = 16;
const TAB: &str = "    ";

pub type Lines = Arc<Vec<Line<'static>>>;

fn syntax_set() -> &'static SyntaxSet {
    static SET: OnceLock<SyntaxSet> = OnceLock::new();
    SET.get_or_init(|| {
        let mut builder = SyntaxSetBuilder::new();
        // The grammar is compiled into the binary and covered by a test, so it always loads.
        let based = SyntaxDefinition::load_from_str(BASED_SYNTAX, true, Some("based"))
            .unwrap_or_else(|error| panic!("the bundled Based syntax is broken: {error}"));
        builder.add(based);
        builder.build()
    })
}

/// Colours for a dark or a light terminal background.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Background {
    #[default]
    Dark,
    Light,
}

/// The syntax theme for a background, loaded once per background on first use (the app owns
/// which background is in force; this only caches the parsed theme data).
fn theme(background: Background) -> &'static Theme {
    static DARK: OnceLock<Theme> = OnceLock::new();
    static LIGHT: OnceLock<Theme> = OnceLock::new();
    let (cell, name) = match background {
        Background::Dark => (&DARK, "base16-ocean.dark"),
        Background::Light => (&LIGHT, "InspiredGitHub"),
    };
    cell.get_or_init(|| ThemeSet::load_defaults().themes.remove(name).unwrap_or_default())
}

/// A key for the cache: the content's hash.
pub fn content_key(text: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

/// Whether `text` is big enough to be highlighted off the UI thread.
pub fn wants_background(text: &str) -> bool {
    text.len() <= MAX_HIGHLIGHT_BYTES && text.lines().count() > BACKGROUND_LINES
}

/// Each line of `text` highlighted as Based (plain above [`MAX_HIGHLIGHT_BYTES`]).
pub fn highlight(text: &str, background: Background) -> Vec<Line<'static>> {
    if text.len() > MAX_HIGHLIGHT_BYTES {
        return plain(text);
    }
    let mut highlighter = LineHighlighter::new(background);
    LinesWithEndings::from(text).map(|raw| highlighter.line(raw)).collect()
}

/// Highlights Based a line at a time, keeping the parser's state between lines: for code
/// that arrives line by line (the agent's answer as it streams).
pub struct LineHighlighter {
    inner: Option<HighlightLines<'static>>,
    background: Background,
}

impl std::fmt::Debug for LineHighlighter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LineHighlighter")
    }
}

impl LineHighlighter {
    pub fn new(background: Background) -> Self {
        let syntax = syntax_set().find_syntax_by_extension("based");
        Self {
            inner: syntax.map(|syntax| HighlightLines::new(syntax, theme(background))),
            background,
        }
    }

    /// The next line (its line ending may be present or not) as styled spans.
    pub fn line(&mut self, raw: &str) -> Line<'static> {
        let default_foreground = theme(self.background).settings.foreground;
        let ranges = match self.inner.as_mut() {
            Some(highlighter) => highlighter.highlight_line(raw, syntax_set()).ok(),
            None => None,
        };
        let Some(ranges) = ranges else {
            return Line::from(expand_tabs(raw.trim_end_matches(['\n', '\r'])));
        };
        let spans = ranges
            .into_iter()
            .map(|(style, piece)| {
                let piece = expand_tabs(piece.trim_end_matches(['\n', '\r']));
                Span::styled(piece, terminal_style(style, default_foreground))
            })
            .filter(|span| !span.content.is_empty())
            .collect::<Vec<_>>();
        Line::from(spans)
    }
}

/// Lines without styling, tabs expanded (a terminal cell grid has no tab stops).
pub fn plain(text: &str) -> Vec<Line<'static>> {
    text.lines().map(|line| Line::from(expand_tabs(line))).collect()
}

fn expand_tabs(text: &str) -> String {
    text.replace('\t', TAB)
}

/// Foreground and bold only. The theme's default foreground maps to the terminal's own, so
/// plain code stays readable on light backgrounds too.
fn terminal_style(
    style: syntect::highlighting::Style,
    default_foreground: Option<syntect::highlighting::Color>,
) -> Style {
    let mut out = Style::default();
    let fg = style.foreground;
    if Some(fg) != default_foreground {
        out = out.fg(Color::Rgb(fg.r, fg.g, fg.b));
    }
    if style.font_style.contains(FontStyle::BOLD) {
        out = out.add_modifier(Modifier::BOLD);
    }
    out
}

/// Highlighted texts by content key. Big texts are highlighted elsewhere and put in later;
/// until then `get` answers `None` and the caller shows plain text.
#[derive(Default)]
pub struct HighlightCache {
    entries: HashMap<u64, Lines>,
    order: Vec<u64>,
}

impl HighlightCache {
    pub fn get(&self, key: u64) -> Option<Lines> {
        self.entries.get(&key).cloned()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.entries.contains_key(&key)
    }

    pub fn insert(&mut self, key: u64, lines: Vec<Line<'static>>) {
        if self.entries.insert(key, Arc::new(lines)).is_none() {
            self.order.push(key);
        }
        while self.order.len() > CACHE_ENTRIES {
            let oldest = self.order.remove(0);
            self.entries.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn styled_words(line: &Line) -> Vec<(String, Style)> {
        line.spans.iter().map(|s| (s.content.to_string(), s.style)).collect()
    }

    #[test]
    fn the_bundled_syntax_loads_and_colours_keywords_and_builtins() {
        let lines = highlight(
            "loop:\n    x = talk(\"Hi\", True)\nuntil \"done\":\n    say(\"ok\")\n",
            Background::Dark,
        );
        assert_eq!(lines.len(), 4);
        let loop_style = styled_words(&lines[0])[0].1;
        assert_ne!(loop_style, Style::default(), "loop is a keyword");
        let talk = styled_words(&lines[1]).into_iter().find(|(w, _)| w == "talk").unwrap();
        assert_ne!(talk.1, Style::default(), "talk is a built-in");
        let until = styled_words(&lines[2]).into_iter().find(|(w, _)| w == "until").unwrap();
        assert_ne!(until.1, Style::default());
    }

    #[test]
    fn huge_texts_stay_plain_and_tabs_expand() {
        let big = "x = 1\n".repeat(MAX_HIGHLIGHT_BYTES / 6 + 10);
        assert!(
            highlight(&big, Background::Light)[0]
                .spans
                .iter()
                .all(|s| s.style == Style::default())
        );
        assert_eq!(plain("\tsay(1)")[0].to_string(), "    say(1)");
        assert!(!wants_background(&big));
    }

    #[test]
    fn the_cache_forgets_the_oldest() {
        let mut cache = HighlightCache::default();
        for key in 0..(CACHE_ENTRIES as u64 + 1) {
            cache.insert(key, Vec::new());
        }
        assert!(!cache.contains(0));
        assert!(cache.contains(CACHE_ENTRIES as u64));
    }
}
