//! Cost of statement analysis on the proxy's hot path.
//!
//! `hit_fresh_literal` is what pgbench's simple-query mode costs per statement: the text
//! differs from every earlier one only in its number, so the cache can only hit through
//! the literal-free key. `miss` is a full parse and classification.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use warden_policy::statement::Analyzer;

const PGBENCH_SELECT: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = ";
const PGBENCH_UPDATE: &str = "UPDATE pgbench_accounts SET abalance = abalance + -4711 WHERE aid = ";

/// Texts differing only in their literal, prepared up front so the benchmark does not
/// measure `format!`.
fn texts(prefix: &str) -> Vec<String> {
    (0..4096_u64)
        .map(|i| format!("{prefix}{};", 1_000_003 * i % 10_000_000))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("analyze");

    for (name, prefix) in [
        ("hit_fresh_literal/pgbench_select", PGBENCH_SELECT),
        ("hit_fresh_literal/pgbench_update", PGBENCH_UPDATE),
    ] {
        let analyzer = Analyzer::new(10_000);
        let texts = texts(prefix);
        analyzer.analyze(&texts[0]);
        let mut i = 0;
        group.bench_function(name, |b| {
            b.iter(|| {
                i = (i + 1) % texts.len();
                black_box(analyzer.analyze(black_box(&texts[i])))
            })
        });
        let (hits, misses) = analyzer.stats();
        assert_eq!(misses, 1, "every later text must hit ({hits} hits)");
    }

    // Capacity 0: every call parses and classifies.
    let uncached = Analyzer::new(0);
    let select = texts(PGBENCH_SELECT);
    group.bench_function("miss/pgbench_select", |b| {
        b.iter(|| black_box(uncached.analyze(black_box(&select[7]))))
    });
    let join = "WITH recent AS (SELECT * FROM orders WHERE ts > now() - interval '1 day') \
                SELECT c.name, count(*) FROM recent r JOIN customers c ON c.id = r.customer_id \
                WHERE c.region = 'eu' GROUP BY c.name ORDER BY 2 DESC LIMIT 10";
    group.bench_function("miss/cte_join", |b| {
        b.iter(|| black_box(uncached.analyze(black_box(join))))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
