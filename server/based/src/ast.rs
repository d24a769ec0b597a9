//! Syntax tree for Based. Every node carries the span it was parsed from.
//!
//! `loop:` and `until` clauses are kept as sibling statements in their block, in
//! source order; chaining them (R2/R4) is the validator's job, which lets an orphan
//! `until` still be parsed and reported precisely.

use super::diagnostic::Span;

#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ExprKind {
    Name(String),
    Number(String),
    /// One literal or several adjacent ones; `text` is the source of all of them.
    Str {
        text: String,
        fstring: bool,
        pieces: usize,
    },
    True,
    False,
    None,
    Ellipsis,
    Tuple(Vec<Expr>),
    List(Vec<Expr>),
    Set(Vec<Expr>),
    /// Items; a `None` key is a `**mapping` spread.
    Dict(Vec<(Option<Expr>, Expr)>),
    /// List/set/dict comprehension or generator; `value` is set for dicts.
    Comprehension {
        kind: CompKind,
        element: Box<Expr>,
        value: Option<Box<Expr>>,
        generators: Vec<Generator>,
    },
    Call {
        func: Box<Expr>,
        args: Vec<Arg>,
    },
    Attribute {
        value: Box<Expr>,
        attr: String,
    },
    Subscript {
        value: Box<Expr>,
        index: Box<Expr>,
    },
    Slice {
        lower: Option<Box<Expr>>,
        upper: Option<Box<Expr>>,
        step: Option<Box<Expr>>,
    },
    Unary {
        op: String,
        operand: Box<Expr>,
    },
    Binary {
        left: Box<Expr>,
        op: String,
        right: Box<Expr>,
    },
    /// `and` / `or` chains.
    BoolOp {
        op: String,
        values: Vec<Expr>,
    },
    Compare {
        left: Box<Expr>,
        ops: Vec<String>,
        comparators: Vec<Expr>,
    },
    IfElse {
        test: Box<Expr>,
        body: Box<Expr>,
        orelse: Box<Expr>,
    },
    Lambda {
        params: Vec<Param>,
        body: Box<Expr>,
    },
    Starred(Box<Expr>),
    Await(Box<Expr>),
    Yield {
        value: Option<Box<Expr>>,
        from: bool,
    },
    Walrus {
        target: Box<Expr>,
        value: Box<Expr>,
    },
    /// Placeholder where parsing failed; the error is already reported.
    Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompKind {
    List,
    Set,
    Dict,
    Generator,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generator {
    pub target: Expr,
    pub iter: Expr,
    pub conditions: Vec<Expr>,
    pub is_async: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    Positional,
    Keyword,
    Star,
    DoubleStar,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Arg {
    pub kind: ArgKind,
    pub name: Option<String>,
    pub value: Expr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Normal,
    Star,
    DoubleStar,
    /// The bare `*` or `/` markers.
    Marker,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    pub kind: ParamKind,
    pub name: String,
    pub annotation: Option<Expr>,
    pub default: Option<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub kind: StmtKind,
    /// The statement's first logical line (the header of a compound statement).
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Handler {
    pub kind: Option<Expr>,
    pub name: Option<String>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    pub name: String,
    pub asname: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StmtKind {
    Expr(Expr),
    Assign {
        targets: Vec<Expr>,
        value: Expr,
    },
    AugAssign {
        target: Expr,
        op: String,
        value: Expr,
    },
    AnnAssign {
        target: Expr,
        annotation: Expr,
        value: Option<Expr>,
    },
    /// The `if` branch followed by any `elif` branches, each a test and a body.
    If {
        branches: Vec<(Expr, Vec<Stmt>)>,
        orelse: Vec<Stmt>,
    },
    For {
        is_async: bool,
        target: Expr,
        iter: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    While {
        test: Expr,
        body: Vec<Stmt>,
        orelse: Vec<Stmt>,
    },
    Try {
        body: Vec<Stmt>,
        handlers: Vec<Handler>,
        orelse: Vec<Stmt>,
        finalbody: Vec<Stmt>,
    },
    With {
        is_async: bool,
        items: Vec<(Expr, Option<Expr>)>,
        body: Vec<Stmt>,
    },
    /// `match` with one body per `case`; patterns are not kept.
    Match {
        subject: Expr,
        cases: Vec<Vec<Stmt>>,
    },
    FunctionDef {
        is_async: bool,
        name: String,
        params: Vec<Param>,
        returns: Option<Expr>,
        body: Vec<Stmt>,
        decorators: Vec<Expr>,
    },
    ClassDef {
        name: String,
        bases: Vec<Arg>,
        body: Vec<Stmt>,
        decorators: Vec<Expr>,
    },
    Return(Option<Expr>),
    Break,
    Continue,
    Pass,
    Import(Vec<Alias>),
    ImportFrom {
        module: String,
        names: Vec<Alias>,
    },
    Raise {
        exc: Option<Expr>,
        cause: Option<Expr>,
    },
    Global(Vec<String>),
    Nonlocal(Vec<String>),
    Delete(Vec<Expr>),
    Assert {
        test: Expr,
        msg: Option<Expr>,
    },
    /// `loop:` and its body. `well_formed` is false when the header broke R9; the
    /// body is still parsed, but chain rules are skipped to avoid duplicate reports.
    Loop {
        body: Vec<Stmt>,
        well_formed: bool,
    },
    Until {
        condition: Option<Expr>,
        alias: Option<String>,
        body: Vec<Stmt>,
    },
    /// A statement that failed to parse; an indented block under it is kept so its
    /// contents are still checked.
    Error {
        body: Vec<Stmt>,
    },
}

impl Expr {
    /// Direct sub-expressions, for walks that look at every node.
    pub fn children(&self) -> Vec<&Expr> {
        use ExprKind::*;
        match &self.kind {
            Name(_) | Number(_) | Str { .. } | True | False | None | Ellipsis | Error => Vec::new(),
            Tuple(items) | List(items) | Set(items) => items.iter().collect(),
            Dict(items) => items.iter().flat_map(|(k, v)| k.iter().chain([v])).collect(),
            Comprehension {
                element,
                value,
                generators,
                ..
            } => {
                let mut out: Vec<&Expr> = vec![element];
                out.extend(value.as_deref());
                for g in generators {
                    out.push(&g.target);
                    out.push(&g.iter);
                    out.extend(&g.conditions);
                }
                out
            }
            Call { func, args } => std::iter::once(&**func).chain(args.iter().map(|a| &a.value)).collect(),
            Attribute { value, .. } | Starred(value) | Await(value) | Unary { operand: value, .. } => vec![value],
            Subscript { value, index } => vec![value, index],
            Slice { lower, upper, step } => [lower, upper, step].into_iter().flatten().map(|b| &**b).collect(),
            Binary { left, right, .. } => vec![left, right],
            BoolOp { values, .. } => values.iter().collect(),
            Compare { left, comparators, .. } => std::iter::once(&**left).chain(comparators).collect(),
            IfElse { test, body, orelse } => vec![body, test, orelse],
            Lambda { params, body } => params
                .iter()
                .flat_map(|p| p.default.iter().chain(&p.annotation))
                .chain([&**body])
                .collect(),
            Yield { value, .. } => value.as_deref().into_iter().collect(),
            Walrus { target, value } => vec![target, value],
        }
    }

    /// Whether this is a call of the built-in `talk`.
    pub fn is_talk_call(&self) -> bool {
        matches!(&self.kind, ExprKind::Call { func, .. } if matches!(&func.kind, ExprKind::Name(n) if n == "talk"))
    }
}
