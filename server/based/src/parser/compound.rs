//! Python compound statements: `if`, `while`, `for`, `try`, `with`, `match`,
//! `def`, `class`, decorators and `async` forms.

use super::super::ast::{Expr, ExprKind, Handler, Stmt, StmtKind};
use super::super::lexer::TokenKind;
use super::{Parser, SYNTAX, describe};

impl Parser<'_, '_> {
    /// `if` with its `elif` branches, kept flat so long chains do not nest.
    /// `else if` is reported and read as `elif`.
    pub(super) fn if_stmt(&mut self) -> Stmt {
        let mut branches = Vec::new();
        let mut span = None;
        loop {
            let (test, header) = self.header(|p| {
                p.bump();
                p.test()
            });
            span.get_or_insert(header);
            let body = self.suite("`if`", header, SYNTAX);
            branches.push((test, body));
            if self.at_kw("else") && self.nth(1).kind == TokenKind::Name && self.nth(1).text == "if" {
                let typo = self.tok().span.to(self.nth(1).span);
                self.error_continue(SYNTAX, "write `elif` instead of `else if`", typo);
                self.bump();
            } else if !self.at_kw("elif") {
                break;
            }
        }
        let orelse = self.else_block("`else`");
        Stmt {
            kind: StmtKind::If { branches, orelse },
            span: span.unwrap_or_default(),
        }
    }

    fn else_block(&mut self, what: &str) -> Vec<Stmt> {
        if !self.at_kw("else") {
            return Vec::new();
        }
        let span = self.bump().span;
        self.suite(what, span, SYNTAX)
    }

    pub(super) fn while_stmt(&mut self) -> Stmt {
        let (test, span) = self.header(|p| {
            p.bump();
            p.test()
        });
        let body = self.suite("`while`", span, SYNTAX);
        let orelse = self.else_block("`else`");
        Stmt {
            kind: StmtKind::While { test, body, orelse },
            span,
        }
    }

    pub(super) fn for_stmt(&mut self, is_async: bool) -> Stmt {
        let start = self.start();
        self.bump();
        let target = self.target_list();
        if !self.eat_kw("in") {
            let found = describe(self.tok());
            self.error_here(format!("expected `in` after the loop variable of `for`, found {found}"));
        }
        let iter = if self.panicking {
            Expr {
                kind: ExprKind::Error,
                span: self.tok().span,
            }
        } else {
            self.testlist_star()
        };
        let span = self.span_from(start);
        let body = self.suite("`for`", span, SYNTAX);
        let orelse = self.else_block("`else`");
        Stmt {
            kind: StmtKind::For {
                is_async,
                target,
                iter,
                body,
                orelse,
            },
            span,
        }
    }

