//! Classification table, cache behaviour and hostile input.

use super::*;
use StatementClass::{Ddl, Destructive, Read, Unknown, Utility, Write};

fn one(sql: &str) -> StatementInfo {
    let analysis = analyze_uncached(sql);
    assert_eq!(analysis.parse_error, None, "{sql:?} should parse");
    assert_eq!(analysis.statements.len(), 1, "{sql:?}: {analysis:?}");
    analysis
        .statements
        .into_iter()
        .next()
        .expect("one statement")
}

#[test]
fn classification_table() {
    let table: &[(&str, StatementClass, &str)] = &[
        // Reads
        ("SELECT 1", Read, "SELECT"),
        ("SELECT * FROM t WHERE id = 1", Read, "SELECT"),
        ("VALUES (1), (2)", Read, "SELECT"),
        ("TABLE t", Read, "SELECT"),
        ("SELECT * FROM a UNION SELECT * FROM b", Read, "SELECT"),
        ("WITH x AS (SELECT 1) SELECT * FROM x", Read, "SELECT"),
        ("COPY t TO STDOUT", Read, "COPY TO STDOUT"),
        (
            "COPY (SELECT * FROM t) TO STDOUT WITH (FORMAT csv)",
            Read,
            "COPY TO STDOUT",
        ),
        ("EXPLAIN SELECT * FROM t", Read, "EXPLAIN"),
        ("EXPLAIN DELETE FROM t", Read, "EXPLAIN"),
        ("EXPLAIN (COSTS off) UPDATE t SET a = 1", Read, "EXPLAIN"),
        ("FETCH 10 FROM c", Read, "FETCH"),
        ("MOVE NEXT IN c", Read, "MOVE"),
        (
            "DECLARE c CURSOR FOR SELECT * FROM t",
            Read,
            "DECLARE CURSOR",
        ),
        (
            "SELECT * FROM t WHERE id IN (SELECT id FROM u)",
            Read,
            "SELECT",
        ),
        // Writes
        ("INSERT INTO t VALUES (1)", Write, "INSERT"),
        (
            "INSERT INTO t SELECT * FROM u ON CONFLICT (id) DO UPDATE SET a = 1",
            Write,
            "INSERT",
        ),
        ("UPDATE t SET a = 1 WHERE id = 2", Write, "UPDATE"),
        ("UPDATE t SET a = 1 WHERE true", Write, "UPDATE"),
        ("DELETE FROM t WHERE id = 1", Write, "DELETE"),
        ("DELETE FROM t WHERE CURRENT OF c", Write, "DELETE"),
        (
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a",
            Write,
            "MERGE",
        ),
        ("COPY t FROM STDIN", Write, "COPY FROM STDIN"),
        ("SELECT * FROM t FOR UPDATE", Write, "SELECT"),
        ("SELECT * FROM t FOR KEY SHARE SKIP LOCKED", Write, "SELECT"),
        (
            "SELECT * FROM (SELECT * FROM t FOR SHARE) s",
            Write,
            "SELECT",
        ),
        (
            "WITH d AS (DELETE FROM t WHERE id = 1 RETURNING *) SELECT * FROM d",
            Write,
            "SELECT",
        ),
        (
            "WITH i AS (INSERT INTO log VALUES (1) RETURNING id) SELECT * FROM i",
            Write,
            "SELECT",
        ),
        (
            "EXPLAIN ANALYZE DELETE FROM t WHERE id = 1",
            Write,
            "EXPLAIN ANALYZE",
        ),
        (
            "EXPLAIN (ANALYZE, BUFFERS) INSERT INTO t VALUES (1)",
            Write,
            "EXPLAIN ANALYZE",
        ),
        ("EXECUTE p(1)", Write, "EXECUTE"),
        ("CALL do_things(1)", Write, "CALL"),
        ("SELECT nextval('s')", Write, "SELECT"),
        ("LOCK TABLE t IN ACCESS EXCLUSIVE MODE", Write, "LOCK TABLE"),
        (
            "REFRESH MATERIALIZED VIEW mv",
            Write,
            "REFRESH MATERIALIZED VIEW",
        ),
        ("PREPARE p AS INSERT INTO t VALUES ($1)", Write, "PREPARE"),
        // DDL
        ("CREATE TABLE t (id int PRIMARY KEY)", Ddl, "CREATE TABLE"),
        ("CREATE INDEX i ON t (a)", Ddl, "CREATE INDEX"),
        ("CREATE VIEW v AS SELECT * FROM t", Ddl, "CREATE VIEW"),
        (
            "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t",
            Ddl,
            "CREATE MATERIALIZED VIEW",
        ),
        ("CREATE TABLE t2 AS SELECT * FROM t", Ddl, "CREATE TABLE AS"),
        ("SELECT * INTO t2 FROM t", Ddl, "SELECT INTO"),
        ("CREATE SCHEMA s", Ddl, "CREATE SCHEMA"),
        ("CREATE SEQUENCE s", Ddl, "CREATE SEQUENCE"),
        ("CREATE TYPE mood AS ENUM ('sad', 'ok')", Ddl, "CREATE TYPE"),
        ("CREATE EXTENSION pgcrypto", Ddl, "CREATE EXTENSION"),
        ("VACUUM FULL t", Ddl, "VACUUM"),
        ("REINDEX TABLE t", Ddl, "REINDEX"),
        ("COMMENT ON TABLE t IS 'x'", Ddl, "COMMENT"),
        // Destructive
        ("DELETE FROM t", Destructive, "DELETE"),
        ("UPDATE t SET a = 1", Destructive, "UPDATE"),
        ("UPDATE t SET a = u.a FROM u", Destructive, "UPDATE"),
        ("DROP TABLE t", Destructive, "DROP TABLE"),
        (
            "DROP TABLE IF EXISTS s.t, u CASCADE",
            Destructive,
            "DROP TABLE",
        ),
        (
            "DROP MATERIALIZED VIEW mv",
            Destructive,
            "DROP MATERIALIZED VIEW",
        ),
        ("DROP FUNCTION f(int)", Destructive, "DROP FUNCTION"),
        ("DROP DATABASE d", Destructive, "DROP DATABASE"),
        ("DROP ROLE r", Destructive, "DROP ROLE"),
        ("TRUNCATE t", Destructive, "TRUNCATE"),
        ("ALTER TABLE t ADD COLUMN c int", Destructive, "ALTER TABLE"),
        (
            "ALTER TABLE t RENAME COLUMN a TO b",
            Destructive,
            "ALTER TABLE",
        ),
        ("ALTER TABLE t RENAME TO u", Destructive, "ALTER TABLE"),
        (
            "ALTER INDEX i SET TABLESPACE ts",
            Destructive,
            "ALTER INDEX",
        ),
        ("ALTER TABLE t OWNER TO r", Destructive, "ALTER TABLE"),
        (
            "ALTER SYSTEM SET work_mem = '1GB'",
            Destructive,
            "ALTER SYSTEM",
        ),
        (
            "ALTER DATABASE d SET work_mem = '1GB'",
            Destructive,
            "ALTER DATABASE",
        ),
        ("GRANT SELECT ON t TO r", Destructive, "GRANT"),
        ("REVOKE ALL ON t FROM r", Destructive, "REVOKE"),
        ("GRANT admin TO r", Destructive, "GRANT"),
        (
            "CREATE ROLE r LOGIN PASSWORD 'x'",
            Destructive,
            "CREATE ROLE",
        ),
        ("CREATE USER u", Destructive, "CREATE USER"),
        ("ALTER ROLE r SUPERUSER", Destructive, "ALTER ROLE"),
        ("ALTER USER u WITH PASSWORD 'x'", Destructive, "ALTER ROLE"),
        (
            "COPY t FROM PROGRAM 'curl evil'",
            Destructive,
            "COPY FROM PROGRAM",
        ),
        (
            "COPY t TO PROGRAM 'gzip > /tmp/x'",
            Destructive,
            "COPY TO PROGRAM",
        ),
        ("COPY t FROM '/etc/passwd'", Destructive, "COPY FROM FILE"),
        ("COPY t TO '/tmp/out'", Destructive, "COPY TO FILE"),
        ("DO $$ BEGIN PERFORM 1; END $$", Destructive, "DO"),
        (
            "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
            Destructive,
            "CREATE FUNCTION",
        ),
        (
            "CREATE PROCEDURE p() LANGUAGE plpgsql AS $$ BEGIN END $$",
            Destructive,
            "CREATE PROCEDURE",
        ),
        (
            "CREATE OR REPLACE VIEW v AS SELECT 1",
            Destructive,
            "CREATE VIEW",
        ),
        ("SELECT pg_read_file('/etc/passwd')", Destructive, "SELECT"),
        ("SELECT * FROM pg_ls_dir('.')", Destructive, "SELECT"),
        (
            "SELECT pg_catalog.pg_terminate_backend(123)",
            Destructive,
            "SELECT",
        ),
        (
            "SELECT * FROM t WHERE a IN (SELECT set_config('role', 'x', false))",
            Destructive,
            "SELECT",
        ),
        (
            "SELECT (SELECT max(x) FROM (SELECT lo_export(1, '/tmp/x') AS x) s)",
            Destructive,
            "SELECT",
        ),
        (
            "SELECT dblink_exec('host=x', 'DROP TABLE t')",
            Destructive,
            "SELECT",
        ),
        (
            "SELECT query_to_xml('SELECT 1', true, true, '')",
            Destructive,
            "SELECT",
        ),
        ("EXPLAIN SELECT pg_read_file('x')", Destructive, "EXPLAIN"),
        (
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            Destructive,
            "SELECT",
        ),
        (
            "WITH u AS (UPDATE t SET a = 1 RETURNING *) INSERT INTO log SELECT * FROM u",
            Destructive,
            "INSERT",
        ),
        (
            "EXPLAIN ANALYZE DELETE FROM t",
            Destructive,
            "EXPLAIN ANALYZE",
        ),
        // Counted even with ANALYZE false: the value is a literal-free decision.
        (
            "EXPLAIN (ANALYZE false) DELETE FROM t",
            Destructive,
            "EXPLAIN ANALYZE",
        ),
        ("PREPARE p AS DELETE FROM t", Destructive, "PREPARE"),
        (
            "COPY (DELETE FROM t RETURNING *) TO STDOUT",
            Destructive,
            "COPY TO STDOUT",
        ),
        (
            "CREATE RULE r AS ON INSERT TO t DO INSTEAD DELETE FROM u",
            Destructive,
            "CREATE RULE",
        ),
        ("LOAD 'plugin'", Destructive, "LOAD"),
        ("SET ROLE admin", Destructive, "SET"),
        ("SET SESSION AUTHORIZATION admin", Destructive, "SET"),
        ("SET standard_conforming_strings = off", Destructive, "SET"),
        (
            "ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO r",
            Destructive,
            "ALTER DEFAULT PRIVILEGES",
        ),
        // Utility
        ("SET search_path = app, public", Utility, "SET"),
        ("SET LOCAL statement_timeout = 1000", Utility, "SET"),
        ("RESET ROLE", Utility, "RESET"),
        ("RESET ALL", Utility, "RESET"),
        ("SHOW work_mem", Utility, "SHOW"),
        ("BEGIN", Utility, "BEGIN"),
        (
            "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
            Utility,
            "START TRANSACTION",
        ),
        ("COMMIT", Utility, "COMMIT"),
        ("ROLLBACK", Utility, "ROLLBACK"),
        ("SAVEPOINT s", Utility, "SAVEPOINT"),
        ("ROLLBACK TO SAVEPOINT s", Utility, "ROLLBACK TO SAVEPOINT"),
        ("RELEASE s", Utility, "RELEASE"),
        ("LISTEN ch", Utility, "LISTEN"),
        ("NOTIFY ch, 'payload'", Utility, "NOTIFY"),
        ("UNLISTEN *", Utility, "UNLISTEN"),
        ("DISCARD ALL", Utility, "DISCARD"),
        ("DEALLOCATE p", Utility, "DEALLOCATE"),
        ("CLOSE c", Utility, "CLOSE"),
        ("ANALYZE t", Utility, "ANALYZE"),
        ("PREPARE q AS SELECT 1", Read, "PREPARE"),
    ];
    assert!(table.len() >= 40);
    let mut failures = Vec::new();
    for (sql, class, kind) in table {
        let info = one(sql);
        if info.class != *class || info.kind != *kind {
            failures.push(format!(
                "{sql:?}: got {:?} {:?} (reasons {:?}), want {class:?} {kind:?}",
                info.class, info.kind, info.reasons
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "misclassified:\n{}",
        failures.join("\n")
    );
}

#[test]
fn reasons_explain_destructive_statements() {
    assert_eq!(one("DELETE FROM t").reasons, ["DELETE without WHERE"]);
    assert_eq!(one("UPDATE t SET a = 1").reasons, ["UPDATE without WHERE"]);
    assert!(one("DELETE FROM t WHERE id = 1").reasons.is_empty());
    assert!(one("UPDATE t SET a = 1 WHERE true").reasons.is_empty());
    assert_eq!(
        one("SELECT pg_read_file('x')").reasons,
        ["calls pg_read_file"]
    );
    assert_eq!(
        one("EXECUTE p").reasons,
        ["EXECUTE of a prepared statement"]
    );
    let nested = one("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d");
    assert_eq!(nested.reasons, ["DELETE without WHERE"]);
    assert!(one("COPY t FROM PROGRAM 'x'").reasons[0].contains("PROGRAM"));
    // Reasons never repeat literal values.
    let secret = one("COPY t TO PROGRAM 'curl https://secret.example'");
    assert!(secret.reasons.iter().all(|r| !r.contains("secret")));
}

#[test]
fn tables_and_functions_are_collected_from_the_whole_tree() {
    let info = one(
        "WITH recent AS (SELECT * FROM app.orders WHERE ts > now()) \
         SELECT lower(c.name), (SELECT count(*) FROM \"Audit\".\"Log\" l) \
         FROM recent r JOIN customers c ON c.id = r.customer_id \
         WHERE c.id IN (SELECT upper(x) FROM other.t2)",
    );
    // In tree order: the target list (with its subquery) comes before FROM.
    assert_eq!(
        info.tables,
        ["app.orders", "\"Audit\".\"Log\"", "customers", "other.t2"]
    );
    let mut functions = info.functions.clone();
    functions.sort();
    assert_eq!(functions, ["count", "lower", "now", "upper"]);

    assert_eq!(one("DROP TABLE s.t, u").tables, ["s.t", "u"]);
    assert_eq!(one("TRUNCATE a, b.c").tables, ["a", "b.c"]);
    assert_eq!(one("INSERT INTO t SELECT * FROM u").tables, ["t", "u"]);
    assert_eq!(
        one("SELECT pg_catalog.pg_read_file('x')").functions,
        ["pg_catalog.pg_read_file"]
    );
}

#[test]
fn cte_names_are_scoped() {
    // The target of a DML statement is always a table, even when a CTE has its name.
    let info = one("WITH t AS (SELECT 1) DELETE FROM t WHERE true");
    assert_eq!(info.tables, ["t"]);
    // A non-recursive CTE cannot see itself: the inner `secret` is the real table.
    let info = one("WITH secret AS (SELECT * FROM secret) SELECT * FROM secret");
    assert_eq!(info.tables, ["secret"]);
    let info = one("WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a, b");
    assert_eq!(info.tables, ["b"]);
    // Under RECURSIVE it can.
    let info = one(
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) \
         SELECT * FROM r",
    );
    assert!(info.tables.is_empty(), "{:?}", info.tables);
    // A schema-qualified name is never a CTE.
    let info = one("WITH t AS (SELECT 1) SELECT * FROM t, public.t");
    assert_eq!(info.tables, ["public.t"]);
    // CTE names do not leak out of the subquery that declares them.
    let info = one("SELECT * FROM (WITH x AS (SELECT 1) SELECT * FROM x) s, x");
    assert_eq!(info.tables, ["x"]);
}

#[test]
fn multi_statement_texts_are_split() {
    let analysis = analyze_uncached("SELECT 1; DELETE FROM t; SET search_path = x;");
    let classes: Vec<_> = analysis.statements.iter().map(|s| s.class).collect();
    assert_eq!(classes, [Read, Destructive, Utility]);
    assert_eq!(analysis.riskiest(), Destructive);
    let analysis = analyze_uncached("BEGIN; SELECT 1; COMMIT");
    assert_eq!(analysis.riskiest(), Read);
    let analysis = analyze_uncached("SELECT ';'; SELECT $$;$$ -- ;\n");
    assert_eq!(analysis.statements.len(), 2);
}

#[test]
fn empty_and_comment_only_texts_have_no_statements() {
    for sql in ["", "   ", "-- nothing", "/* nothing */", ";", ";;"] {
        let analysis = analyze_uncached(sql);
        assert_eq!(analysis, Analysis::default(), "{sql:?}");
        assert_eq!(analysis.riskiest(), Utility);
    }
}

#[test]
fn parse_failures_are_one_unknown_statement() {
    for sql in [
        "SELEC 1",
        "SELECT 1; DELET FROM t",
        "DROP",
        "SELECT 'unterminated",
    ] {
        let analysis = analyze_uncached(sql);
        assert!(analysis.parse_error.is_some(), "{sql:?}");
        assert_eq!(analysis.statements.len(), 1);
        assert_eq!(analysis.riskiest(), Unknown);
    }
}

#[test]
fn class_order_and_names() {
    let ordered = [Utility, Read, Write, Ddl, Destructive, Unknown];
    for pair in ordered.windows(2) {
        assert!(pair[0] < pair[1], "{pair:?}");
    }
    assert_eq!(Destructive.to_string(), "destructive");
    assert_eq!(Ddl.as_str(), "ddl");
}

#[test]
fn cache_hits_across_literals_and_counts() {
    let analyzer = Analyzer::new(100);
    let first = analyzer.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 12345;");
    assert_eq!(analyzer.stats(), (0, 1));
    let second = analyzer.analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 777;");
    assert_eq!(analyzer.stats(), (1, 1));
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(second.riskiest(), Read);
    assert_eq!(second.statements[0].tables, ["pgbench_accounts"]);

    // A different shape is a miss with its own analysis.
    let delete = analyzer.analyze("DELETE FROM pgbench_accounts WHERE aid = 1");
    assert_eq!(analyzer.stats(), (1, 2));
    assert_eq!(delete.riskiest(), Write);
    let all = analyzer.analyze("DELETE FROM pgbench_accounts");
    assert_eq!(all.riskiest(), Destructive);
    assert_eq!(analyzer.stats(), (1, 3));

    // Exact-text fallback keys are cached too.
    analyzer.analyze("SELECT 'a\\b'");
    analyzer.analyze("SELECT 'a\\b'");
    assert_eq!(analyzer.stats(), (2, 4));
}

#[test]
fn normalized_parse_errors_are_not_shared() {
    let analyzer = Analyzer::new(100);
    let a = analyzer.analyze("SELECT 1 2 FROM secret_literal_one");
    let b = analyzer.analyze("SELECT 1 3 FROM secret_literal_one");
    assert_eq!(analyzer.stats(), (0, 2));
    assert!(a.parse_error.as_deref().is_some_and(|e| e.contains('2')));
    assert!(b.parse_error.as_deref().is_some_and(|e| e.contains('3')));
}

#[test]
fn non_utf8_bytes_are_unknown() {
    let analyzer = Analyzer::new(10);
    let analysis = analyzer.analyze_bytes(b"SELECT '\xff'");
    assert_eq!(analysis.riskiest(), Unknown);
    assert!(analysis
        .parse_error
        .as_deref()
        .is_some_and(|e| e.contains("UTF-8")));
    assert_eq!(analyzer.analyze_bytes(b"SELECT 1").riskiest(), Read);
    assert_eq!(analyzer.stats(), (0, 2));
}

#[test]
fn huge_capacity_does_not_allocate_up_front() {
    let analyzer = Analyzer::new(usize::MAX);
    assert_eq!(analyzer.analyze("SELECT 1").riskiest(), Read);
}

#[test]
fn zero_capacity_disables_caching() {
    let analyzer = Analyzer::new(0);
    analyzer.analyze("SELECT 1");
    analyzer.analyze("SELECT 1");
    assert_eq!(analyzer.stats(), (0, 2));
}

#[test]
fn analyzer_is_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Analyzer>();
    let analyzer = Arc::new(Analyzer::new(1000));
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let analyzer = Arc::clone(&analyzer);
            std::thread::spawn(move || {
                for i in 0..50 {
                    let a = analyzer.analyze(&format!("SELECT * FROM t{t} WHERE id = {i}"));
                    assert_eq!(a.riskiest(), Read);
                }
            })
        })
        .collect();
    for thread in threads {
        assert!(thread.join().is_ok());
    }
    let (hits, misses) = analyzer.stats();
    assert_eq!(hits + misses, 200);
    assert!(misses >= 4 && hits >= 190, "{hits} hits, {misses} misses");
}

