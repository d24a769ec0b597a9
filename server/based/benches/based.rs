//! Validating a 5,000-line Based file.

use criterion::{Criterion, criterion_group, criterion_main};
use kafka_based::validate;
use std::hint::black_box;

/// A realistic flow block (10 lines) repeated to 5,000 lines.
fn flow(lines: usize) -> String {
    let block = r#"loop:
    res = talk(f"Ask the user about topic {n}. Be brief.", True, {"n": n})
until "the user answered the question":
    info = res.ask(question="Return the answer.", example={"answer": "text", "ok": True})
    if info["ok"] and len(info["answer"]) > 3:
        say(f"Thanks, {info['answer']}!", exact=True)
    else:
        items = [x.strip() for x in info["answer"].split(",") if x]
until "the user wants to stop":
    return
"#;
    let count = lines / block.lines().count();
    format!("n = 0\n{}", block.repeat(count))
}

fn bench(c: &mut Criterion) {
    let src = flow(5_000);
    assert!(validate(&src).is_empty());
    c.bench_function("validate 5000 lines", |b| b.iter(|| validate(black_box(&src))));
}

criterion_group!(benches, bench);
criterion_main!(benches);
