//! Statements: the dispatch over statement kinds, and every kind that is not a query or a
//! data-modifying statement (EXPLAIN, CREATE ... AS, views, COPY, cursors, prepared
//! statements, settings, DDL that could move or expose masked data, and the rest).

use pg_query::protobuf::{self as pb, DiscardMode, ObjectType, VariableSetKind};
use pg_query::NodeEnum as N;

use super::scope::{Col, Flow, Item, Level, Shape};
use super::{inner, strings, Clause, OutputTaint, Outputs, Walker, MAX_DEPTH, PARSER_FAILED};

impl Walker<'_> {
    /// One statement (top level, or inside EXPLAIN, PREPARE, CREATE ... AS, COPY, ...).
    pub(super) fn statement(&mut self, node: &N) -> Outputs {
        if !self.enter() {
            return Outputs::Unknown(OutputTaint::default());
        }
        let outputs = self.statement_inner(node);
        self.leave();
        outputs
    }

    fn statement_inner(&mut self, node: &N) -> Outputs {
        match node {
            N::SelectStmt(s) => self.select_statement(s),
            N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_) => {
                match self.dml(node) {
                    Some(shape) => self.outputs(&shape),
                    None => Outputs::None,
                }
            }
            N::ExplainStmt(e) => {
                let (_, flow) = self.collect(|w| {
                    if let Some(q) = inner(&e.query) {
                        w.statement(q);
                    }
                });
                Outputs::Unknown(OutputTaint {
                    taint: self.taint(&flow),
                    derived: true,
                })
            }
            N::CreateTableAsStmt(c) => {
                let what = if c.is_select_into {
                    "SELECT ... INTO"
                } else if c.objtype == ObjectType::ObjectMatview as i32 {
                    "CREATE MATERIALIZED VIEW"
                } else {
                    "CREATE TABLE ... AS"
                };
                if let Some(N::ExecuteStmt(_)) = inner(&c.query) {
                    // A statement prepared through the extended protocol is not seen here.
                    self.refuse(format!(
                        "{what} EXECUTE stores the rows of a prepared statement Warden cannot \
                         see into a new relation; it is refused on a masked connection"
                    ));
                }
                self.refuse_if_reads(
                    &c.query,
                    &format!("{what} copies {{}} into a new relation, where Warden cannot mask it"),
                );
                Outputs::None
            }
            N::ViewStmt(v) => {
                self.refuse_if_reads(
                    &v.query,
                    "CREATE VIEW over {} would show it unmasked through the view",
                );
                Outputs::None
            }
            N::CopyStmt(c) => self.copy(c),
            N::DeclareCursorStmt(d) => {
                self.refuse_if_reads(
                    &d.query,
                    "DECLARE CURSOR reads {}, which Warden masks only in the rows of a plain \
                     SELECT: use a plain SELECT",
                );
                Outputs::None
            }
            N::PrepareStmt(p) => {
                self.refuse_if_reads(
                    &p.query,
                    "PREPARE reads {}, which Warden masks only in the rows of a plain SELECT: \
                     use a plain SELECT (or the extended query protocol)",
                );
                Outputs::None
            }
            N::ExecuteStmt(e) => {
                let (_, flow) = self.collect(|w| {
                    for param in &e.params {
                        w.expr(param);
                    }
                });
                if !flow.is_empty() {
                    let what = self.describe(&flow);
                    self.refuse(format!(
                        "EXECUTE passes {what} to a prepared statement, where Warden cannot \
                         follow it"
                    ));
                }
                // Prepared statements over masked data are refused when prepared.
                Outputs::Unknown(OutputTaint::default())
            }
            N::FetchStmt(f) if f.ismove => Outputs::None,
            // Cursors over masked data are refused when declared.
            N::FetchStmt(_) => Outputs::Unknown(OutputTaint::default()),
            N::VariableShowStmt(_) => Outputs::Unknown(OutputTaint::default()),
            N::DoStmt(_) => {
                self.refuse(
                    "DO runs procedural code that Warden cannot follow on a masked connection"
                        .to_owned(),
                );
                Outputs::None
            }
            N::CallStmt(_) => {
                self.refuse(
                    "CALL runs a procedure whose code Warden cannot follow on a masked \
                     connection"
                        .to_owned(),
                );
                Outputs::None
            }
            N::VariableSetStmt(v) => {
                self.variable_set(v, "SET");
                Outputs::None
            }
            N::AlterRoleSetStmt(a) => self.setting_default(a.setstmt.as_ref(), "ALTER ROLE"),
            N::AlterDatabaseSetStmt(a) => {
                self.setting_default(a.setstmt.as_ref(), "ALTER DATABASE")
            }
            N::AlterSystemStmt(a) => self.setting_default(a.setstmt.as_ref(), "ALTER SYSTEM"),
            N::DiscardStmt(d) if d.target == DiscardMode::DiscardAll as i32 => {
                self.refuse(SEARCH_PATH_RESET.replace("{}", "DISCARD ALL"));
                Outputs::None
            }
            N::AlterTableStmt(a) => {
                self.alter_table(a);
                self.scan_utility(node);
                Outputs::None
            }
            N::RenameStmt(r) => {
                self.rename(r);
                self.scan_utility(node);
                Outputs::None
            }
            N::AlterObjectSchemaStmt(a) => {
                if let Some(rv) = &a.relation {
                    let item = self.relation_item(rv, false);
                    let flow = item.whole_row().flow;
                    if !flow.is_empty() {
                        let what = self.describe(&flow);
                        self.refuse(format!(
                            "moving {} to another schema would take {what} out of Warden's \
                             masking rules",
                            self.relation_label(rv)
                        ));
                    }
                }
                self.scan_utility(node);
                Outputs::None
            }
            N::CreateSchemaStmt(c) => {
                // CREATE SCHEMA ... CREATE VIEW / TABLE ...: each element is a statement.
                for element in &c.schema_elts {
                    if let Some(element) = &element.node {
                        self.statement(element);
                    }
                }
                Outputs::None
            }
            N::CreatePolicyStmt(p) => {
                self.policy(p.table.as_ref(), [&p.qual, &p.with_check]);
                Outputs::None
            }
            N::AlterPolicyStmt(p) => {
                self.policy(p.table.as_ref(), [&p.qual, &p.with_check]);
                Outputs::None
            }
            N::CreateFunctionStmt(f) => {
                let what = if f.is_procedure {
                    "CREATE PROCEDURE"
                } else {
                    "CREATE FUNCTION"
                };
                self.refuse(format!(
                    "{what} defines code that could read masked columns where Warden cannot \
                     follow it; it is refused on a masked connection"
                ));
                Outputs::None
            }
            N::CreateTrigStmt(_) | N::CreateEventTrigStmt(_) => {
                self.refuse(
                    "CREATE TRIGGER runs a function on later statements, where Warden cannot \
                     follow it; it is refused on a masked connection"
                        .to_owned(),
                );
                Outputs::None
            }
            N::RuleStmt(_) => {
                self.refuse(
                    "CREATE RULE rewrites later statements in ways Warden cannot follow; it is \
                     refused on a masked connection"
                        .to_owned(),
                );
                Outputs::None
            }
            N::CreatePublicationStmt(_)
            | N::AlterPublicationStmt(_)
            | N::CreateSubscriptionStmt(_)
            | N::AlterSubscriptionStmt(_) => {
                self.refuse(
                    "logical replication could copy masked columns out of Warden's reach; it is \
                     refused on a masked connection"
                        .to_owned(),
                );
                Outputs::None
            }
            N::CreateForeignTableStmt(_) | N::ImportForeignSchemaStmt(_) => {
                self.refuse(
                    "a foreign table could show a masked table under another name; it is \
                     refused on a masked connection"
                        .to_owned(),
                );
                Outputs::None
            }
            other => {
                self.scan_utility(other);
                Outputs::None
            }
        }
    }

    /// A top-level SELECT; with INTO it creates a table instead of returning rows.
    fn select_statement(&mut self, s: &pb::SelectStmt) -> Outputs {
        if has_into(s) {
            let (_, flow) = self.collect(|w| w.select(s));
            if !flow.is_empty() {
                let what = self.describe(&flow);
                self.refuse(format!(
                    "SELECT ... INTO copies {what} into a new table, where Warden cannot mask it"
                ));
            }
            return Outputs::None;
        }
        let shape = self.select(s);
        self.outputs(&shape)
    }

    /// Analyses an inner statement and refuses when it reads any masked column; `message`'s
    /// `{}` is replaced by the columns.
    fn refuse_if_reads(&mut self, query: &Option<Box<pb::Node>>, message: &str) {
        let Some(q) = inner(query) else { return };
        let (_, flow) = self.collect(|w| w.statement(q));
        if !flow.is_empty() {
            let what = self.describe(&flow);
            self.refuse(message.replacen("{}", &what, 1));
        }
    }

    /// COPY: a query's rows or a table's columns to the client (masked by the proxy like a
    /// SELECT's), or data into a table. Anything masked going to a server file or program
    /// is out of reach, as is a query's (only tables are masked on the COPY path).
    fn copy(&mut self, c: &pb::CopyStmt) -> Outputs {
        let to_server = !c.filename.is_empty() || c.is_program;
        if let Some(q) = inner(&c.query) {
            let (outputs, flow) = self.collect(|w| w.statement(q));
            if !flow.is_empty() {
                let what = self.describe(&flow);
                self.refuse(format!(
                    "COPY (query) TO reads {what}, which Warden masks only in the rows of a plain \
                     SELECT: use a plain SELECT"
                ));
            }
            return if to_server { Outputs::None } else { outputs };
        }
        let Some(rv) = &c.relation else {
            return Outputs::None;
        };
        let item = self.relation_item(rv, false);
        if c.is_from {
            self.touch(&item);
            if let Some(w) = c.where_clause.as_deref() {
                self.scope.push(Level::with(vec![item]));
                self.clause(Clause::Where, w);
                self.scope.pop();
            }
            return Outputs::None;
        }
        let columns = strings(&c.attlist);
        let shape = if columns.is_empty() {
            match &item.extra {
                Some(extra) => Shape::Unknown(extra.clone()),
                None => Shape::Known(item.cols.clone()),
            }
        } else {
            Shape::Known(
                columns
                    .iter()
                    .map(|name| {
                        let val = item.column(name).map(|h| h.val).unwrap_or_default();
                        Col::named(name.clone(), val)
                    })
                    .collect(),
            )
        };
        let flow = shape.union().flow;
        self.refs.extend(flow.iter().copied());
        if to_server {
            if !flow.is_empty() {
                let what = self.describe(&flow);
                self.refuse(format!(
                    "COPY ... TO a server file or program writes {what} where Warden cannot mask \
                     it"
                ));
            }
            return Outputs::None;
        }
        // The gateway rewrites COPY rows in the default text format only: a delimiter,
        // CSV quoting or another encoding would move field boundaries under it.
        let default_text = c.options.iter().all(|o| match o.node.as_ref() {
            Some(N::DefElem(d)) => {
                d.defname == "format"
                    && matches!(
                        d.arg.as_deref().and_then(|a| a.node.as_ref()),
                        Some(N::String(v)) if v.sval.eq_ignore_ascii_case("text")
                    )
            }
            _ => false,
        });
        if !flow.is_empty() && !default_text {
            let what = self.describe(&flow);
            self.refuse(format!(
                "COPY ... TO with options reads {what}, which Warden masks in COPY output only \
                 in the default text format: drop the options"
            ));
        }
        match shape {
            Shape::Known(_) => self.outputs(&shape),
            Shape::Unknown(_) => Outputs::Unknown(OutputTaint::default()),
        }
    }

    /// SET / RESET: changing the search path could make an unqualified name resolve to a
    /// function that is not a built-in, which the function classification assumes away.
    fn variable_set(&mut self, v: &pb::VariableSetStmt, what: &str) {
        if v.name.eq_ignore_ascii_case("search_path") {
            self.refuse(format!(
                "{what} search_path is refused on a masked connection: it could make a name \
                 resolve to a function that is not a built-in"
            ));
        } else if v.kind == VariableSetKind::VarResetAll as i32 {
            self.refuse(SEARCH_PATH_RESET.replace("{}", "RESET ALL"));
        }
    }

    /// ALTER ROLE / DATABASE / SYSTEM ... SET: the same for later sessions.
    fn setting_default(&mut self, set: Option<&pb::VariableSetStmt>, what: &str) -> Outputs {
        if let Some(set) = set {
            self.variable_set(set, &format!("{what} ... SET"));
        }
        Outputs::None
    }

    /// ALTER TABLE: new or rewritten column values computed from masked columns (USING,
    /// GENERATED, SET EXPRESSION) copy them out of their masked column; INHERIT and ATTACH
    /// PARTITION would show a masked table's rows through an unmasked parent. Errors raised
    /// while the table is rewritten can show rows, so the table's masked columns are touched.
    fn alter_table(&mut self, a: &pb::AlterTableStmt) {
        use pb::AlterTableType as At;
        let Some(rv) = &a.relation else { return };
        let item = self.relation_item(rv, false);
        let label = self.relation_label(rv);
        let whole = item.whole_row().flow;
        self.touch(&item);
        self.scope.push(Level::with(vec![item]));
        for cmd in &a.cmds {
            let Some(N::AlterTableCmd(cmd)) = &cmd.node else {
                continue;
            };
            let def = cmd.def.as_deref().and_then(|d| d.node.as_ref());
            let subtype = At::try_from(cmd.subtype).unwrap_or(At::Undefined);
            match (subtype, def) {
                (At::AtAddColumn | At::AtAlterColumnType, Some(N::ColumnDef(col))) => {
                    let target = if col.colname.is_empty() {
                        cmd.name.clone()
                    } else {
                        col.colname.clone()
                    };
                    if let Some(value) = col.raw_default.as_deref() {
                        self.column_value(value, &label, &target);
                    }
                    for constraint in &col.constraints {
                        self.constraint(constraint, &label, &target);
                    }
                }
                (At::AtColumnDefault | At::AtSetExpression, Some(_)) => {
                    if let Some(value) = cmd.def.as_deref() {
                        self.column_value(value, &label, &cmd.name);
                    }
                }
                (At::AtAddConstraint, Some(_)) => {
                    if let Some(constraint) = cmd.def.as_deref() {
                        self.constraint(constraint, &label, &cmd.name);
                    }
                }
                (At::AtAddInherit, _) if !whole.is_empty() => {
                    let what = self.describe(&whole);
                    self.refuse(format!(
                        "ALTER TABLE {label} INHERIT would show {what} unmasked through the \
                         parent table"
                    ));
                }
                (At::AtAttachPartition, Some(N::PartitionCmd(p))) => {
                    if let Some(part) = &p.name {
                        let flow = self.relation_item(part, false).whole_row().flow;
                        if !flow.is_empty() {
                            let what = self.describe(&flow);
                            self.refuse(format!(
                                "ATTACH PARTITION would show {what} unmasked through {label}"
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        self.scope.pop();
    }

    /// A value stored into `label.column` by DDL: refused when computed from masked columns.
    fn column_value(&mut self, value: &pb::Node, label: &str, column: &str) {
        let val = self.expr(value);
        if !val.flow.is_empty() {
            let what = self.describe(&val.flow);
            self.refuse(format!(
                "ALTER TABLE copies {what} into {label}.{column}, where Warden cannot mask it"
            ));
        }
    }

    /// A column or table constraint: defaults and generated values store data; CHECK and
    /// exclusion predicates filter on it.
    fn constraint(&mut self, node: &pb::Node, label: &str, column: &str) {
        use pb::ConstrType as Ct;
        let Some(N::Constraint(c)) = &node.node else {
            return;
        };
        if let Some(expr) = c.raw_expr.as_deref() {
            match Ct::try_from(c.contype).unwrap_or(Ct::Undefined) {
                Ct::ConstrDefault | Ct::ConstrGenerated => self.column_value(expr, label, column),
                _ => {
                    self.clause(Clause::Where, expr);
                }
            }
        }
        if let Some(w) = c.where_clause.as_deref() {
            self.clause(Clause::Where, w);
        }
    }

    /// A row security policy filtering on masked columns would apply, to every later
    /// statement, a predicate Warden does not see.
    fn policy(&mut self, table: Option<&pb::RangeVar>, exprs: [&Option<Box<pb::Node>>; 2]) {
        let item = match table {
            Some(rv) => self.relation_item(rv, false),
            None => Item::default(),
        };
        self.scope.push(Level::with(vec![item]));
        let (_, flow) = self.collect(|w| {
            for e in exprs.into_iter().flatten() {
                w.expr(e);
            }
        });
        self.scope.pop();
        if !flow.is_empty() {
            let what = self.describe(&flow);
            self.refuse(format!(
                "a row security policy on {what} would filter later statements in a way Warden \
                 cannot see; it is refused on a masked connection"
            ));
        }
    }

    /// Renaming a masked column or a relation with masked columns (or a schema, whose
    /// contents are unknown here) would take them out of masking rules keyed by name.
    fn rename(&mut self, r: &pb::RenameStmt) {
        let kind = ObjectType::try_from(r.rename_type).unwrap_or(ObjectType::Undefined);
        if kind == ObjectType::ObjectSchema {
            self.refuse(
                "renaming a schema could take masked tables out of Warden's masking rules; it is \
                 refused on a masked connection"
                    .to_owned(),
            );
            return;
        }
        let Some(rv) = &r.relation else { return };
        let item = self.relation_item(rv, false);
        let flow = match kind {
            ObjectType::ObjectColumn => item.column(&r.subname).map(|h| h.val.flow),
            ObjectType::ObjectTable
            | ObjectType::ObjectView
            | ObjectType::ObjectMatview
            | ObjectType::ObjectForeignTable => Some(item.whole_row().flow),
            _ => None,
        };
        if let Some(flow) = flow.filter(|f| !f.is_empty()) {
            let what = self.describe(&flow);
            self.refuse(format!(
                "renaming would take {what} out of Warden's masking rules; it is refused on a \
                 masked connection"
            ));
        }
    }

    /// Any other statement: the masked columns of every relation it names are touched (its
    /// errors may show rows), and a function call in it is checked like anywhere else.
    fn scan_utility(&mut self, node: &N) {
        let flow = self.scan(node);
        self.refs.extend(flow);
    }

    /// Finds, in any subtree, the relations it names (returning their masked columns) and
    /// the functions it calls (checking them), without understanding the tree.
    pub(super) fn scan(&mut self, node: &N) -> Flow {
        let Ok(value) = serde_json::to_value(node) else {
            self.refuse(PARSER_FAILED.to_owned());
            return Flow::new();
        };
        let mut found = Found::default();
        found.walk(&value, 0);
        if found.too_deep {
            self.too_deep = true;
        }
        let mut flow = Flow::new();
        for (schema, name) in &found.relations {
            let item = self.relation(schema.as_deref(), name);
            flow.extend(item.whole_row().flow);
        }
        for (schema, name) in &found.functions {
            self.check_call(schema.as_deref(), name, &Flow::new(), None);
        }
        flow
    }
}

const SEARCH_PATH_RESET: &str = "{} resets search_path, which is refused on a masked connection: \
     it could make a name resolve to a function that is not a built-in";

/// Relations and function calls found by a generic walk of a serialized subtree.
#[derive(Default)]
struct Found {
    relations: Vec<(Option<String>, String)>,
    functions: Vec<(Option<String>, String)>,
    too_deep: bool,
}

impl Found {
    fn walk(&mut self, value: &serde_json::Value, depth: usize) {
        use serde_json::Value;
        if depth > 4 * MAX_DEPTH {
            self.too_deep = true;
            return;
        }
        match value {
            Value::Object(map) => {
                // A RangeVar, wherever it sits (as a node or as a typed field).
                if let (Some(Value::String(rel)), Some(Value::Bool(_))) =
                    (map.get("relname"), map.get("inh"))
                {
                    let schema = match map.get("schemaname") {
                        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                        _ => None,
                    };
                    self.relations.push((schema, rel.clone()));
                }
                // A FuncCall.
                if let (Some(Value::Array(parts)), Some(_)) =
                    (map.get("funcname"), map.get("agg_star"))
                {
                    let parts: Vec<String> = parts
                        .iter()
                        .filter_map(|p| p.pointer("/node/String/sval"))
                        .filter_map(|s| s.as_str().map(str::to_owned))
                        .collect();
                    if let Some((name, qualifiers)) = parts.split_last() {
                        self.functions
                            .push((qualifiers.last().cloned(), name.clone()));
                    }
                }
                for v in map.values() {
                    self.walk(v, depth + 1);
                }
            }
            Value::Array(items) => {
                for v in items {
                    self.walk(v, depth + 1);
                }
            }
            _ => {}
        }
    }
}

/// Whether a SELECT (or the leftmost arm of its set operation, where the parser puts it)
/// has an INTO clause.
fn has_into(s: &pb::SelectStmt) -> bool {
    s.into_clause.is_some() || s.larg.as_deref().is_some_and(has_into)
}