#[test]
fn large_statements_count_by_size() {
    let analyzer = Analyzer::new(8);
    // A 20 KiB key weighs 21 entries: more than the whole cache, so it is not kept.
    let huge = format!("SELECT 1 AS {}", "a".repeat(20 * 1024));
    analyzer.analyze(&huge);
    analyzer.analyze(&huge);
    assert_eq!(analyzer.stats().0, 0);
}

/// Runs `f` on a thread with the 2 MiB stack tokio gives its workers, so a stack overflow
/// in the parser would show here.
fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(f)
        .expect("spawn test thread");
    match handle.join() {
        Ok(v) => v,
        Err(_) => panic!("analysis panicked"),
    }
}

#[test]
fn hostile_input_never_panics() {
    let results = on_small_stack(|| {
        let analyzer = Analyzer::new(1000);
        let cases: Vec<String> = vec![
            "(".repeat(1 << 20),
            format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000)),
            format!("SELECT {}1{}", "(SELECT ".repeat(5_000), ")".repeat(5_000)),
            format!("SELECT 1{}", "+1".repeat(100_000)),
            format!("SELECT {}true", "NOT ".repeat(100_000)),
            "SELECT 1\0; DROP TABLE t".to_owned(),
            "\0".repeat(1000),
            "SELECT 'unterminated".to_owned(),
            "SELECT \"unterminated".to_owned(),
            "SELECT /* unterminated".to_owned(),
            "SELECT $$ unterminated".to_owned(),
            "SELECT E'\\".to_owned(),
            "SELECT U&'\\zzzz'".to_owned(),
            ")))(((".to_owned(),
            "SELECT (1 FROM t)".to_owned(),
            "SELECT [1)".to_owned(),
            "WITH WITH WITH".to_owned(),
            "\u{feff}SELECT 1".to_owned(),
            "SELECT 1e999999999, 0x".to_owned(),
            "SELECT $99999999999999999999".to_owned(),
            String::from_utf8_lossy(&[0xff, 0xfe, b'S', 0x80]).into_owned(),
        ];
        cases
            .iter()
            .map(|sql| {
                let analysis = analyzer.analyze(sql);
                (analysis.parse_error.is_some(), analysis.riskiest())
            })
            .collect::<Vec<_>>()
    });
    for (i, (failed, riskiest)) in results.iter().enumerate() {
        if *failed {
            assert_eq!(*riskiest, Unknown, "case {i}");
        }
    }
    // Every deeply nested or malformed case above must have failed, not passed as safe.
    for (i, (failed, _)) in results.iter().enumerate().take(15) {
        assert!(failed, "case {i} should not parse");
    }
}

