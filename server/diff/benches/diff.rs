//! Making and applying a diff between two 10,000-line files.
#![allow(clippy::unwrap_used, reason = "a benchmark stops on any failure")]

use criterion::{Criterion, criterion_group, criterion_main};
use kafka_diff::{apply_patch, apply_tolerant, make_patch};
use std::hint::black_box;

/// Two 10,000-line files that differ in about 1% of their lines.
fn files() -> (String, String) {
    let old: String = (0..10_000)
        .map(|i| format!("    value_{i} = compute({i}, \"label {i}\")\n"))
        .collect();
    let new: String = old
        .lines()
        .enumerate()
        .map(|(i, l)| match i % 100 {
            7 => format!("{l}  # changed\n"),
            53 => String::new(),
            91 => format!("{l}\n    inserted_{i} = True\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    (old, new)
}

/// Shifts every hunk header's line numbers by `by`, as a model might get them wrong.
fn skew(patch: &str, by: usize) -> String {
    patch
        .lines()
        .map(|line| match line.strip_prefix("@@ -") {
            Some(rest) => {
                let n: Vec<usize> = rest
                    .split(|c: char| !c.is_ascii_digit())
                    .filter_map(|s| s.parse().ok())
                    .collect();
                format!("@@ -{},{} +{},{} @@\n", n[0] + by, n[1], n[2] + by, n[3])
            }
            None => format!("{line}\n"),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let (old, new) = files();
    let patch = make_patch(&old, &new, "a", "b");
    assert_eq!(apply_patch(&old, &patch).unwrap(), new);
    assert_eq!(apply_tolerant(&old, &patch).unwrap(), new);
    c.bench_function("make_patch 10000 lines", |b| {
        b.iter(|| make_patch(black_box(&old), black_box(&new), "a", "b"))
    });
    c.bench_function("apply_patch 10000 lines", |b| {
        b.iter(|| apply_patch(black_box(&old), black_box(&patch)))
    });
    c.bench_function("apply_tolerant 10000 lines", |b| {
        b.iter(|| apply_tolerant(black_box(&old), black_box(&patch)))
    });
    // Every header off by 5 lines: each hunk is found by searching the file.
    let skewed = skew(&patch, 5);
    assert_eq!(apply_tolerant(&old, &skewed).unwrap(), new);
    c.bench_function("apply_tolerant 10000 lines, headers off by 5", |b| {
        b.iter(|| apply_tolerant(black_box(&old), black_box(&skewed)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
