//! Lineage: which masked columns feed each output column of a statement, decided from the
//! `pg_query` parse tree and what the catalog says about the relations it names.
//!
//! The proxy knows a result column's origin from RowDescription (table OID, attribute
//! number) when the column is a plain table column. Everything else (an expression, a
//! cast, a function call, a UNION, a whole-row reference such as `row_to_json(c)`, a
//! scalar subquery) has origin 0, and only the parse tree can say whether a masked column
//! feeds it. This module answers that, and also says when a statement would move masked
//! values somewhere the proxy cannot follow (another table, a setting, a cursor, a
//! notification, an opaque function) so the proxy can refuse it.
//!
//! Failing closed: anything the analysis cannot follow taints with every masked column it
//! might reach, or refuses the statement with a reason.

use std::collections::BTreeSet;

/// Index of a masking rule in the connection's rule list.
pub type RuleId = u16;

/// The masking rules whose columns feed a value. Empty: nothing masked feeds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taint(pub BTreeSet<RuleId>);

impl Taint {
    /// No masked column.
    pub fn none() -> Self {
        Taint::default()
    }

    /// Whether any masked column feeds the value.
    pub fn is_tainted(&self) -> bool {
        !self.0.is_empty()
    }

    /// Adds every rule of `other`.
    pub fn extend(&mut self, other: &Taint) {
        self.0.extend(other.0.iter().copied());
    }
}

/// One column of a relation, as the catalog describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    /// Column name (attname).
    pub name: String,
    /// Masking rules that apply to this column (for a view: those of the columns that feed it).
    pub taint: Taint,
}

/// A relation (table, view, materialized view, partition, foreign table) the catalog knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelationInfo {
    /// Schema name.
    pub schema: String,
    /// Relation name.
    pub name: String,
    /// Its live (not dropped) columns in attnum order: exactly what `SELECT *` returns.
    pub columns: Vec<ColumnInfo>,
}

/// How a function may be called on a masked connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FunctionKind {
    /// A built-in (pg_catalog) function with no side channel: its result is tainted by its
    /// arguments.
    Pure,
    /// A built-in that stores, sends or executes its arguments (`set_config`, `pg_notify`,
    /// `query_to_xml`, `dblink`, large-object writers, ...): refused when any argument is
    /// tainted (the `query_to_*` family: always refused).
    Sink,
    /// Defined outside pg_catalog (or could resolve there through the search path): it may
    /// read masked columns itself, so the statement is refused.
    Opaque,
}

/// What the analysis needs to know about the database.
pub trait Schema {
    /// Relations matching `name`, resolved with `schema` when qualified. Unqualified names
    /// return every relation of that name in any schema (the analysis unions them: it does
    /// not know the search path). Relations with no masked column may be omitted; then
    /// `SELECT *` over them has an unknown width.
    fn relations(&self, schema: Option<&str>, name: &str) -> Vec<&RelationInfo>;
    /// How the function `schema.name` (or unqualified `name`) is classified.
    fn function(&self, schema: Option<&str>, name: &str) -> FunctionKind;
}

/// Taint of one output column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutputTaint {
    /// Masked rules feeding the column.
    pub taint: Taint,
    /// True when the column is anything other than a masked column passed through by
    /// plain references (through subqueries, CTEs, joins, views): an expression, a cast, a
    /// function, a UNION arm, a whole-row value. In `strict` mode such columns are denied.
    pub derived: bool,
}

/// The statement's output columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outputs {
    /// No rows come back (DDL, SET, INSERT without RETURNING, ...).
    None,
    /// Exactly these columns, in RowDescription order.
    Known(Vec<OutputTaint>),
    /// The width is not known (e.g. `SELECT *` over a relation the schema omitted, or
    /// `generate_series(...)` in FROM, `FETCH`, `EXECUTE`): every origin-0 column of the
    /// result gets this taint.
    Unknown(OutputTaint),
}

/// A clause that can leak a masked value by inference (filtering, joining, grouping or
/// sorting on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Clause {
    /// WHERE (and HAVING).
    Where,
    /// JOIN ... ON / USING.
    Join,
    /// GROUP BY (and DISTINCT ON).
    GroupBy,
    /// ORDER BY (including window ORDER BY / PARTITION BY).
    OrderBy,
}

/// The lineage of one statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// What each output column carries.
    pub outputs: Outputs,
    /// Masked columns used in inference-prone clauses, anywhere in the statement
    /// (subqueries included).
    pub predicates: Vec<(Clause, Taint)>,
    /// Every masked rule the statement reads anywhere (output, predicates, subqueries):
    /// errors and notices raised while it runs are scrubbed when this is tainted.
    pub touches: Taint,
    /// Set when the statement must be refused on a masked connection, with the reason
    /// shown to the client (e.g. "INSERT ... SELECT copies masked column
    /// public.customers.email into another table").
    pub refusal: Option<String>,
}

/// The lineage of each statement of a SQL text, in order. A text that does not parse
/// yields one statement with [`Outputs::Unknown`] tainted by nothing and no refusal (the
/// server will reject it too; its error is scrubbed by the caller if needed).
///
/// `column_name` of a tainted column in a refusal message uses `schema.table.column`.
pub fn analyze(sql: &str, schema: &dyn Schema) -> Vec<Lineage> {
    analyze_impl(sql, schema)
}

mod walk;
use walk::analyze_impl;

#[cfg(test)]
mod tests;
