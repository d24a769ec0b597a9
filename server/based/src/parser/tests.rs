//! Parser tests: precedence, associativity and spans.

use super::super::ast::{ArgKind, Expr, ExprKind, StmtKind};
use super::super::diagnostic::{Pos, Span};
use super::super::lexer::tokenize;
use super::parse;

/// The value of the single assignment in `src`, which must parse cleanly.
fn value(src: &str) -> Expr {
    let lexed = tokenize(src);
    let (body, diagnostics) = parse(&lexed.tokens);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    match body.into_iter().next().map(|s| s.kind) {
        Some(StmtKind::Assign { value, .. }) => value,
        other => panic!("not an assignment: {other:?}"),
    }
}

/// Fully parenthesised rendering, to check precedence and associativity.
fn show(e: &Expr) -> String {
    let list = |items: &[Expr], sep: &str| items.iter().map(show).collect::<Vec<_>>().join(sep);
    match &e.kind {
        ExprKind::Name(n) | ExprKind::Number(n) => n.clone(),
        ExprKind::Binary { left, op, right } => {
            format!("({} {op} {})", show(left), show(right))
        }
        ExprKind::Unary { op, operand } => format!("({op} {})", show(operand)),
        ExprKind::BoolOp { op, values } => format!("({})", list(values, &format!(" {op} "))),
        ExprKind::Compare { left, ops, comparators } => {
            let rest: String = ops
                .iter()
                .zip(comparators)
                .map(|(o, c)| format!(" {o} {}", show(c)))
                .collect();
            format!("({}{rest})", show(left))
        }
        ExprKind::IfElse { test, body, orelse } => {
            format!("({} if {} else {})", show(body), show(test), show(orelse))
        }
        ExprKind::Call { func, args } => {
            let args: Vec<String> = args
                .iter()
                .map(|a| match (a.kind, &a.name) {
                    (ArgKind::Keyword, Some(name)) => format!("{name}={}", show(&a.value)),
                    _ => show(&a.value),
                })
                .collect();
            format!("{}({})", show(func), args.join(", "))
        }
        ExprKind::Attribute { value, attr } => format!("{}.{attr}", show(value)),
        ExprKind::Subscript { value, index } => format!("{}[{}]", show(value), show(index)),
        ExprKind::Tuple(items) => format!("tuple({})", list(items, ", ")),
        other => format!("{other:?}"),
    }
}

#[test]
fn operator_precedence() {
    let cases = [
        (
            "-a ** 2 + b * c if d or e and not f else g",
            "(((- (a ** 2)) + (b * c)) if (d or (e and (not f))) else g)",
        ),
        ("a | b ^ c & d << e + f", "(a | (b ^ (c & (d << (e + f)))))"),
        ("a - b - c", "((a - b) - c)"),
        ("a ** b ** c", "(a ** (b ** c))"),
        ("a < b == c is not d not in e", "(a < b == c is not d not in e)"),
        ("api.get_req(url=u).ask(q)[0]", "api.get_req(url=u).ask(q)[0]"),
        ("1, 2", "tuple(1, 2)"),
    ];
    for (src, want) in cases {
        assert_eq!(show(&value(&format!("x = {src}\n"))), want, "{src}");
    }
}

#[test]
fn spans_cover_multi_line_expressions() {
    let call = value("x = api.get_req(\n  url=u).ask(q)\n");
    assert_eq!(call.span, Span::new(Pos { line: 1, col: 5 }, Pos { line: 2, col: 16 }));
}