#[test]
fn deep_but_reasonable_nesting_is_analysed() {
    let sql = format!("SELECT {}1{}", "(SELECT ".repeat(8), ")".repeat(8));
    assert_eq!(one(&sql).class, Read);
    let sql = format!("SELECT {}1{}", "(".repeat(1000), ")".repeat(1000));
    assert_eq!(one(&sql).class, Read);
    // AND/OR chains and IN lists are flat in the tree.
    let sql = format!("SELECT 1 WHERE a = 1{}", " OR a = 1".repeat(5_000));
    assert_eq!(one(&sql).class, Read);
}

#[test]
fn too_deep_trees_are_unknown_with_a_clear_error() {
    let sql = format!("SELECT 1{}", "+1".repeat(200));
    let analysis = analyze_uncached(&sql);
    assert_eq!(analysis.riskiest(), Unknown);
    assert_eq!(
        analysis.parse_error.as_deref(),
        Some("the statement is nested too deeply to analyse")
    );
}

#[test]
fn many_statements_are_split_without_trouble() {
    let sql = "SELECT 1;".repeat(100_000);
    let analysis = on_small_stack(move || analyze_uncached(&sql));
    assert_eq!(analysis.statements.len(), 100_000);
    assert_eq!(analysis.riskiest(), Read);
    let mixed = format!("{}DELETE FROM t;", "SELECT 1;".repeat(10_000));
    assert_eq!(analyze_uncached(&mixed).riskiest(), Destructive);
}