    pub(super) fn try_stmt(&mut self) -> Stmt {
        let span = self.bump().span;
        let body = self.suite("`try`", span, SYNTAX);
        let mut handlers = Vec::new();
        while self.at_kw("except") {
            handlers.push(self.handler());
        }
        let orelse = self.else_block("`else`");
        let finalbody = if self.at_kw("finally") {
            let f = self.bump().span;
            self.suite("`finally`", f, SYNTAX)
        } else {
            Vec::new()
        };
        if handlers.is_empty() && finalbody.is_empty() {
            self.error_continue(
                SYNTAX,
                "a `try` block needs at least one `except` or a `finally` clause",
                span,
            );
        }
        Stmt {
            kind: StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            },
            span,
        }
    }

    fn handler(&mut self) -> Handler {
        let ((kind, name), span) = self.header(|p| {
            p.bump();
            p.eat_op("*");
            if p.at_op(":") {
                return (None, None);
            }
            let kind = p.test();
            let name = if p.eat_kw("as") {
                Some(p.expect_name("a name after `as`"))
            } else {
                None
            };
            (Some(kind), name)
        });
        let body = self.suite("`except`", span, SYNTAX);
        Handler { kind, name, body, span }
    }

    pub(super) fn with_stmt(&mut self, is_async: bool) -> Stmt {
        let (items, span) = self.header(|p| {
            p.bump();
            if !p.at_parenthesized_with() {
                return p.with_items(":");
            }
            p.bump();
            let items = p.with_items(")");
            p.expect_op(")", "to close the `with` items");
            items
        });
        let body = self.suite("`with`", span, SYNTAX);
        Stmt {
            kind: StmtKind::With { is_async, items, body },
            span,
        }
    }

    fn with_items(&mut self, close: &str) -> Vec<(Expr, Option<Expr>)> {
        let mut items = Vec::new();
        loop {
            let context = self.test();
            let target = if self.eat_kw("as") { Some(self.binary(0)) } else { None };
            items.push((context, target));
            if !self.eat_op(",") || self.at_op(close) {
                return items;
            }
        }
    }

    /// `with (a as b, c):` — parentheses around items, told apart from a
    /// parenthesized expression by an `as` directly inside them.
    fn at_parenthesized_with(&self) -> bool {
        if !self.at_op("(") {
            return false;
        }
        let mut depth = 0usize;
        let mut has_as = false;
        for (k, t) in self.tokens[self.i..].iter().enumerate() {
            match (t.kind, t.text) {
                (TokenKind::Newline | TokenKind::End, _) => return false,
                (TokenKind::Op, "(" | "[" | "{") => depth += 1,
                (TokenKind::Op, ")" | "]" | "}") => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        let next = self.nth(k + 1);
                        return has_as && next.kind == TokenKind::Op && next.text == ":";
                    }
                }
                (TokenKind::Name, "as") if depth == 1 => has_as = true,
                _ => {}
            }
        }
        false
    }

    /// `match` is a soft keyword: a statement only when its line ends with ':' and
    /// an indented `case` follows.
    pub(super) fn at_match_stmt(&self) -> bool {
        let line_end = self.tokens[self.i..]
            .iter()
            .position(|t| matches!(t.kind, TokenKind::Newline | TokenKind::End))
            .unwrap_or(0);
        let last = self.nth(line_end.saturating_sub(1));
        line_end > 1
            && last.kind == TokenKind::Op
            && last.text == ":"
            && self.nth(line_end + 1).kind == TokenKind::Indent
            && self.nth(line_end + 2).text == "case"
    }

    /// `match subject:` with `case` blocks. Patterns and guards are skipped, not
    /// checked: Based flows do not use them, and they have a grammar of their own.
    pub(super) fn match_stmt(&mut self) -> Stmt {
        let (subject, span) = self.header(|p| {
            p.bump();
            p.testlist_star()
        });
        // The line ends with ':' and an INDENT follows, as `at_match_stmt` checked.
        self.skip_line();
        self.bump();
        self.bump();
        let mut cases = Vec::new();
        while self.at_kw("case") {
            let case = self.tok().span;
            self.skip_pattern();
            cases.push(self.suite("`case`", case, SYNTAX));
        }
        if !self.eat_kind(TokenKind::Dedent) && !self.at_kind(TokenKind::End) {
            let found = describe(self.tok());
            self.error_here(format!("expected `case` inside `match`, found {found}"));
        }
        Stmt {
            kind: StmtKind::Match { subject, cases },
            span,
        }
    }

    /// Skips a `case` pattern and guard up to the ':' outside brackets.
    fn skip_pattern(&mut self) {
        let mut depth = 0usize;
        while !matches!(self.tok().kind, TokenKind::Newline | TokenKind::End) {
            match self.tok().text {
                ":" if depth == 0 => return,
                "(" | "[" | "{" => depth += 1,
                ")" | "]" | "}" => depth = depth.saturating_sub(1),
                _ => {}
            }
            self.bump();
        }
    }

    fn eat_kind(&mut self, kind: TokenKind) -> bool {
        let found = self.at_kind(kind);
        if found {
            self.bump();
        }
        found
    }

    pub(super) fn def_stmt(&mut self, is_async: bool, decorators: Vec<Expr>) -> Stmt {
        let ((name, params, returns), span) = self.header(|p| {
            p.bump();
            let name = p.expect_name("a function name after `def`");
            let params = if p.expect_op("(", "after the function name") {
                p.params(")", true)
            } else {
                Vec::new()
            };
            if !p.panicking {
                p.expect_op(")", "to close the parameter list");
            }
            let returns = if p.eat_op("->") { Some(p.test()) } else { None };
            (name, params, returns)
        });
        let body = self.suite("`def`", span, SYNTAX);
        Stmt {
            kind: StmtKind::FunctionDef {
                is_async,
                name,
                params,
                returns,
                body,
                decorators,
            },
            span,
        }
    }

    pub(super) fn class_stmt(&mut self, decorators: Vec<Expr>) -> Stmt {
        let ((name, bases), span) = self.header(|p| {
            p.bump();
            let name = p.expect_name("a class name after `class`");
            let bases = if p.eat_op("(") { p.call_args() } else { Vec::new() };
            (name, bases)
        });
        let body = self.suite("`class`", span, SYNTAX);
        Stmt {
            kind: StmtKind::ClassDef {
                name,
                bases,
                body,
                decorators,
            },
            span,
        }
    }

    pub(super) fn async_stmt(&mut self, decorators: Vec<Expr>) -> Stmt {
        let span = self.bump().span;
        match self.tok().text {
            "def" => self.def_stmt(true, decorators),
            "for" if decorators.is_empty() => self.for_stmt(true),
            "with" if decorators.is_empty() => self.with_stmt(true),
            _ => {
                self.error("expected `def`, `for` or `with` after `async`", span);
                self.bad_header()
            }
        }
    }

    pub(super) fn decorated(&mut self) -> Stmt {
        let mut decorators = Vec::new();
        while self.eat_op("@") {
            decorators.push(self.test());
            if !self.panicking && !self.at_kind(TokenKind::Newline) {
                let found = describe(self.tok());
                self.error_here(format!(
                    "expected the end of the line after the decorator, found {found}"
                ));
            }
            self.skip_line();
            self.bump();
            self.panicking = false;
        }
        match self.tok().text {
            "def" => self.def_stmt(false, decorators),
            "class" => self.class_stmt(decorators),
            "async" => self.async_stmt(decorators),
            _ => {
                self.error_here("a decorator must be followed by `def`, `async def` or `class`");
                self.bad_header()
            }
        }
    }

    pub(super) fn stray_clause(&mut self) -> Stmt {
        let t = self.tok();
        let owner = match t.text {
            "elif" => "an `if`",
            "else" => "an `if`, `for`, `while` or `try`",
            _ => "a `try`",
        };
        self.error(
            format!(
                "`{}` without {owner} at the same indentation just above it; check the indentation",
                t.text
            ),
            t.span,
        );
        self.bad_header()
    }
}
