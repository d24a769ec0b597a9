//! Recursive-descent parser for Based: Python 3 statements plus `loop:` / `until`.
//!
//! Error recovery is statement-based: after the first error in a statement further
//! errors are suppressed (`panicking`) until the parser resynchronises at the next
//! line, and indented blocks under broken headers are still parsed. Nesting depth is
//! capped so hostile input cannot overflow the stack. Every token is consumed a
//! bounded number of times, so parsing is linear in the input.

mod based;
mod compound;
mod expr;
mod simple;
#[cfg(test)]
mod tests;

use super::ast::{Stmt, StmtKind};
use super::diagnostic::{Diagnostic, Pos, Span};
use super::lexer::{Token, TokenKind};

/// Rule code for Python syntax errors.
pub(crate) const SYNTAX: &str = "R8";
/// Rule code for malformed `loop` / `until` headers.
const HEADER: &str = "R9";
/// Nesting budget. A nested construct (bracket, block, unary operator) costs
/// `NEST_COST` and each link of an operator or trailer chain costs 1, because a
/// chain builds an equally deep tree. This bounds both the parser's recursion (30
/// nested levels) and the depth of the tree that the validator and `Drop` recurse
/// over, so hostile input cannot overflow a 2 MiB thread stack even in debug builds.
const DEPTH_BUDGET: usize = 600;
const NEST_COST: usize = 20;

const KEYWORDS: [&str; 35] = [
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue", "def", "del",
    "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in", "is", "lambda", "nonlocal",
    "not", "or", "pass", "raise", "return", "try", "while", "with", "yield",
];
const AUGMENTED: [&str; 13] = [
    "+=", "-=", "*=", "/=", "//=", "%=", "**=", ">>=", "<<=", "&=", "|=", "^=", "@=",
];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

/// Parses a token stream (ending in `End`) into statements plus syntax diagnostics.
pub fn parse(tokens: &[Token<'_>]) -> (Vec<Stmt>, Vec<Diagnostic>) {
    let mut parser = Parser::new(tokens, 0);
    let mut body = Vec::new();
    while !parser.at_kind(TokenKind::End) {
        parser.statement(&mut body);
    }
    (body, parser.diagnostics)
}

pub(crate) struct Parser<'t, 'a> {
    tokens: &'t [Token<'a>],
    i: usize,
    diagnostics: Vec<Diagnostic>,
    panicking: bool,
    depth: usize,
    depth_reported: bool,
}

