//! Simple statements: assignments, expressions, `return`, imports and the like.

use super::super::ast::{Alias, Expr, ExprKind, Stmt, StmtKind};
use super::super::lexer::TokenKind;
use super::{AUGMENTED, Parser, SYNTAX, describe};

impl Parser<'_, '_> {
    /// One line of `;`-separated simple statements, including its NEWLINE.
    pub(super) fn simple_line(&mut self, out: &mut Vec<Stmt>) {
        loop {
            let stmt = self.small_stmt();
            out.push(stmt);
            if self.panicking || !self.eat_op(";") || self.at_statement_end() {
                break;
            }
        }
        if self.panicking {
            return;
        }
        match self.tok().kind {
            TokenKind::Newline => {
                self.bump();
            }
            TokenKind::End => {}
            _ => {
                let found = describe(self.tok());
                let hint = if self.line_before_has_op("//") {
                    "; note that `//` is floor division, not a comment: use `#` for comments"
                } else {
                    "; is an operator, a comma or a bracket missing?"
                };
                self.error_here(format!("{found} cannot follow a complete statement{hint}"));
            }
        }
    }

    fn small_stmt(&mut self) -> Stmt {
        let start = self.start();
        let t = self.tok();
        let keyword = if t.kind == TokenKind::Name { t.text } else { "" };
        let kind = match keyword {
            "pass" | "break" | "continue" => {
                self.bump();
                match keyword {
                    "pass" => StmtKind::Pass,
                    "break" => StmtKind::Break,
                    _ => StmtKind::Continue,
                }
            }
            "return" => {
                self.bump();
                StmtKind::Return(if self.at_statement_end() {
                    None
                } else {
                    Some(self.testlist_star())
                })
            }
            "yield" => StmtKind::Expr(self.yield_expr()),
            "import" => self.import_stmt(),
            "from" => self.import_from_stmt(),
            "raise" => self.raise_stmt(),
            "global" | "nonlocal" => self.names_stmt(keyword),
            "del" => {
                self.bump();
                StmtKind::Delete(vec![self.testlist_star()])
            }
            "assert" => {
                self.bump();
                let test = self.test();
                let msg = if self.eat_op(",") { Some(self.test()) } else { None };
                StmtKind::Assert { test, msg }
            }
            _ => self.expr_stmt(),
        };
        Stmt {
            kind,
            span: self.span_from(start),
        }
    }

    fn import_stmt(&mut self) -> StmtKind {
        self.bump();
        let mut names = Vec::new();
        loop {
            let name = self.dotted_name();
            let asname = if self.eat_kw("as") {
                Some(self.expect_name("a name after `as`"))
            } else {
                None
            };
            names.push(Alias { name, asname });
            if !self.eat_op(",") {
                return StmtKind::Import(names);
            }
        }
    }

    fn dotted_name(&mut self) -> String {
        let mut name = self.expect_name("a module name");
        while self.eat_op(".") {
            name.push('.');
            name.push_str(&self.expect_name("a name after '.'"));
        }
        name
    }

    fn import_from_stmt(&mut self) -> StmtKind {
        self.bump();
        let mut module = String::new();
        while self.at_op(".") || self.at_op("...") {
            module.push_str(self.bump().text);
        }
        if !self.at_kw("import") {
            module.push_str(&self.dotted_name());
        }
        if !self.eat_kw("import") {
            let found = describe(self.tok());
            self.error_here(format!("expected `import` after `from {module}`, found {found}"));
            return StmtKind::ImportFrom {
                module,
                names: Vec::new(),
            };
        }
        if self.eat_op("*") {
            return StmtKind::ImportFrom {
                module,
                names: vec![Alias {
                    name: "*".into(),
                    asname: None,
                }],
            };
        }
        let parenthesized = self.eat_op("(");
        let mut names = Vec::new();
        loop {
            let name = self.expect_name("a name to import");
            let asname = if self.eat_kw("as") {
                Some(self.expect_name("a name after `as`"))
            } else {
                None
            };
            names.push(Alias { name, asname });
            if !self.eat_op(",") || parenthesized && self.at_op(")") {
                break;
            }
        }
        if parenthesized {
            self.expect_op(")", "to close the import list");
        }
        StmtKind::ImportFrom { module, names }
    }

