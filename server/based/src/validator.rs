//! Based's structural rules (R1–R7 and the `return`/`break`/`continue` placement
//! part of R8) checked on the syntax tree. Syntax-level errors come from the lexer
//! and parser; see `mod.rs` for the full list of codes.

use super::ast::{Expr, ExprKind, Stmt, StmtKind};
use super::diagnostic::{Diagnostic, Span};

/// How many characters of a condition the engine uses to tell untils apart.
const SLUG_LEN: usize = 30;

/// Checks a parsed file and returns the rule diagnostics (unsorted).
pub fn check(body: &[Stmt]) -> Vec<Diagnostic> {
    let mut v = Validator {
        diagnostics: Vec::new(),
    };
    v.block(body, Ctx::default());
    v.diagnostics
}

/// What encloses the statement being checked.
#[derive(Debug, Clone, Copy, Default)]
struct Ctx {
    in_function: bool,
    /// Inside a `for`/`while` body or an until body: `break`/`continue` are legal.
    in_loop: bool,
    /// Inside an until body: `return` goes back to the loop.
    in_until: bool,
}

struct Validator {
    diagnostics: Vec<Diagnostic>,
}

impl Validator {
    fn error(&mut self, code: &str, message: impl Into<String>, span: Span) {
        self.diagnostics.push(Diagnostic::error(code, message, span));
    }

    fn block(&mut self, stmts: &[Stmt], ctx: Ctx) {
        self.chains(stmts);
        for s in stmts {
            self.stmt(s, ctx);
        }
    }

    /// R2 and R4: every `loop:` is followed by untils, every until follows a loop
    /// or another until, all as siblings in the same block.
    fn chains(&mut self, stmts: &[Stmt]) {
        let mut chain: Vec<&Expr> = Vec::new();
        for (i, s) in stmts.iter().enumerate() {
            let next = stmts.get(i + 1).map(|n| &n.kind);
            match &s.kind {
                StmtKind::Loop { well_formed: true, .. } if !matches!(next, Some(StmtKind::Until { .. })) => self.error(
                    "R2",
                    "`loop:` must be followed by at least one `until \"condition\":` clause at the same indentation as `loop:`",
                    s.span,
                ),
                StmtKind::Loop { .. } => chain.clear(),
                StmtKind::Until { condition, .. } => {
                    let previous = i.checked_sub(1).map(|p| &stmts[p].kind);
                    if !matches!(previous, Some(StmtKind::Loop { .. } | StmtKind::Until { .. })) {
                        self.error(
                            "R4",
                            "this `until` is not attached to a `loop:`; an `until` must come right after the loop body or after another `until` block of the same chain, at the same indentation as `loop:`",
                            s.span,
                        );
                    }
                    if let Some(c) = condition {
                        self.slug_collision(&chain, c);
                        chain.push(c);
                    }
                }
                _ => {}
            }
        }
    }

    /// W-slug: the v1 engine keys untils by a 30-character slug of the condition.
    fn slug_collision(&mut self, chain: &[&Expr], condition: &Expr) {
        let Some(slug) = slug(condition) else { return };
        if let Some(other) = chain.iter().find(|c| slug_eq(c, &slug)) {
            self.diagnostics.push(Diagnostic::warning(
                "W-slug",
                format!(
                    "this condition collides with the one on line {}: the engine tells conditions apart by their first {SLUG_LEN} characters (lower-cased, spaces as `_`); make them differ earlier",
                    other.span.start.line
                ),
                condition.span,
            ));
        }
    }