impl<'t, 'a> Parser<'t, 'a> {
    pub(crate) fn new(tokens: &'t [Token<'a>], depth: usize) -> Self {
        Parser {
            tokens,
            i: 0,
            diagnostics: Vec::new(),
            panicking: false,
            depth,
            depth_reported: false,
        }
    }

    // ---- token access -------------------------------------------------------

    fn tok(&self) -> &'t Token<'a> {
        self.nth(0)
    }

    fn nth(&self, n: usize) -> &'t Token<'a> {
        let tokens: &'t [Token<'a>] = self.tokens;
        &tokens[(self.i + n).min(tokens.len() - 1)]
    }

    fn bump(&mut self) -> &'t Token<'a> {
        let token = self.tok();
        if token.kind != TokenKind::End {
            self.i += 1;
        }
        token
    }

    fn at_kind(&self, kind: TokenKind) -> bool {
        self.tok().kind == kind
    }

    fn at_op(&self, op: &str) -> bool {
        let t = self.tok();
        t.kind == TokenKind::Op && t.text == op
    }

    fn at_kw(&self, kw: &str) -> bool {
        let t = self.tok();
        t.kind == TokenKind::Name && t.text == kw
    }

    fn eat_op(&mut self, op: &str) -> bool {
        let found = self.at_op(op);
        if found {
            self.bump();
        }
        found
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let found = self.at_kw(kw);
        if found {
            self.bump();
        }
        found
    }

    fn start(&self) -> Pos {
        self.tok().span.start
    }

    fn prev_end(&self) -> Pos {
        match self.i {
            0 => self.start(),
            i => self.tokens[i - 1].span.end,
        }
    }

    fn span_from(&self, start: Pos) -> Span {
        Span::new(start, self.prev_end().max(start))
    }

    fn at_statement_end(&self) -> bool {
        matches!(self.tok().kind, TokenKind::Newline | TokenKind::End) || self.at_op(";")
    }

    // ---- diagnostics --------------------------------------------------------

    /// Reports an error and suppresses follow-up errors until the next statement.
    fn error(&mut self, message: impl Into<String>, span: Span) {
        if !self.panicking {
            self.diagnostics.push(Diagnostic::error(SYNTAX, message, span));
            self.panicking = true;
        }
    }

    /// Reports an error after which parsing continues normally.
    fn error_continue(&mut self, code: &str, message: impl Into<String>, span: Span) {
        if !self.panicking {
            self.diagnostics.push(Diagnostic::error(code, message, span));
        }
    }

    fn error_here(&mut self, message: impl Into<String>) {
        let span = self.tok().span;
        self.error(message, span);
    }

    fn expect_op(&mut self, op: &str, context: &str) -> bool {
        if self.eat_op(op) {
            return true;
        }
        let found = describe(self.tok());
        self.error_here(format!("expected '{op}' {context}, found {found}"));
        false
    }

    fn expect_name(&mut self, what: &str) -> String {
        let t = self.tok();
        if t.kind == TokenKind::Name && !is_keyword(t.text) {
            self.bump();
            return t.text.to_string();
        }
        self.error_here(format!("expected {what}, found {}", describe(t)));
        String::new()
    }

    /// Skips the rest of the logical line, leaving the NEWLINE in place.
    fn skip_line(&mut self) {
        while !matches!(self.tok().kind, TokenKind::Newline | TokenKind::End) {
            self.bump();
        }
    }

    /// Enters a nested construct; see `DEPTH_BUDGET`. Callers must call `leave`
    /// only when this returned true.
    fn enter(&mut self) -> bool {
        self.spend(NEST_COST)
    }

    fn leave(&mut self) {
        self.depth -= NEST_COST;
    }

    /// Takes `cost` from the depth budget, or reports once and skips the line.
    fn spend(&mut self, cost: usize) -> bool {
        if self.depth + cost > DEPTH_BUDGET {
            if !self.depth_reported {
                self.depth_reported = true;
                self.error_here(
                    "nesting is too deep: split this expression or block into smaller pieces, for example with intermediate variables",
                );
            }
            self.panicking = true;
            self.skip_line();
            return false;
        }
        self.depth += cost;
        true
    }

    // ---- statements ---------------------------------------------------------

    fn statement(&mut self, out: &mut Vec<Stmt>) {
        if self.panicking {
            self.skip_line();
            self.panicking = false;
        }
        let before = self.i;
        match self.tok().kind {
            TokenKind::Newline | TokenKind::Dedent => {
                self.bump();
            }
            TokenKind::End => {}
            TokenKind::Indent => out.push(self.unexpected_indent()),
            _ => match self.compound() {
                Some(stmt) => out.push(stmt),
                None => self.simple_line(out),
            },
        }
        if self.i == before && !self.at_kind(TokenKind::End) {
            self.bump();
        }
    }

    fn unexpected_indent(&mut self) -> Stmt {
        let span = self.nth(1).span;
        self.bump();
        self.error_continue(
            SYNTAX,
            "unexpected indentation: this line is indented more than the block it is in; remove the extra indentation",
            span,
        );
        let body = self.indented_block();
        Stmt {
            kind: StmtKind::Error { body },
            span,
        }
    }

    /// Parses statements after an INDENT up to and including the matching DEDENT.
    fn indented_block(&mut self) -> Vec<Stmt> {
        let mut body = Vec::new();
        if !self.enter() {
            self.skip_block();
            return body;
        }
        while !matches!(self.tok().kind, TokenKind::Dedent | TokenKind::End) {
            self.statement(&mut body);
        }
        self.bump();
        self.leave();
        body
    }

    fn skip_block(&mut self) {
        let mut level = 1usize;
        while level > 0 && !self.at_kind(TokenKind::End) {
            match self.bump().kind {
                TokenKind::Indent => level += 1,
                TokenKind::Dedent => level -= 1,
                _ => {}
            }
        }
    }

    /// The body after a compound header: `:` then an indented block, or simple
    /// statements on the same line. A missing colon is reported but the block is
    /// still parsed, so one typo does not hide everything below it.
    fn suite(&mut self, what: &str, header: Span, code: &str) -> Vec<Stmt> {
        if self.panicking {
            self.skip_line();
            self.panicking = false;
        } else if !self.eat_op(":") {
            let hint = if self.at_op("=") {
                "; use `==` to compare values"
            } else {
                ""
            };
            let message = format!(
                "expected ':' at the end of the {what} header, found {}{hint}",
                describe(self.tok())
            );
            self.error_continue(code, message, self.tok().span);
            self.skip_line();
        }
        if !self.at_kind(TokenKind::Newline) {
            let mut body = Vec::new();
            self.simple_line(&mut body);
            return body;
        }
        self.bump();
        if self.at_kind(TokenKind::Indent) {
            self.bump();
            return self.indented_block();
        }
        self.error_continue(
            SYNTAX,
            format!(
                "expected an indented block after the {what} header on line {}",
                header.start.line
            ),
            header,
        );
        Vec::new()
    }

    fn compound(&mut self) -> Option<Stmt> {
        let t = self.tok();
        if t.kind == TokenKind::Op && t.text == "@" {
            return Some(self.decorated());
        }
        if t.kind != TokenKind::Name {
            return None;
        }
        let stmt = match t.text {
            "if" => self.if_stmt(),
            "while" => self.while_stmt(),
            "for" => self.for_stmt(false),
            "try" => self.try_stmt(),
            "with" => self.with_stmt(false),
            "def" => self.def_stmt(false, Vec::new()),
            "class" => self.class_stmt(Vec::new()),
            "async" => self.async_stmt(Vec::new()),
            "elif" | "else" | "except" | "finally" => self.stray_clause(),
            "match" if self.at_match_stmt() => self.match_stmt(),
            "loop" => self.loop_stmt(),
            "until" => self.until_stmt(),
            _ => return None,
        };
        Some(stmt)
    }

    fn header<F: FnOnce(&mut Self) -> T, T>(&mut self, parse: F) -> (T, Span) {
        let start = self.start();
        let value = parse(self);
        (value, self.span_from(start))
    }

    /// Recovers from a broken compound header: skips the line and keeps the body.
    fn bad_header(&mut self) -> Stmt {
        let start = self.start();
        let body = self.skip_header_keep_body();
        Stmt {
            kind: StmtKind::Error { body },
            span: self.span_from(start),
        }
    }

    fn skip_header_keep_body(&mut self) -> Vec<Stmt> {
        self.skip_line();
        self.bump();
        self.panicking = false;
        if self.at_kind(TokenKind::Indent) {
            self.bump();
            return self.indented_block();
        }
        Vec::new()
    }

    fn line_before_has_op(&self, op: &str) -> bool {
        self.tokens[..self.i]
            .iter()
            .rev()
            .take_while(|t| !matches!(t.kind, TokenKind::Newline | TokenKind::Indent | TokenKind::Dedent))
            .any(|t| t.kind == TokenKind::Op && t.text == op)
    }

    fn line_has_op(&self, op: &str) -> bool {
        self.tokens[self.i..]
            .iter()
            .take_while(|t| !matches!(t.kind, TokenKind::Newline | TokenKind::End))
            .any(|t| t.kind == TokenKind::Op && t.text == op)
    }
}

/// How a token is named in messages.
fn describe(t: &Token<'_>) -> String {
    match t.kind {
        TokenKind::Newline => "the end of the line".into(),
        TokenKind::End if t.text == "}" => "the '}' closing the f-string field".into(),
        TokenKind::End => "the end of the file".into(),
        TokenKind::Indent => "an indented block".into(),
        TokenKind::Dedent => "the end of the indented block".into(),
        TokenKind::Str => "a string".into(),
        TokenKind::Number => format!("the number `{}`", t.text),
        TokenKind::Name if is_keyword(t.text) => format!("the keyword `{}`", t.text),
        TokenKind::Name => format!("the name `{}`", t.text),
        TokenKind::Op => format!("'{}'", t.text),
    }
}