#[test]
fn oversized_text_is_unknown_without_parsing() {
    let sql = format!("SELECT '{}'", "x".repeat(MAX_ANALYZED_LEN));
    let analyzer = Analyzer::new(10);
    let analysis = analyzer.analyze(&sql);
    assert_eq!(analysis.riskiest(), Unknown);
    assert!(analysis
        .parse_error
        .as_deref()
        .is_some_and(|e| e.contains("not analysed")));
}

#[test]
fn secrets_are_redacted() {
    for sql in [
        "ALTER ROLE x PASSWORD 'hunter2'",
        "alter user x with encrypted password 'hunter2' valid until '2030-01-01'",
        "CREATE ROLE y LOGIN PASSWORD 'hunter2'",
        "CREATE USER MAPPING FOR u SERVER s OPTIONS (user 'a', password 'hunter2')",
        "SELECT dblink_connect('host=h password=hunter2')",
        "SELECT 1; ALTER ROLE x PASSWORD 'hunter2'",
    ] {
        let a = analyze_uncached(sql);
        assert!(a.may_hold_secret(sql), "{sql}");
        let r = redact(sql);
        assert!(!r.contains("hunter2"), "{sql} -> {r}");
        assert!(r.contains("$1"), "{r}");
    }
    let broken = "ALTER ROLE x PASSWORD hunter2 (";
    assert!(analyze_uncached(broken).may_hold_secret(broken));
    assert!(!redact(broken).contains("hunter2"));
    let plain = "SELECT * FROM t WHERE id = 1";
    assert!(!analyze_uncached(plain).may_hold_secret(plain));
}
