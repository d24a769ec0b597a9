//! Python 3 tokenizer for Based: NEWLINE/INDENT/DEDENT, implicit line joining inside
//! brackets, backslash continuation, comments, every string form (prefixes, triple
//! quotes, escapes, f-strings with nested replacement fields) and numbers.
//!
//! Errors are reported and lexing continues, so one pass finds several problems.

use super::diagnostic::{Diagnostic, Pos, Span};

/// Rule code for Python-level syntax errors (R8 in the language reference).
const SYNTAX: &str = "R8";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Name,
    Number,
    Str,
    Op,
    Newline,
    Indent,
    Dedent,
    End,
}

/// The expression inside an f-string replacement field, to be parsed separately.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment<'a> {
    pub text: &'a str,
    pub start: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub kind: TokenKind,
    pub text: &'a str,
    pub span: Span,
    pub fstring: bool,
    pub fields: Vec<Fragment<'a>>,
}

pub struct Lexed<'a> {
    pub tokens: Vec<Token<'a>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Where an unclosed bracket or triple-quoted string began: every later token is
    /// part of it, so later parse errors would only be noise.
    pub swallowed_from: Option<Pos>,
}

/// Tokenizes a whole file.
pub fn tokenize(src: &str) -> Lexed<'_> {
    Lexer::new(src, Pos { line: 1, col: 1 }, false).run()
}

/// Tokenizes an f-string field: no NEWLINE/INDENT, newlines are plain whitespace.
pub fn tokenize_fragment(src: &str, start: Pos) -> Lexed<'_> {
    Lexer::new(src, start, true).run()
}

const OPERATORS: [&str; 24] = [
    "**=", "//=", ">>=", "<<=", "...", "**", "//", "<<", ">>", "<=", ">=", "==", "!=", "->", ":=", "+=", "-=", "*=",
    "/=", "%=", "&=", "|=", "^=", "@=",
];
const SINGLE_OPS: &str = "+-*/%@&|^~<>()[]{},:.;=";
const STRING_PREFIXES: [&str; 8] = ["r", "u", "b", "f", "br", "rb", "fr", "rf"];

/// How scanning an f-string replacement field ended.
enum FieldEnd {
    Closed,
    Unterminated,
}

