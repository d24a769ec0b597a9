//! The Based toolchain: lexer, parser and validator for Brainbase's Based language
//! (Python 3 plus `loop:` / `until` blocks), per `based-language.md`.
//!
//! [`validate`] returns every diagnostic, sorted by position. Rule codes:
//!
//! | code     | severity | checks |
//! |----------|----------|--------|
//! | `R1`     | error    | a `loop:` body holds exactly one statement, `name = talk(...)` |
//! | `R2`     | error    | every `loop:` is followed by one or more `until` clauses at its indentation |
//! | `R3`     | error    | an `until` condition is a single plain string literal (no f-string, concatenation, expression or v2 `as`) |
//! | `R4`     | error    | an `until` comes right after a loop body or another `until` of the chain, at the loop's indentation |
//! | `R6`     | error    | no `while` loops; conversations use `loop:` / `until` |
//! | `R7`     | error    | no `loop`, `until` or `talk` inside a `def` body |
//! | `R8`     | error    | Python syntax and structure: tokens, strings, escapes, f-strings, brackets, indentation, colons, `elif`, argument order, assignment targets, `break`/`continue` outside a loop, `return` outside a function or until body, nesting too deep |
//! | `R9`     | error    | header shapes: exactly `loop:` and `until <condition>:` |
//! | `W-talk` | warning  | `talk(...)` used outside a `loop:` body |
//! | `W-bool` | warning  | lower-case `true` / `false` (parsed as names) |
//! | `W-slug` | warning  | two conditions of one chain share the engine's 30-character dispatch slug |
//!
//! R5 (an until body is an ordinary block) is what allows `return`, `break`,
//! `continue` and nested loops there, so it has no diagnostic of its own.
//!
//! Line conventions: a diagnostic sits on the offending statement; an unterminated
//! string or unclosed bracket on the line where it starts; a mismatched closing
//! bracket on the closer; R2 on the `loop:` line; R9 on the header line.

mod ast;
mod diagnostic;
mod lexer;
mod parser;
mod validator;

use std::collections::HashSet;

pub use diagnostic::{Diagnostic, Severity, describe_for_model, render};

/// All diagnostics for `source`, sorted by (line, column). Never panics.
pub fn validate(source: &str) -> Vec<Diagnostic> {
    // The parser and the rules recurse over the tree; the depth budget bounds that, but a
    // fuzzer still found an input that overflowed a 2 MiB debug-build stack. A roomy stack
    // (virtual memory; only touched pages are used), switched to on the calling thread, makes
    // that impossible without starting a thread per call.
    stacker::grow(VALIDATE_STACK, || validate_here(source))
}

/// Stack the validation runs on.
const VALIDATE_STACK: usize = 256 * 1024 * 1024;

fn validate_here(source: &str) -> Vec<Diagnostic> {
    let lexed = lexer::tokenize(source);
    let (body, syntax) = parser::parse(&lexed.tokens);
    let rules = validator::check(&body);
    // Parse errors on a line with a lexical error are consequences of it, and
    // everything after an unclosed bracket or string is swallowed by it.
    let lexical_lines: HashSet<usize> = lexed.diagnostics.iter().map(|d| d.line).collect();
    let relevant = |d: &Diagnostic| lexed.swallowed_from.is_none_or(|p| d.start() < p);
    let mut all = lexed.diagnostics;
    all.extend(
        syntax
            .into_iter()
            .filter(|d| !lexical_lines.contains(&d.line) && relevant(d)),
    );
    all.extend(rules.into_iter().filter(|d| relevant(d)));
    all.sort_by_key(|d| (d.line, d.column));
    all.dedup();
    all
}

/// Whether any diagnostic is an error (warnings alone do not fail validation).
pub fn has_errors(diags: &[Diagnostic]) -> bool {
    diags.iter().any(|d| d.severity == Severity::Error)
}