    fn stmt(&mut self, s: &Stmt, ctx: Ctx) {
        match &s.kind {
            StmtKind::Expr(e) => self.expr(e, ctx),
            StmtKind::Assign { targets, value } => {
                targets.iter().for_each(|t| self.expr(t, ctx));
                self.expr(value, ctx);
            }
            StmtKind::AugAssign { target, value, .. } => self.exprs([target, value], ctx),
            StmtKind::AnnAssign {
                target,
                annotation,
                value,
            } => {
                self.exprs([target, annotation], ctx);
                value.iter().for_each(|v| self.expr(v, ctx));
            }
            StmtKind::If { branches, orelse } => {
                for (test, body) in branches {
                    self.expr(test, ctx);
                    self.block(body, ctx);
                }
                self.block(orelse, ctx);
            }
            StmtKind::For {
                target,
                iter,
                body,
                orelse,
                ..
            } => {
                self.exprs([target, iter], ctx);
                self.block(body, Ctx { in_loop: true, ..ctx });
                self.block(orelse, ctx);
            }
            StmtKind::While { test, body, orelse } => {
                self.error(
                    "R6",
                    "`while` loops are not allowed in Based: for a conversation write `loop:` with one `name = talk(...)` line and `until \"condition\":` clauses; for plain iteration use `for`",
                    s.span,
                );
                self.expr(test, ctx);
                self.block(body, Ctx { in_loop: true, ..ctx });
                self.block(orelse, ctx);
            }
            StmtKind::Try {
                body,
                handlers,
                orelse,
                finalbody,
            } => {
                self.block(body, ctx);
                for h in handlers {
                    h.kind.iter().for_each(|k| self.expr(k, ctx));
                    self.block(&h.body, ctx);
                }
                self.block(orelse, ctx);
                self.block(finalbody, ctx);
            }
            StmtKind::With { items, body, .. } => {
                for (context, target) in items {
                    self.expr(context, ctx);
                    target.iter().for_each(|t| self.expr(t, ctx));
                }
                self.block(body, ctx);
            }
            StmtKind::Match { subject, cases } => {
                self.expr(subject, ctx);
                cases.iter().for_each(|body| self.block(body, ctx));
            }
            StmtKind::FunctionDef {
                params,
                returns,
                body,
                decorators,
                ..
            } => {
                decorators.iter().chain(returns).for_each(|e| self.expr(e, ctx));
                params
                    .iter()
                    .flat_map(|p| p.default.iter().chain(&p.annotation))
                    .for_each(|e| self.expr(e, ctx));
                self.block(
                    body,
                    Ctx {
                        in_function: true,
                        in_loop: false,
                        in_until: false,
                    },
                );
            }
            StmtKind::ClassDef {
                bases,
                body,
                decorators,
                ..
            } => {
                decorators
                    .iter()
                    .chain(bases.iter().map(|a| &a.value))
                    .for_each(|e| self.expr(e, ctx));
                self.block(
                    body,
                    Ctx {
                        in_function: ctx.in_function,
                        in_loop: false,
                        in_until: false,
                    },
                );
            }
            StmtKind::Return(value) => {
                if !ctx.in_function && !ctx.in_until {
                    self.error("R8", "`return` outside a function or an `until` body; remove it, or move this code into an `until` block", s.span);
                }
                value.iter().for_each(|v| self.expr(v, ctx));
            }
            StmtKind::Break | StmtKind::Continue if !ctx.in_loop => {
                let word = if matches!(s.kind, StmtKind::Break) {
                    "break"
                } else {
                    "continue"
                };
                self.error(
                    "R8",
                    format!("`{word}` outside a loop; it is only allowed inside a `for` loop or an `until` body"),
                    s.span,
                );
            }
            StmtKind::Raise { exc, cause } => exc.iter().chain(cause).for_each(|e| self.expr(e, ctx)),
            StmtKind::Delete(targets) => targets.iter().for_each(|t| self.expr(t, ctx)),
            StmtKind::Assert { test, msg } => std::iter::once(test).chain(msg).for_each(|e| self.expr(e, ctx)),
            StmtKind::Loop { body, well_formed } => {
                self.not_in_function("`loop:`", s.span, ctx);
                self.loop_body(body, *well_formed, s.span, ctx);
            }
            StmtKind::Until { condition, alias, body } => {
                self.not_in_function("`until`", s.span, ctx);
                if let Some(c) = condition {
                    self.condition(c, alias.is_some());
                    self.expr(c, ctx);
                }
                self.block(
                    body,
                    Ctx {
                        in_loop: true,
                        in_until: true,
                        ..ctx
                    },
                );
            }
            StmtKind::Error { body } => self.block(body, ctx),
            StmtKind::Break
            | StmtKind::Continue
            | StmtKind::Pass
            | StmtKind::Import(_)
            | StmtKind::ImportFrom { .. }
            | StmtKind::Global(_)
            | StmtKind::Nonlocal(_) => {}
        }
    }

    /// R7: the conversation constructs work only outside `def` bodies.
    fn not_in_function(&mut self, what: &str, span: Span, ctx: Ctx) {
        if ctx.in_function {
            self.error(
                "R7",
                format!("{what} cannot be used inside a function (`def`); put the conversation at the top level or inside an `until` body"),
                span,
            );
        }
    }