    fn raise_stmt(&mut self) -> StmtKind {
        self.bump();
        if self.at_statement_end() {
            return StmtKind::Raise { exc: None, cause: None };
        }
        let exc = Some(self.test());
        let cause = if self.eat_kw("from") { Some(self.test()) } else { None };
        StmtKind::Raise { exc, cause }
    }

    fn names_stmt(&mut self, keyword: &str) -> StmtKind {
        self.bump();
        let mut names = vec![self.expect_name("a name")];
        while self.eat_op(",") {
            names.push(self.expect_name("a name"));
        }
        if keyword == "global" {
            StmtKind::Global(names)
        } else {
            StmtKind::Nonlocal(names)
        }
    }

    fn expr_stmt(&mut self) -> StmtKind {
        let first = self.testlist_star();
        if self.at_op("=") {
            let mut targets = vec![first];
            let value = loop {
                self.bump();
                let value = self.assigned_value();
                if !self.at_op("=") {
                    break value;
                }
                targets.push(value);
            };
            for target in &targets {
                self.check_target(target);
            }
            return StmtKind::Assign { targets, value };
        }
        let t = self.tok();
        if t.kind == TokenKind::Op && AUGMENTED.contains(&t.text) {
            self.bump();
            if !matches!(
                first.kind,
                ExprKind::Name(_) | ExprKind::Attribute { .. } | ExprKind::Subscript { .. } | ExprKind::Error
            ) {
                self.error_continue(
                    SYNTAX,
                    format!(
                        "cannot use `{}` on {}; the target must be a name, attribute or subscript",
                        t.text,
                        expr_description(&first)
                    ),
                    first.span,
                );
            }
            let value = self.assigned_value();
            return StmtKind::AugAssign {
                target: first,
                op: t.text.to_string(),
                value,
            };
        }
        if self.eat_op(":") {
            let annotation = self.test();
            let value = if self.eat_op("=") {
                Some(self.assigned_value())
            } else {
                None
            };
            self.check_target(&first);
            return StmtKind::AnnAssign {
                target: first,
                annotation,
                value,
            };
        }
        StmtKind::Expr(first)
    }

    fn assigned_value(&mut self) -> Expr {
        if self.at_kw("yield") {
            self.yield_expr()
        } else {
            self.testlist_star()
        }
    }

    fn check_target(&mut self, target: &Expr) {
        match &target.kind {
            ExprKind::Name(_) | ExprKind::Attribute { .. } | ExprKind::Subscript { .. } | ExprKind::Error => {}
            ExprKind::Tuple(items) | ExprKind::List(items) => items.iter().for_each(|t| self.check_target(t)),
            ExprKind::Starred(inner) => self.check_target(inner),
            _ => {
                let hint = if matches!(target.kind, ExprKind::Compare { .. }) {
                    ""
                } else {
                    "; to compare values use `==`"
                };
                self.error_continue(
                    SYNTAX,
                    format!(
                        "cannot assign to {}; the left side of `=` must be a name, attribute, subscript or a tuple of them{hint}",
                        expr_description(target)
                    ),
                    target.span,
                );
            }
        }
    }
}

/// How an expression is named in messages.
fn expr_description(e: &Expr) -> &'static str {
    match e.kind {
        ExprKind::Call { .. } => "a function call",
        ExprKind::Number(_) | ExprKind::Str { .. } | ExprKind::True | ExprKind::False | ExprKind::None => "a literal",
        ExprKind::Compare { .. } => "a comparison",
        ExprKind::Dict(_) | ExprKind::Set(_) => "a dict or set display",
        ExprKind::Comprehension { .. } => "a comprehension",
        ExprKind::Lambda { .. } => "a lambda",
        ExprKind::IfElse { .. } => "a conditional expression",
        ExprKind::Await(_) => "an await expression",
        _ => "an expression",
    }
}
