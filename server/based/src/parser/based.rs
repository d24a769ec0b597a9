//! Based's own headers: `loop:` and `until <condition>:` (rule R9 for their shape).

use super::super::ast::{Stmt, StmtKind};
use super::super::lexer::TokenKind;
use super::{HEADER, Parser};

impl Parser<'_, '_> {
    pub(super) fn loop_stmt(&mut self) -> Stmt {
        let start = self.start();
        let next = self.nth(1);
        if next.kind == TokenKind::Op && next.text == ":" {
            self.bump();
            let span = self.span_from(start).to(next.span);
            if !matches!(self.nth(1).kind, TokenKind::Newline | TokenKind::End) {
                self.error_continue(
                    HEADER,
                    "put the talk statement on its own line, indented under `loop:`",
                    span,
                );
            }
            let body = self.suite("`loop:`", span, HEADER);
            return Stmt {
                kind: StmtKind::Loop {
                    body,
                    well_formed: true,
                },
                span,
            };
        }
        let message = if self.line_has_op("{") || self.line_has_op(";") {
            "this brace/semicolon pseudo-code is not Based syntax: write `loop:`, then the indented `name = talk(...)` line, then `until \"condition\":` clauses"
        } else if next.text == "until" {
            "`loop` and `until` go on separate lines: write `loop:`, then the indented `name = talk(...)` line, then `until \"condition\":` at the same indentation as `loop:`"
        } else {
            "a statement starting with `loop` must be exactly `loop:` (and `loop` cannot be used as a name)"
        };
        self.skip_line();
        let span = self.span_from(start);
        self.error_continue(HEADER, message, span);
        let body = self.skip_header_keep_body();
        Stmt {
            kind: StmtKind::Loop {
                body,
                well_formed: false,
            },
            span,
        }
    }

    pub(super) fn until_stmt(&mut self) -> Stmt {
        let start = self.start();
        let kw = self.bump().span;
        let (condition, alias) = if self.at_op(":") {
            self.error_continue(
                HEADER,
                "`until` needs a condition: write `until \"the user did X\":`",
                kw,
            );
            (None, None)
        } else if self.at_op("=") || self.at_op(".") || self.at_kind(TokenKind::Newline) {
            let message = "a statement starting with `until` must be `until \"condition\":` (and `until` cannot be used as a name)";
            self.skip_line();
            let span = self.span_from(start);
            self.error_continue(HEADER, message, span);
            let body = self.skip_header_keep_body();
            return Stmt {
                kind: StmtKind::Until {
                    condition: None,
                    alias: None,
                    body,
                },
                span,
            };
        } else {
            let condition = self.test();
            let alias = if self.eat_kw("as") {
                Some(self.expect_name("a name after `as`"))
            } else {
                None
            };
            (Some(condition), alias)
        };
        let span = self.span_from(start);
        let body = self.suite("`until`", span, HEADER);
        Stmt {
            kind: StmtKind::Until { condition, alias, body },
            span,
        }
    }
}
