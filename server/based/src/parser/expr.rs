//! Expression parsing, following Python's precedence from lambda and conditional
//! expressions down to atoms with call, subscript and attribute trailers.

use super::super::ast::{Arg, ArgKind, CompKind, Expr, ExprKind, Generator, Param, ParamKind};
use super::super::diagnostic::Pos;
use super::super::lexer::{Fragment, TokenKind, tokenize_fragment};
use super::{Parser, describe, is_keyword};

/// Binary operator levels from loosest to tightest binding.
const BINARY_LEVELS: [&[&str]; 6] = [
    &["|"],
    &["^"],
    &["&"],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "//", "%", "@"],
];
const COMPARISONS: [&str; 6] = ["<", ">", "==", ">=", "<=", "!="];

impl Parser<'_, '_> {
    fn node(&self, kind: ExprKind, start: Pos) -> Expr {
        Expr {
            kind,
            span: self.span_from(start),
        }
    }

    fn error_expr(&self) -> Expr {
        Expr {
            kind: ExprKind::Error,
            span: self.tok().span,
        }
    }

    /// Runs `parse` one nesting level deeper, or yields an error node at the cap.
    fn nested(&mut self, parse: fn(&mut Self) -> Expr) -> Expr {
        if !self.enter() {
            return self.error_expr();
        }
        let e = parse(self);
        self.leave();
        e
    }

    /// Whether the current token can begin an expression.
    fn starts_expr(&self) -> bool {
        let t = self.tok();
        match t.kind {
            TokenKind::Name => {
                !is_keyword(t.text)
                    || matches!(t.text, "True" | "False" | "None" | "not" | "lambda" | "await" | "yield")
            }
            TokenKind::Number | TokenKind::Str => true,
            TokenKind::Op => matches!(t.text, "(" | "[" | "{" | "-" | "+" | "~" | "*" | "..."),
            _ => false,
        }
    }

    /// `a, *b, c` — a tuple when there is a comma, as on either side of `=`.
    pub(super) fn testlist_star(&mut self) -> Expr {
        let start = self.start();
        let first = self.star_or_test();
        if !self.at_op(",") {
            return first;
        }
        let mut items = vec![first];
        while self.eat_op(",") && self.starts_expr() {
            items.push(self.star_or_test());
        }
        self.node(ExprKind::Tuple(items), start)
    }

    fn star_or_test(&mut self) -> Expr {
        if !self.at_op("*") {
            return self.test();
        }
        let start = self.start();
        self.bump();
        let inner = self.binary(0);
        self.node(ExprKind::Starred(Box::new(inner)), start)
    }

    /// Targets of `for` and comprehensions: stops before `in`.
    pub(super) fn target_list(&mut self) -> Expr {
        let start = self.start();
        let mut items = Vec::new();
        loop {
            let item = if self.at_op("*") {
                let s = self.start();
                self.bump();
                let inner = self.binary(0);
                self.node(ExprKind::Starred(Box::new(inner)), s)
            } else {
                self.binary(0)
            };
            items.push(item);
            if !self.eat_op(",") || !self.starts_expr() {
                break;
            }
        }
        if items.len() == 1 && !matches!(self.tokens[self.i - 1].text, ",") {
            return items.pop().unwrap_or_else(|| self.error_expr());
        }
        self.node(ExprKind::Tuple(items), start)
    }

    pub(super) fn test(&mut self) -> Expr {
        self.nested(Self::test_inner)
    }

    fn test_inner(&mut self) -> Expr {
        let start = self.start();
        if self.at_kw("lambda") {
            return self.lambda();
        }
        let t = self.tok();
        if t.kind == TokenKind::Name
            && !is_keyword(t.text)
            && self.nth(1).text == ":="
            && self.nth(1).kind == TokenKind::Op
        {
            let target = Expr {
                kind: ExprKind::Name(t.text.to_string()),
                span: t.span,
            };
            self.bump();
            self.bump();
            let value = self.test();
            return self.node(
                ExprKind::Walrus {
                    target: Box::new(target),
                    value: Box::new(value),
                },
                start,
            );
        }
        let body = self.or_test();
        if !self.eat_kw("if") {
            return body;
        }
        let test = self.or_test();
        if !self.eat_kw("else") {
            let found = describe(self.tok());
            self.error_here(format!(
                "expected `else` in the conditional expression `a if condition else b`, found {found}"
            ));
            return self.error_expr();
        }
        let orelse = self.test();
        self.node(
            ExprKind::IfElse {
                test: Box::new(test),
                body: Box::new(body),
                orelse: Box::new(orelse),
            },
            start,
        )
    }