    /// R1: the body is exactly one `name = talk(...)` statement (comments aside).
    fn loop_body(&mut self, body: &[Stmt], well_formed: bool, header: Span, ctx: Ctx) {
        let mut statements = body.iter().filter(|s| !matches!(s.kind, StmtKind::Until { .. }));
        let first = statements.next();
        if well_formed {
            match first {
                None => self.error("R1", "the `loop:` body must hold exactly one statement: `name = talk(...)`", header),
                Some(s) if is_talk_assignment(s) => {}
                Some(s) if matches!(&s.kind, StmtKind::Expr(e) if e.is_talk_call()) => {
                    self.error("R1", "assign the talk result to a variable, e.g. `reply = talk(...)`; the `until` clauses need it", s.span);
                }
                Some(s) => self.error(
                    "R1",
                    "the only statement allowed in a `loop:` body is `name = talk(...)`; move this statement before the `loop:` or into an `until` block",
                    s.span,
                ),
            }
            if let Some(extra) = statements.next() {
                self.error(
                    "R1",
                    "a `loop:` body holds exactly one statement, the `name = talk(...)` line; move this statement into an `until` block (or before the `loop:`)",
                    extra.span,
                );
            }
        }
        for s in body {
            match &s.kind {
                StmtKind::Until { .. } => self.error(
                    "R4",
                    "`until` must be at the same indentation as its `loop:`, not inside the loop body; dedent it",
                    s.span,
                ),
                // The loop's own talk call: check its parts, but it is no stray talk.
                StmtKind::Assign { targets, value } if value.is_talk_call() => {
                    targets
                        .iter()
                        .chain(value.children().into_iter().skip(1))
                        .for_each(|e| self.expr(e, ctx));
                    continue;
                }
                StmtKind::Expr(value) if value.is_talk_call() => {
                    value.children().into_iter().skip(1).for_each(|e| self.expr(e, ctx));
                    continue;
                }
                _ => {}
            }
            self.stmt(s, Ctx { in_loop: false, ..ctx });
        }
    }

    /// R3: in engine v1 a condition is a plain string literal.
    fn condition(&mut self, c: &Expr, has_alias: bool) {
        let message = match &c.kind {
            _ if has_alias => {
                "`until <schema> as name:` is engine v2 syntax; Kafka targets v1, where the condition is a plain string: `until \"the user gave their email\":`"
            }
            ExprKind::Str {
                fstring: false,
                pieces: 1,
                ..
            } => return,
            ExprKind::Str { fstring: true, .. } => {
                "an `until` condition must be a plain string, not an f-string: the engine matches this text against the conversation, so write it out in words"
            }
            ExprKind::Str { .. } => "an `until` condition must be a single string literal, not several joined together",
            _ => {
                "an `until` condition must be a string literal describing when to leave the loop, e.g. `until \"the user gave their name\":`; expressions and variables are not supported"
            }
        };
        self.error("R3", message, c.span);
    }

    fn exprs<'e>(&mut self, exprs: impl IntoIterator<Item = &'e Expr>, ctx: Ctx) {
        exprs.into_iter().for_each(|e| self.expr(e, ctx));
    }

    /// Expression-level checks: stray `talk` calls and lower-case booleans.
    fn expr(&mut self, e: &Expr, ctx: Ctx) {
        if e.is_talk_call() {
            if ctx.in_function {
                self.error("R7", "`talk(...)` cannot be called inside a function (`def`); use it as the single statement of a top-level `loop:`", e.span);
            } else {
                self.diagnostics.push(Diagnostic::warning(
                    "W-talk",
                    "`talk(...)` outside a `loop:` body; talk is meant to be the single `name = talk(...)` line of a `loop:` followed by `until` clauses",
                    e.span,
                ));
            }
        }
        if let ExprKind::Name(name) = &e.kind
            && (name == "true" || name == "false")
        {
            let fixed = if name == "true" { "True" } else { "False" };
            self.diagnostics.push(Diagnostic::warning(
                "W-bool",
                format!("`{name}` is not a Python boolean (it is an undefined name unless the engine defines it); write `{fixed}`"),
                e.span,
            ));
        }
        for child in e.children() {
            self.expr(child, ctx);
        }
    }
}

fn is_talk_assignment(s: &Stmt) -> bool {
    matches!(&s.kind, StmtKind::Assign { targets, value } if targets.len() == 1 && matches!(targets[0].kind, ExprKind::Name(_)) && value.is_talk_call())
}

/// The engine's dispatch key for a literal condition: lower-cased, spaces as `_`,
/// cut to `SLUG_LEN` characters.
fn slug(condition: &Expr) -> Option<String> {
    let ExprKind::Str {
        text,
        fstring: false,
        pieces: 1,
    } = &condition.kind
    else {
        return None;
    };
    let body = text.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let quote = if body.starts_with("\"\"\"") || body.starts_with("'''") {
        3
    } else {
        1
    };
    let inner = body.get(quote..body.len().saturating_sub(quote))?;
    Some(inner.to_lowercase().replace(' ', "_").chars().take(SLUG_LEN).collect())
}

fn slug_eq(other: &Expr, slug_text: &str) -> bool {
    slug(other).is_some_and(|s| s == slug_text)
}