/// Characters that can start or continue an identifier. Python uses XID classes;
/// alphabetic/alphanumeric is a close approximation.
fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_alphabetic()
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    line: usize,
    col: usize,
    fragment: bool,
    at_line_start: bool,
    tokens: Vec<Token<'a>>,
    diagnostics: Vec<Diagnostic>,
    brackets: Vec<(char, Span)>,
    indents: Vec<&'a str>,
    swallowed_from: Option<Pos>,
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, start: Pos, fragment: bool) -> Self {
        Lexer {
            src,
            // Editors may prefix a byte-order mark; it is not part of the code.
            pos: if src.starts_with('\u{feff}') {
                '\u{feff}'.len_utf8()
            } else {
                0
            },
            line: start.line,
            col: start.col,
            fragment,
            at_line_start: !fragment,
            tokens: Vec::new(),
            diagnostics: Vec::new(),
            brackets: Vec::new(),
            indents: vec![""],
            swallowed_from: None,
        }
    }

    fn run(mut self) -> Lexed<'a> {
        loop {
            if self.at_line_start && self.brackets.is_empty() {
                self.line_start();
            }
            let Some(c) = self.peek() else { break };
            self.token(c);
        }
        self.finish();
        Lexed {
            tokens: self.tokens,
            diagnostics: self.diagnostics,
            swallowed_from: self.swallowed_from,
        }
    }

    fn token(&mut self, c: char) {
        match c {
            ' ' | '\t' | '\x0c' | '\r' => {
                self.bump();
            }
            '\n' => self.newline(),
            '#' => {
                while self.peek().is_some_and(|c| c != '\n') {
                    self.bump();
                }
            }
            '\\' => self.continuation(),
            '"' | '\'' => {
                let (off, pos) = (self.pos, self.here());
                self.string(off, pos, "");
            }
            c if is_ident_start(c) => self.name(),
            c if c.is_ascii_digit() => self.number(),
            '.' if self.peek_nth(1).is_some_and(|d| d.is_ascii_digit()) => self.number(),
            _ => self.operator(c),
        }
    }

    // ---- cursor -------------------------------------------------------------

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_nth(&self, n: usize) -> Option<char> {
        self.src[self.pos..].chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn here(&self) -> Pos {
        Pos {
            line: self.line,
            col: self.col,
        }
    }

    fn mark(&self) -> (usize, usize, usize) {
        (self.pos, self.line, self.col)
    }

    fn reset(&mut self, mark: (usize, usize, usize)) {
        (self.pos, self.line, self.col) = mark;
    }

    fn push(&mut self, kind: TokenKind, start_off: usize, start: Pos) {
        self.push_token(Token {
            kind,
            text: &self.src[start_off..self.pos],
            span: Span::new(start, self.here()),
            fstring: false,
            fields: Vec::new(),
        });
    }

    fn push_token(&mut self, token: Token<'a>) {
        self.tokens.push(token);
    }

    fn push_marker(&mut self, kind: TokenKind) {
        let here = self.here();
        self.push_token(Token {
            kind,
            text: "",
            span: Span::new(here, here),
            fstring: false,
            fields: Vec::new(),
        });
    }

    fn error(&mut self, message: impl Into<String>, span: Span) {
        self.diagnostics.push(Diagnostic::error(SYNTAX, message, span));
    }

    // ---- lines and indentation ---------------------------------------------

    fn newline(&mut self) {
        let logical_end = !self.fragment && self.brackets.is_empty();
        if logical_end && self.tokens.last().is_some_and(|t| t.kind != TokenKind::Newline) {
            let (off, pos) = (self.pos, self.here());
            self.bump();
            self.push(TokenKind::Newline, off, pos);
        } else {
            self.bump();
        }
        self.at_line_start = logical_end;
    }

    /// Measures a line's indentation and emits INDENT/DEDENT. Blank and comment-only
    /// lines do not count, as in Python.
    fn line_start(&mut self) {
        self.at_line_start = false;
        let (mut off, mut start) = (self.pos, self.here());
        while let Some(c @ (' ' | '\t' | '\x0c')) = self.peek() {
            self.bump();
            // Python resets the indentation count at a form feed.
            if c == '\x0c' {
                (off, start) = (self.pos, self.here());
            }
        }
        let blank = match self.peek() {
            None | Some('\n' | '#') => true,
            Some('\r') => matches!(self.peek_nth(1), None | Some('\n')),
            _ => false,
        };
        if !blank {
            let indent = &self.src[off..self.pos];
            self.indent_to(indent, Span::new(start, self.here()));
        }
    }

    fn indent_to(&mut self, indent: &'a str, span: Span) {
        let top = self.indents.last().copied().unwrap_or("");
        if indent == top {
            return;
        }
        if indent.starts_with(top) {
            self.indents.push(indent);
            self.push_marker(TokenKind::Indent);
            return;
        }
        if let Some(level) = self.indents.iter().position(|i| *i == indent) {
            self.dedent_to(level + 1);
            return;
        }
        self.bad_indent(indent, span);
    }

    fn dedent_to(&mut self, depth: usize) {
        while self.indents.len() > depth {
            self.indents.pop();
            self.push_marker(TokenKind::Dedent);
        }
    }

    /// Reports an indentation that matches no open block and recovers by width.
    fn bad_indent(&mut self, indent: &'a str, span: Span) {
        let mixed = indent.contains('\t') && self.indents.iter().any(|i| i.contains(' '))
            || indent.contains(' ') && self.indents.iter().any(|i| i.contains('\t'));
        let message = if mixed {
            "inconsistent use of tabs and spaces in indentation; indent with spaces only (4 per level)"
        } else {
            "this line's indentation does not match any enclosing block; indent it exactly like the other lines of its block"
        };
        self.error(message, span);
        // Tabs are taken as 4 columns: code from models usually means that.
        let width = |s: &str| s.chars().map(|c| if c == '\t' { 4 } else { 1 }).sum::<usize>();
        let wanted = width(indent);
        while self.indents.len() > 1 && self.indents.last().is_some_and(|top| width(top) > wanted) {
            self.indents.pop();
            self.push_marker(TokenKind::Dedent);
        }
        if self.indents.last().is_some_and(|top| width(top) < wanted) {
            self.indents.push(indent);
            self.push_marker(TokenKind::Indent);
        }
    }

    fn continuation(&mut self) {
        let start = self.here();
        self.bump();
        if self.peek() == Some('\r') && self.peek_nth(1) == Some('\n') {
            self.bump();
        }
        match self.peek() {
            Some('\n') => {
                self.bump();
            }
            None => self.error(
                "the file ends right after a line continuation `\\`",
                Span::new(start, self.here()),
            ),
            Some(_) => self.error(
                "unexpected character after the line continuation `\\`; a backslash outside a string must end the line",
                Span::new(start, self.here()),
            ),
        }
    }

    fn finish(&mut self) {
        if let Some(&(open, span)) = self.brackets.last() {
            self.error(
                format!("'{open}' was never closed; add the matching '{}'", closer(open)),
                span,
            );
            self.swallowed_from = self.brackets.first().map(|(_, s)| s.start);
        }
        if !self.fragment {
            if self.tokens.last().is_some_and(|t| t.kind != TokenKind::Newline) {
                self.push_marker(TokenKind::Newline);
            }
            self.dedent_to(1);
        }
        self.push_marker(TokenKind::End);
        if self.fragment {
            // Lets messages say where an f-string field's expression ends.
            if let Some(end) = self.tokens.last_mut() {
                end.text = "}";
            }
        }
    }

    // ---- names, numbers, operators -----------------------------------------

    fn name(&mut self) {
        let (off, start) = (self.pos, self.here());
        while self.peek().is_some_and(is_ident_continue) {
            self.bump();
        }
        let word = &self.src[off..self.pos];
        if matches!(self.peek(), Some('"' | '\'')) && STRING_PREFIXES.contains(&word.to_ascii_lowercase().as_str()) {
            self.string(off, start, word);
        } else {
            self.push(TokenKind::Name, off, start);
        }
    }

    fn number(&mut self) {
        let (off, start) = (self.pos, self.here());
        if self.peek() == Some('0') && matches!(self.peek_nth(1), Some('x' | 'X' | 'o' | 'O' | 'b' | 'B')) {
            self.bump();
            let radix = match self.bump() {
                Some('x' | 'X') => 16,
                Some('o' | 'O') => 8,
                _ => 2,
            };
            self.eat_while(|c| c.is_ascii_alphanumeric() || c == '_');
            let digits = &self.src[off + 2..self.pos];
            if digits.is_empty() || !digits.chars().all(|c| c == '_' || c.is_digit(radix)) {
                self.error(
                    format!("invalid base-{radix} number literal"),
                    Span::new(start, self.here()),
                );
            }
        } else {
            self.decimal(off, start);
        }
        self.push(TokenKind::Number, off, start);
    }

    fn decimal(&mut self, off: usize, start: Pos) {
        let digit = |c: char| c.is_ascii_digit() || c == '_';
        self.eat_while(digit);
        let integer = &self.src[off..self.pos];
        let mut float = false;
        if self.peek() == Some('.') {
            float = true;
            self.bump();
            self.eat_while(digit);
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            let signed = matches!(self.peek_nth(1), Some('+' | '-'));
            if self
                .peek_nth(1 + usize::from(signed))
                .is_some_and(|c| c.is_ascii_digit())
            {
                float = true;
                self.bump();
                if signed {
                    self.bump();
                }
                self.eat_while(digit);
            }
        }
        if matches!(self.peek(), Some('j' | 'J')) {
            self.bump();
        }
        let text = &self.src[off..self.pos];
        let bad_tail = self.peek().is_some_and(is_ident_continue);
        if bad_tail || text.ends_with('_') || text.contains("__") {
            self.eat_while(is_ident_continue);
            self.error("invalid number literal", Span::new(start, self.here()));
        } else if !float
            && integer.len() > 1
            && integer.starts_with('0')
            && integer.chars().any(|c| c != '0' && c != '_')
        {
            self.error(
                "leading zeros are not allowed in decimal numbers; write 0o17 for octal, or drop the zeros",
                Span::new(start, self.here()),
            );
        }
    }

    fn eat_while(&mut self, pred: impl Fn(char) -> bool) {
        while self.peek().is_some_and(&pred) {
            self.bump();
        }
    }

    fn operator(&mut self, c: char) {
        let (off, start) = (self.pos, self.here());
        let rest = &self.src[self.pos..];
        if let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) {
            for _ in 0..op.len() {
                self.bump();
            }
            self.push(TokenKind::Op, off, start);
            return;
        }
        self.bump();
        let span = Span::new(start, self.here());
        if !SINGLE_OPS.contains(c) {
            self.error(invalid_char_message(c), span);
            return;
        }
        match c {
            '(' | '[' | '{' => self.brackets.push((c, span)),
            ')' | ']' | '}' if !self.close_bracket(c, span) => return,
            _ => {}
        }
        self.push(TokenKind::Op, off, start);
    }

    /// Matches a closing bracket; returns false when the token should be dropped.
    fn close_bracket(&mut self, c: char, span: Span) -> bool {
        let Some(&(open, open_span)) = self.brackets.last() else {
            self.error(
                format!("unmatched '{c}': there is no opening bracket for it; remove it"),
                span,
            );
            return false;
        };
        if closer(open) == c {
            self.brackets.pop();
            return true;
        }
        self.error(
            format!(
                "closing '{c}' does not match the opening '{open}' on line {}, column {}; close that one with '{}' first",
                open_span.start.line,
                open_span.start.col,
                closer(open)
            ),
            span,
        );
        // Close back to a matching opener if there is one; otherwise the closer is
        // most likely a typo for the right one, so let it close the innermost.
        let level = self.brackets.iter().rposition(|(o, _)| closer(*o) == c);
        self.brackets.truncate(level.unwrap_or(self.brackets.len() - 1));
        true
    }

    // ---- strings ------------------------------------------------------------

    fn string(&mut self, off: usize, start: Pos, prefix: &str) {
        let prefix = prefix.to_ascii_lowercase();
        let (raw, fstring, bytes) = (prefix.contains('r'), prefix.contains('f'), prefix.contains('b'));
        let quote = self.bump().unwrap_or('"');
        let triple = self.peek() == Some(quote) && self.peek_nth(1) == Some(quote);
        if triple {
            self.bump();
            self.bump();
        }
        let mut fields = Vec::new();
        let terminated = loop {
            let Some(c) = self.peek() else { break false };
            match c {
                '\n' if !triple => break false,
                '\\' => self.escape(raw, bytes),
                c if c == quote => {
                    if !triple {
                        self.bump();
                        break true;
                    }
                    if self.peek_nth(1) == Some(quote) && self.peek_nth(2) == Some(quote) {
                        self.bump();
                        self.bump();
                        self.bump();
                        break true;
                    }
                    self.bump();
                }
                '{' | '}' if fstring && self.peek_nth(1) == Some(c) => {
                    self.bump();
                    self.bump();
                }
                '{' if fstring => match self.fstring_field(quote, triple, &mut fields, false) {
                    FieldEnd::Closed => {}
                    FieldEnd::Unterminated => break false,
                },
                '}' if fstring => {
                    let at = self.here();
                    self.bump();
                    self.error(
                        "f-string: single '}' is not allowed; write '}}' for a literal brace",
                        Span::new(at, self.here()),
                    );
                }
                _ => {
                    self.bump();
                }
            }
        };
        if !terminated {
            self.unterminated(start, triple, quote);
        }
        self.push_token(Token {
            kind: TokenKind::Str,
            text: &self.src[off..self.pos],
            span: Span::new(start, self.here()),
            fstring,
            fields,
        });
    }

    fn unterminated(&mut self, start: Pos, triple: bool, quote: char) {
        let span = Span::new(
            start,
            Pos {
                line: start.line,
                col: start.col + 1,
            },
        );
        if triple {
            self.error(
                format!("unterminated triple-quoted string; close it with {0}{0}{0}", quote),
                span,
            );
            self.swallowed_from.get_or_insert(start);
        } else {
            self.error(
                format!("unterminated string literal; close it with {quote} on the same line (use triple quotes for text spanning lines)"),
                span,
            );
            // The rest of the line went into the string, including closing brackets;
            // forget the brackets opened on this line so the next line parses anew.
            self.brackets.retain(|(_, s)| s.start.line != start.line);
        }
    }

    /// Consumes a backslash escape, checking the ones Python rejects when malformed.
    fn escape(&mut self, raw: bool, bytes: bool) {
        let start = self.here();
        self.bump();
        let Some(c) = self.bump() else { return };
        if raw {
            return;
        }
        let needed = match c {
            'x' => 2,
            'u' if !bytes => 4,
            'U' if !bytes => 8,
            'N' if !bytes => {
                self.named_escape(start);
                return;
            }
            _ => return,
        };
        let mut found = 0;
        while found < needed && self.peek().is_some_and(|d| d.is_ascii_hexdigit()) {
            self.bump();
            found += 1;
        }
        if found < needed {
            self.error(
                format!("invalid escape `\\{c}`: it needs exactly {needed} hex digits; write `\\\\{c}` for a literal backslash"),
                Span::new(start, self.here()),
            );
        }
    }

    fn named_escape(&mut self, start: Pos) {
        let closed = self.peek() == Some('{') && {
            let line_end = self.src[self.pos..].find('\n').map_or(self.src.len(), |i| self.pos + i);
            match self.src[self.pos..line_end].find('}') {
                Some(i) => {
                    let target = self.pos + i + 1;
                    while self.pos < target {
                        self.bump();
                    }
                    true
                }
                None => false,
            }
        };
        if !closed {
            self.error(
                "invalid escape `\\N`: write `\\N{NAME}` or `\\\\N`",
                Span::new(start, self.here()),
            );
        }
    }

    /// Scans `{expr[=][!conv][:spec]}` inside an f-string and records `expr`;
    /// `in_spec` is set for a field nested in another field's format spec.
    fn fstring_field(&mut self, quote: char, triple: bool, fields: &mut Vec<Fragment<'a>>, in_spec: bool) -> FieldEnd {
        let open = self.here();
        self.bump();
        let (off, start) = (self.pos, self.here());
        let mut depth = 0usize;
        loop {
            let Some(c) = self.peek() else {
                return FieldEnd::Unterminated;
            };
            match c {
                '\n' if !triple => return FieldEnd::Unterminated,
                '(' | '[' | '{' => depth += 1,
                ')' | ']' => depth = depth.saturating_sub(1),
                '}' if depth > 0 => depth -= 1,
                '}' => break,
                '!' if depth == 0 && self.peek_nth(1) != Some('=') => break,
                ':' if depth == 0 => break,
                '"' | '\'' => {
                    if c == quote && !triple && !self.nested_string_closes(c) {
                        return self.missing_field_close(open);
                    }
                    if !self.skip_nested_string(c) {
                        return FieldEnd::Unterminated;
                    }
                    continue;
                }
                _ => {}
            }
            self.bump();
        }
        self.record_field(off, start, open, fields);
        if self.peek() == Some('!') {
            self.bump();
            self.eat_while(is_ident_continue);
        }
        if self.peek() == Some(':') && !self.format_spec(quote, triple, fields, in_spec) {
            return self.missing_field_close(open);
        }
        if self.peek() == Some('}') {
            self.bump();
            FieldEnd::Closed
        } else {
            self.missing_field_close(open)
        }
    }

    fn record_field(&mut self, off: usize, start: Pos, open: Pos, fields: &mut Vec<Fragment<'a>>) {
        let text = &self.src[off..self.pos];
        // `{x=}` is the self-documenting form; the expression is `x`.
        let trimmed = text.trim_end();
        let text = match trimmed.strip_suffix('=') {
            Some(expr) if !expr.ends_with(['=', '!', '<', '>']) => expr,
            _ => text,
        };
        if text.trim().is_empty() {
            self.error(
                "f-string: empty expression in `{}`; put a name or expression inside, or write `{{` for a literal brace",
                Span::new(open, self.here()),
            );
        } else {
            fields.push(Fragment { text, start });
        }
    }

    /// Scans a format spec, which may hold nested fields; false if it runs off the string.
    fn format_spec(&mut self, quote: char, triple: bool, fields: &mut Vec<Fragment<'a>>, nested_spec: bool) -> bool {
        self.bump();
        loop {
            match self.peek() {
                None | Some('}') => return self.peek().is_some(),
                Some('\n') if !triple => return false,
                Some(c) if c == quote && !triple => return false,
                // Python allows a field inside a format spec, but no deeper.
                Some('{') if nested_spec => {
                    let at = self.here();
                    self.error(
                        "f-string: format specs nest too deeply",
                        Span::new(
                            at,
                            Pos {
                                line: at.line,
                                col: at.col + 1,
                            },
                        ),
                    );
                    return false;
                }
                Some('{') => {
                    if !matches!(self.fstring_field(quote, triple, fields, true), FieldEnd::Closed) {
                        return false;
                    }
                }
                Some(_) => {
                    self.bump();
                }
            }
        }
    }

    fn missing_field_close(&mut self, open: Pos) -> FieldEnd {
        self.error(
            "f-string: this '{' is never closed; add '}' after the expression, or write '{{' for a literal brace",
            Span::new(
                open,
                Pos {
                    line: open.line,
                    col: open.col + 1,
                },
            ),
        );
        // Resynchronise on the f-string's own closing quote, if this line has one.
        FieldEnd::Closed
    }

    /// Whether a string starting here closes before the end of the line.
    fn nested_string_closes(&mut self, quote: char) -> bool {
        let mark = self.mark();
        let closes = self.skip_nested_string(quote);
        self.reset(mark);
        closes
    }

    /// Skips a string nested in an f-string field (Python 3.12 rules allow any quote).
    fn skip_nested_string(&mut self, quote: char) -> bool {
        self.bump();
        let triple = self.peek() == Some(quote) && self.peek_nth(1) == Some(quote);
        if triple {
            self.bump();
            self.bump();
        }
        loop {
            match self.bump() {
                None => return false,
                Some('\n') if !triple => return false,
                Some('\\') => {
                    self.bump();
                }
                Some(c) if c == quote => {
                    if !triple {
                        return true;
                    }
                    if self.peek() == Some(quote) && self.peek_nth(1) == Some(quote) {
                        self.bump();
                        self.bump();
                        return true;
                    }
                }
                Some(_) => {}
            }
        }
    }
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn invalid_char_message(c: char) -> String {
    match c {
        '“' | '”' | '‘' | '’' => {
            format!("curly quote `{c}` is not valid here; use straight quotes \" or '")
        }
        '!' => "`!` is not an operator; use `not` for negation or `!=` for inequality".to_string(),
        '$' | '?' | '`' => format!("`{c}` is not valid Python syntax"),
        c if c.is_control() => format!("invalid control character U+{:04X}; remove it", c as u32),
        c => format!(
            "invalid character `{c}` (U+{:04X}); remove it or put it inside a string",
            c as u32
        ),
    }
}