    fn lambda(&mut self) -> Expr {
        let start = self.start();
        self.bump();
        let params = self.params(":", false);
        self.expect_op(":", "after the lambda parameters");
        let body = self.test();
        self.node(
            ExprKind::Lambda {
                params,
                body: Box::new(body),
            },
            start,
        )
    }

    /// Parameters of `def` (up to `)`) or `lambda` (up to `:`); leaves the closer.
    pub(super) fn params(&mut self, close: &str, annotated: bool) -> Vec<Param> {
        let mut params = Vec::new();
        // After `*` parameters are keyword-only and may lack defaults in any order.
        let mut keyword_only = false;
        while !self.at_op(close) && !self.at_statement_end() && !self.panicking {
            let start = self.start();
            let kind = if self.eat_op("**") {
                ParamKind::DoubleStar
            } else if self.eat_op("*") {
                keyword_only = true;
                if self.at_op(",") || self.at_op(close) {
                    ParamKind::Marker
                } else {
                    ParamKind::Star
                }
            } else if self.eat_op("/") {
                ParamKind::Marker
            } else {
                ParamKind::Normal
            };
            let name = if kind == ParamKind::Marker {
                String::new()
            } else {
                self.expect_name("a parameter name")
            };
            let annotation = if annotated && kind != ParamKind::Marker && self.eat_op(":") {
                Some(self.test())
            } else {
                None
            };
            let default = if kind == ParamKind::Normal && self.eat_op("=") {
                Some(self.test())
            } else {
                None
            };
            let span = self.span_from(start);
            let after_default = params.iter().any(|p: &Param| p.default.is_some());
            if kind == ParamKind::Normal && default.is_none() && after_default && !keyword_only {
                self.error_continue(
                    super::SYNTAX,
                    "a parameter without a default follows one with a default; give it a default or move it first",
                    span,
                );
            }
            params.push(Param {
                kind,
                name,
                annotation,
                default,
                span,
            });
            if !self.eat_op(",") {
                break;
            }
        }
        params
    }

    fn or_test(&mut self) -> Expr {
        self.bool_chain("or", Self::and_test)
    }

    fn and_test(&mut self) -> Expr {
        self.bool_chain("and", Self::not_test)
    }

    fn bool_chain(&mut self, op: &str, operand: fn(&mut Self) -> Expr) -> Expr {
        let start = self.start();
        let first = operand(self);
        if !self.at_kw(op) {
            return first;
        }
        let mut values = vec![first];
        while self.eat_kw(op) {
            values.push(operand(self));
        }
        self.node(
            ExprKind::BoolOp {
                op: op.to_string(),
                values,
            },
            start,
        )
    }

    fn not_test(&mut self) -> Expr {
        if !self.at_kw("not") {
            return self.comparison();
        }
        let start = self.start();
        self.bump();
        let operand = self.nested(Self::not_test);
        self.node(
            ExprKind::Unary {
                op: "not".into(),
                operand: Box::new(operand),
            },
            start,
        )
    }

    fn comparison(&mut self) -> Expr {
        let start = self.start();
        let left = self.binary(0);
        let mut ops = Vec::new();
        let mut comparators = Vec::new();
        while let Some(op) = self.comparison_op() {
            ops.push(op);
            comparators.push(self.binary(0));
        }
        if ops.is_empty() {
            return left;
        }
        self.node(
            ExprKind::Compare {
                left: Box::new(left),
                ops,
                comparators,
            },
            start,
        )
    }

    fn comparison_op(&mut self) -> Option<String> {
        let t = self.tok();
        let op = match (t.kind, t.text) {
            (TokenKind::Op, text) if COMPARISONS.contains(&text) => text,
            (TokenKind::Name, "in") => "in",
            (TokenKind::Name, "not") if self.nth(1).text == "in" => {
                self.bump();
                "not in"
            }
            (TokenKind::Name, "is") if self.nth(1).text == "not" => {
                self.bump();
                "is not"
            }
            (TokenKind::Name, "is") => "is",
            _ => return None,
        };
        self.bump();
        Some(op.to_string())
    }

    /// Left-associative binary operators at `level` of `BINARY_LEVELS` and tighter.
    pub(super) fn binary(&mut self, level: usize) -> Expr {
        let Some(ops) = BINARY_LEVELS.get(level) else {
            return self.factor();
        };
        let start = self.start();
        let mut left = self.binary(level + 1);
        let mut links = 0;
        while self.tok().kind == TokenKind::Op && ops.contains(&self.tok().text) && self.spend(1) {
            links += 1;
            let op = self.bump().text.to_string();
            let right = self.binary(level + 1);
            left = self.node(
                ExprKind::Binary {
                    left: Box::new(left),
                    op,
                    right: Box::new(right),
                },
                start,
            );
        }
        self.depth -= links;
        left
    }

    fn factor(&mut self) -> Expr {
        let t = self.tok();
        if t.kind != TokenKind::Op || !matches!(t.text, "+" | "-" | "~") {
            return self.power();
        }
        let start = self.start();
        self.bump();
        let operand = self.nested(Self::factor);
        self.node(
            ExprKind::Unary {
                op: t.text.to_string(),
                operand: Box::new(operand),
            },
            start,
        )
    }

    fn power(&mut self) -> Expr {
        let start = self.start();
        let base = if self.eat_kw("await") {
            let inner = self.primary();
            self.node(ExprKind::Await(Box::new(inner)), start)
        } else {
            self.primary()
        };
        if !self.eat_op("**") {
            return base;
        }
        let exponent = self.nested(Self::factor);
        self.node(
            ExprKind::Binary {
                left: Box::new(base),
                op: "**".into(),
                right: Box::new(exponent),
            },
            start,
        )
    }

    /// An atom followed by calls, subscripts and attribute accesses.
    fn primary(&mut self) -> Expr {
        let start = self.start();
        let mut e = self.atom();
        let mut links = 0;
        while !self.panicking && self.at_trailer() && self.spend(1) {
            links += 1;
            e = if self.eat_op("(") {
                let args = self.call_args();
                self.node(
                    ExprKind::Call {
                        func: Box::new(e),
                        args,
                    },
                    start,
                )
            } else if self.eat_op("[") {
                let index = self.subscript();
                self.node(
                    ExprKind::Subscript {
                        value: Box::new(e),
                        index: Box::new(index),
                    },
                    start,
                )
            } else {
                // `at_trailer` leaves only '.' here.
                self.bump();
                let attr = self.expect_name("an attribute name after '.'");
                self.node(
                    ExprKind::Attribute {
                        value: Box::new(e),
                        attr,
                    },
                    start,
                )
            };
        }
        self.depth -= links;
        e
    }

    fn at_trailer(&self) -> bool {
        self.at_op("(") || self.at_op("[") || self.at_op(".")
    }

    fn atom(&mut self) -> Expr {
        let start = self.start();
        let t = self.tok();
        let kind = match t.kind {
            TokenKind::Name => match t.text {
                "True" => ExprKind::True,
                "False" => ExprKind::False,
                "None" => ExprKind::None,
                word if is_keyword(word) => {
                    self.error_here(format!("expected an expression, found the keyword `{word}`"));
                    return self.error_expr();
                }
                word => ExprKind::Name(word.to_string()),
            },
            TokenKind::Number => ExprKind::Number(t.text.to_string()),
            TokenKind::Str => return self.strings(),
            TokenKind::Op => match t.text {
                "(" => return self.paren(),
                "[" => return self.list(),
                "{" => return self.braces(),
                "..." => ExprKind::Ellipsis,
                _ => return self.missing_expr(),
            },
            _ => return self.missing_expr(),
        };
        self.bump();
        self.node(kind, start)
    }

    fn missing_expr(&mut self) -> Expr {
        let found = describe(self.tok());
        let hint = if self.at_op("//") {
            "; `//` is floor division, not a comment: use `#` for comments"
        } else {
            ""
        };
        self.error_here(format!("expected an expression, found {found}{hint}"));
        self.error_expr()
    }

    /// One or more adjacent string literals; f-string fields are parsed as expressions.
    fn strings(&mut self) -> Expr {
        let start = self.start();
        let mut parts = Vec::new();
        let mut fstring = false;
        while self.at_kind(TokenKind::Str) {
            let t = self.bump();
            parts.push(t.text);
            fstring |= t.fstring;
            for field in &t.fields {
                self.fstring_field(field);
            }
        }
        let pieces = parts.len();
        self.node(
            ExprKind::Str {
                text: parts.join(" "),
                fstring,
                pieces,
            },
            start,
        )
    }

    fn fstring_field(&mut self, field: &Fragment<'_>) {
        let lexed = tokenize_fragment(field.text, field.start);
        self.diagnostics.extend(lexed.diagnostics);
        let mut sub = Parser::new(&lexed.tokens, self.depth);
        sub.testlist_star();
        if !sub.panicking && !sub.at_kind(TokenKind::End) {
            let found = describe(sub.tok());
            sub.error_here(format!(
                "f-string: the expression inside {{...}} is invalid: {found} cannot follow a complete expression"
            ));
        }
        self.diagnostics.append(&mut sub.diagnostics);
    }

    fn paren(&mut self) -> Expr {
        let start = self.start();
        self.bump();
        if self.eat_op(")") {
            return self.node(ExprKind::Tuple(Vec::new()), start);
        }
        if self.at_kw("yield") {
            let e = self.yield_expr();
            self.expect_op(")", "to close the parenthesis");
            return e;
        }
        let first = self.star_or_test();
        if self.at_comp_for() {
            let generators = self.comp_for();
            self.expect_op(")", "to close the generator expression");
            return self.comprehension(CompKind::Generator, first, None, generators, start);
        }
        if !self.at_op(",") {
            self.expect_op(")", "to close the parenthesis");
            return first;
        }
        let items = self.items_after(first, ")");
        self.expect_op(")", "to close the tuple");
        self.node(ExprKind::Tuple(items), start)
    }

    fn list(&mut self) -> Expr {
        let start = self.start();
        self.bump();
        if self.eat_op("]") {
            return self.node(ExprKind::List(Vec::new()), start);
        }
        let first = self.star_or_test();
        if self.at_comp_for() {
            let generators = self.comp_for();
            self.expect_op("]", "to close the list comprehension");
            return self.comprehension(CompKind::List, first, None, generators, start);
        }
        let items = self.items_after(first, "]");
        self.expect_op("]", "to close the list");
        self.node(ExprKind::List(items), start)
    }

    /// Comma-separated items after the first, allowing a trailing comma.
    fn items_after(&mut self, first: Expr, close: &str) -> Vec<Expr> {
        let mut items = vec![first];
        while !self.panicking && self.eat_op(",") && !self.at_op(close) {
            items.push(self.star_or_test());
        }
        items
    }

    fn comprehension(
        &self,
        kind: CompKind,
        element: Expr,
        value: Option<Expr>,
        generators: Vec<Generator>,
        start: Pos,
    ) -> Expr {
        self.node(
            ExprKind::Comprehension {
                kind,
                element: Box::new(element),
                value: value.map(Box::new),
                generators,
            },
            start,
        )
    }

    fn braces(&mut self) -> Expr {
        let start = self.start();
        self.bump();
        if self.eat_op("}") {
            return self.node(ExprKind::Dict(Vec::new()), start);
        }
        if self.at_op("**") {
            return self.dict_rest(Vec::new(), start);
        }
        let first = self.star_or_test();
        if !self.at_op(":") && !self.at_op("=") {
            return self.set_rest(first, start);
        }
        if !self.dict_colon() {
            return self.error_expr();
        }
        let value = self.test();
        if self.at_comp_for() {
            let generators = self.comp_for();
            self.expect_op("}", "to close the dict comprehension");
            return self.comprehension(CompKind::Dict, first, Some(value), generators, start);
        }
        self.dict_rest(vec![(Some(first), value)], start)
    }

    fn set_rest(&mut self, first: Expr, start: Pos) -> Expr {
        if self.at_comp_for() {
            let generators = self.comp_for();
            self.expect_op("}", "to close the set comprehension");
            return self.comprehension(CompKind::Set, first, None, generators, start);
        }
        let items = self.items_after(first, "}");
        self.expect_op("}", "to close the set");
        self.node(ExprKind::Set(items), start)
    }

    /// The remaining `key: value` / `**spread` items of a dict display.
    fn dict_rest(&mut self, mut items: Vec<(Option<Expr>, Expr)>, start: Pos) -> Expr {
        loop {
            if !items.is_empty() && (!self.eat_op(",") || self.at_op("}")) || self.panicking {
                break;
            }
            if self.eat_op("**") {
                let spread = self.binary(0);
                items.push((None, spread));
                continue;
            }
            let key = self.test();
            if !self.dict_colon() {
                break;
            }
            let value = self.test();
            items.push((Some(key), value));
        }
        self.expect_op("}", "to close the dict");
        self.node(ExprKind::Dict(items), start)
    }

    fn dict_colon(&mut self) -> bool {
        if self.eat_op(":") {
            return true;
        }
        if self.at_op("=") {
            self.error_here("dict items are written `\"key\": value`, not `key=value` (or use dict(key=value))");
        } else {
            let found = describe(self.tok());
            self.error_here(format!("expected ':' after the dictionary key, found {found}"));
        }
        false
    }

    fn at_comp_for(&self) -> bool {
        self.at_kw("for") || self.at_kw("async") && self.nth(1).text == "for"
    }

    fn comp_for(&mut self) -> Vec<Generator> {
        let mut generators = Vec::new();
        while self.at_comp_for() && !self.panicking {
            let is_async = self.eat_kw("async");
            self.bump();
            let target = self.target_list();
            if !self.eat_kw("in") {
                let found = describe(self.tok());
                self.error_here(format!("expected `in` in the comprehension, found {found}"));
            }
            let iter = self.or_test();
            let mut conditions = Vec::new();
            while self.eat_kw("if") {
                conditions.push(self.or_test());
            }
            generators.push(Generator {
                target,
                iter,
                conditions,
                is_async,
            });
        }
        generators
    }

    /// Call arguments after `(`, through the closing `)`.
    pub(super) fn call_args(&mut self) -> Vec<Arg> {
        let mut args: Vec<Arg> = Vec::new();
        while !self.at_op(")") && !self.at_statement_end() && !self.panicking {
            let arg = self.call_arg();
            let keyword_seen = args
                .iter()
                .any(|a| matches!(a.kind, ArgKind::Keyword | ArgKind::DoubleStar));
            if arg.kind == ArgKind::Positional && keyword_seen {
                self.error_continue(
                    super::SYNTAX,
                    "positional argument follows keyword argument; move it before the keyword arguments",
                    arg.value.span,
                );
            }
            args.push(arg);
            if !self.eat_op(",") {
                break;
            }
        }
        self.expect_op(")", "to close the call");
        args
    }

    fn call_arg(&mut self) -> Arg {
        let (kind, value) = if self.eat_op("**") {
            (ArgKind::DoubleStar, self.test())
        } else if self.eat_op("*") {
            (ArgKind::Star, self.test())
        } else {
            let start = self.start();
            let value = self.test();
            if self.at_comp_for() {
                let generators = self.comp_for();
                return positional(self.comprehension(CompKind::Generator, value, None, generators, start));
            }
            if !self.eat_op("=") {
                return positional(value);
            }
            let ExprKind::Name(name) = &value.kind else {
                self.error(
                    "a keyword argument needs a plain name before `=`; to compare values use `==`",
                    value.span,
                );
                return positional(value);
            };
            let name = Some(name.clone());
            return Arg {
                kind: ArgKind::Keyword,
                name,
                value: self.test(),
            };
        };
        Arg {
            kind,
            name: None,
            value,
        }
    }

    /// Subscript after `[`, through the closing `]`: an index, slice or tuple of them.
    fn subscript(&mut self) -> Expr {
        let start = self.start();
        let mut items = vec![self.slice_item()];
        let mut tuple = false;
        while !self.panicking && self.eat_op(",") {
            tuple = true;
            if self.at_op("]") {
                break;
            }
            items.push(self.slice_item());
        }
        self.expect_op("]", "to close the subscript");
        match items.pop() {
            Some(only) if !tuple => only,
            last => {
                items.extend(last);
                self.node(ExprKind::Tuple(items), start)
            }
        }
    }

    fn slice_item(&mut self) -> Expr {
        let start = self.start();
        let lower = if self.at_op(":") {
            None
        } else {
            Some(self.star_or_test())
        };
        if !self.eat_op(":") {
            return lower.unwrap_or_else(|| self.error_expr());
        }
        let bound = |p: &mut Self| {
            if p.at_op(":") || p.at_op("]") || p.at_op(",") {
                None
            } else {
                Some(Box::new(p.test()))
            }
        };
        let upper = bound(self);
        let step = if self.eat_op(":") { bound(self) } else { None };
        self.node(
            ExprKind::Slice {
                lower: lower.map(Box::new),
                upper,
                step,
            },
            start,
        )
    }

    pub(super) fn yield_expr(&mut self) -> Expr {
        let start = self.start();
        self.bump();
        let from = self.eat_kw("from");
        let value = if from || self.starts_expr() {
            Some(Box::new(self.testlist_star()))
        } else {
            None
        };
        self.node(ExprKind::Yield { value, from }, start)
    }
}

fn positional(value: Expr) -> Arg {
    Arg {
        kind: ArgKind::Positional,
        name: None,
        value,
    }
}
