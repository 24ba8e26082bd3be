//! Expressions: what each value carries, column references resolved as PostgreSQL does,
//! and the function calls that are refused.

use pg_query::protobuf as pb;
use pg_query::NodeEnum as N;

use super::super::FunctionKind;
use super::scope::{Flow, Val};
use super::{Clause, Walker};

/// Built-ins that run SQL given as text or read whole tables named by their arguments:
/// the walker cannot see what they read, whatever the catalog classification says.
const ALWAYS_REFUSED: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
    "ts_stat",
];

/// Name prefixes of function families that run SQL over another connection.
const ALWAYS_REFUSED_PREFIXES: &[&str] = &["dblink"];

impl Walker<'_> {
    /// What an expression's value carries. Everything but a plain column reference is
    /// derived. Masked columns read on the way (subqueries included) go to `refs`.
    pub(super) fn expr(&mut self, node: &pb::Node) -> Val {
        let Some(n) = node.node.as_ref() else {
            return Val::derived();
        };
        if !self.enter() {
            return self.scope.everything();
        }
        let val = self.expr_node(n);
        self.leave();
        val
    }

    fn expr_node(&mut self, n: &N) -> Val {
        match n {
            N::ColumnRef(c) => self.column_ref(c),
            N::AConst(_)
            | N::ParamRef(_)
            | N::SqlvalueFunction(_)
            | N::SetToDefault(_)
            | N::CurrentOfExpr(_)
            | N::MergeSupportFunc(_)
            | N::Integer(_)
            | N::Float(_)
            | N::Boolean(_)
            | N::String(_)
            | N::BitString(_)
            | N::TypeName(_)
            | N::AStar(_) => Val::derived(),
            N::AExpr(e) => {
                self.check_operator(&e.name);
                self.all([&e.lexpr, &e.rexpr])
            }
            N::BoolExpr(b) => self.list(&b.args),
            N::FuncCall(f) => self.func_call(f),
            N::TypeCast(t) => self.all([&t.arg]),
            N::CollateClause(c) => self.all([&c.arg]),
            N::CaseExpr(c) => {
                let mut val = self.all([&c.arg, &c.defresult]);
                val.absorb(&self.list(&c.args));
                val
            }
            N::CaseWhen(w) => self.all([&w.expr, &w.result]),
            N::CoalesceExpr(c) => self.list(&c.args),
            N::MinMaxExpr(m) => self.list(&m.args),
            N::RowExpr(r) => self.list(&r.args),
            N::AArrayExpr(a) => self.list(&a.elements),
            N::NullTest(t) => self.all([&t.arg]),
            N::BooleanTest(t) => self.all([&t.arg]),
            N::SubLink(s) => self.sublink(s),
            N::AIndirection(i) => self.indirection(i),
            N::AIndices(i) => self.all([&i.lidx, &i.uidx]),
            N::GroupingFunc(g) => self.list(&g.args),
            N::NamedArgExpr(a) => self.all([&a.arg]),
            N::List(l) => self.list(&l.items),
            N::XmlExpr(x) => {
                let mut val = self.list(&x.args);
                val.absorb(&self.list(&x.named_args));
                val
            }
            N::XmlSerialize(x) => self.all([&x.expr]),
            N::ResTarget(r) => {
                let mut val = self.all([&r.val]);
                val.absorb(&self.list(&r.indirection));
                val
            }
            N::MultiAssignRef(m) => self.all([&m.source]),
            N::SortBy(s) => self.all([&s.node]),
            N::JsonValueExpr(j) => self.json_value(j),
            N::JsonKeyValue(kv) => self.json_key_value(kv),
            N::JsonObjectConstructor(c) => self.list(&c.exprs),
            N::JsonArrayConstructor(c) => self.list(&c.exprs),
            N::JsonArrayQueryConstructor(c) => {
                let mut val = Val::derived();
                if let Some(q) = c.query.as_deref() {
                    val.absorb_flow(&self.query(q).union().flow);
                }
                val
            }
            N::JsonObjectAgg(a) => {
                let mut val = self.json_agg(a.constructor.as_deref());
                if let Some(kv) = a.arg.as_deref() {
                    val.absorb(&self.json_key_value(kv));
                }
                val
            }
            N::JsonArrayAgg(a) => {
                let mut val = self.json_agg(a.constructor.as_deref());
                if let Some(v) = a.arg.as_deref() {
                    val.absorb(&self.json_value(v));
                }
                val
            }
            N::JsonParseExpr(p) => self.json_value_opt(p.expr.as_deref()),
            N::JsonSerializeExpr(p) => self.json_value_opt(p.expr.as_deref()),
            N::JsonScalarExpr(s) => self.all([&s.expr]),
            N::JsonIsPredicate(p) => self.all([&p.expr]),
            N::JsonFuncExpr(f) => {
                let mut val = self.json_value_opt(f.context_item.as_deref());
                val.absorb(&self.all([&f.pathspec]));
                val.absorb(&self.list(&f.passing));
                for b in [&f.on_empty, &f.on_error].into_iter().flatten() {
                    val.absorb(&self.all([&b.expr]));
                }
                val
            }
            N::JsonArgument(a) => self.json_value_opt(a.val.as_deref()),
            N::JsonBehavior(b) => self.all([&b.expr]),
            other => self.unfollowed(format!("the expression {}", node_kind(other)), Some(other)),
        }
    }

    /// A derived value carrying every one of `nodes`.
    fn all<const K: usize>(&mut self, nodes: [&Option<Box<pb::Node>>; K]) -> Val {
        let mut val = Val::derived();
        for node in nodes.into_iter().flatten() {
            val.absorb(&self.expr(node));
        }
        val.into_derived()
    }

    fn list(&mut self, nodes: &[pb::Node]) -> Val {
        let mut val = Val::derived();
        for node in nodes {
            val.absorb(&self.expr(node));
        }
        val.into_derived()
    }

    pub(super) fn json_value(&mut self, j: &pb::JsonValueExpr) -> Val {
        self.all([&j.raw_expr, &j.formatted_expr])
    }

    fn json_value_opt(&mut self, j: Option<&pb::JsonValueExpr>) -> Val {
        match j {
            Some(j) => self.json_value(j),
            None => Val::derived(),
        }
    }

    fn json_key_value(&mut self, kv: &pb::JsonKeyValue) -> Val {
        let mut val = self.all([&kv.key]);
        val.absorb(&self.json_value_opt(kv.value.as_deref()));
        val
    }

    /// JSON_OBJECTAGG / JSON_ARRAYAGG's FILTER, ORDER BY and OVER, as for other aggregates.
    fn json_agg(&mut self, c: Option<&pb::JsonAggConstructor>) -> Val {
        let mut val = Val::derived();
        let Some(c) = c else { return val };
        if let Some(filter) = c.agg_filter.as_deref() {
            val.absorb(&self.clause(Clause::Where, filter));
        }
        for key in &c.agg_order {
            val.absorb(&self.clause(Clause::OrderBy, key));
        }
        if let Some(over) = c.over.as_deref() {
            val.absorb(&self.window(over));
        }
        val
    }

    /// A subquery in an expression. Its value is what its output carries (EXISTS yields a
    /// boolean: what it filters on is recorded as the subquery's own predicates).
    fn sublink(&mut self, s: &pb::SubLink) -> Val {
        self.check_operator(&s.oper_name);
        let mut val = self.all([&s.testexpr]);
        let shape = match s.subselect.as_deref() {
            Some(q) => self.query(q),
            None => super::scope::Shape::empty(),
        };
        if s.sub_link_type != pb::SubLinkType::ExistsSublink as i32 {
            val.absorb_flow(&shape.union().flow);
        }
        val
    }

    /// `(expr).field`, `(expr)[i]`. `(c).email` on a whole-row reference `c` is that
    /// column, not the whole row.
    fn indirection(&mut self, i: &pb::AIndirection) -> Val {
        let field = match i.indirection.first().and_then(|n| n.node.as_ref()) {
            Some(N::String(s)) => Some(s.sval.as_str()),
            _ => None,
        };
        let row_column = match (i.arg.as_deref().and_then(|a| a.node.as_ref()), field) {
            (Some(N::ColumnRef(cr)), Some(field)) => match column_ref_parts(cr) {
                Some((names, false)) if names.len() == 1 => {
                    if self.scope.find_column(names[0]).is_none() {
                        self.scope
                            .find_item(None, names[0])
                            .and_then(|item| item.column(field))
                            .map(|hit| hit.val)
                    } else {
                        None
                    }
                }
                _ => None,
            },
            _ => None,
        };
        let mut val = match row_column {
            Some(v) => {
                self.refs.extend(v.flow.iter().copied());
                v.into_derived()
            }
            None => self.all([&i.arg]),
        };
        val.absorb(&self.list(&i.indirection));
        val
    }

    // ----- column references -------------------------------------------------------------

    fn column_ref(&mut self, c: &pb::ColumnRef) -> Val {
        let Some((names, star)) = column_ref_parts(c) else {
            return self.unfollowed("an unusual column reference".to_owned(), None);
        };
        let val = self.resolve(&names, star);
        self.refs.extend(val.flow.iter().copied());
        val
    }

    /// A column reference's value, following PostgreSQL's order of interpretations: a
    /// range item (`rel`, `schema.rel`, `catalog.schema.rel`) then a column and fields,
    /// else a column then fields of its composite value. A bare name is a column, else a
    /// whole row. An unknown name carries nothing (the server rejects it).
    pub(super) fn resolve(&mut self, names: &[&str], star: bool) -> Val {
        let n = names.len();
        if n == 0 {
            let mut val = Val::derived();
            for item in self.scope.innermost_items() {
                val.absorb_flow(&item.whole_row().flow);
            }
            return val;
        }
        if n == 1 && !star {
            return self.resolve_bare(names[0]);
        }
        let longest = if star { n.min(3) } else { (n - 1).min(3) };
        for q in (1..=longest).rev() {
            let Some((schema, rel)) = item_path(names, q) else {
                continue;
            };
            let Some(item) = self.scope.find_item(schema, rel) else {
                continue;
            };
            let rest = &names[q..];
            let Some((column, fields)) = rest.split_first() else {
                return item.whole_row();
            };
            let plain = fields.is_empty() && !star;
            return match item.column(column) {
                Some(mut hit) => {
                    hit.val.derived |= !plain;
                    hit.val
                }
                // Not a column of `rel`: `rel.name` is the call `name(rel)` (attribute
                // notation). Where `rel`'s columns are not all known the name is taken for a
                // column (asking the catalog about every such name would refuse most
                // references to relations it omits).
                None if plain => {
                    let row = item.whole_row();
                    let column = (*column).to_owned();
                    self.check_call(None, &column, &row.flow, None);
                    row
                }
                None => item.whole_row(),
            };
        }
        match self.scope.find_column(names[0]) {
            Some(hit) => hit.val.into_derived(),
            None => Val::default(),
        }
    }

    fn resolve_bare(&mut self, name: &str) -> Val {
        let row = self.scope.find_item(None, name).map(|i| i.whole_row());
        match (self.scope.find_column(name), row) {
            (Some(hit), _) if hit.known => hit.val,
            // Possibly a column of an item whose columns are unknown, possibly a whole row.
            (Some(hit), Some(row)) => {
                let mut val = hit.val;
                val.absorb(&row);
                val
            }
            (Some(hit), None) => hit.val,
            (None, Some(row)) => row,
            (None, None) => Val::default(),
        }
    }

    // ----- function calls ----------------------------------------------------------------

    /// A function call: its value carries its arguments, FILTER, aggregate ORDER BY and
    /// window. The call itself may be refused (see [`Walker::check_call`]).
    fn func_call(&mut self, f: &pb::FuncCall) -> Val {
        let (val, flow) = self.collect(|w| {
            let mut val = w.list(&f.args);
            if let Some(filter) = f.agg_filter.as_deref() {
                val.absorb(&w.clause(Clause::Where, filter));
            }
            for key in &f.agg_order {
                val.absorb(&w.clause(Clause::OrderBy, key));
            }
            if let Some(over) = f.over.as_deref() {
                val.absorb(&w.window(over));
            }
            val
        });
        let parts = super::strings(&f.funcname);
        if let Some((name, qualifiers)) = parts.split_last() {
            let schema = qualifiers.last().map(String::as_str);
            self.check_call(schema, name, &flow, Some(&f.args));
        } else {
            self.unfollowed("a function call without a name".to_owned(), None);
        }
        val.into_derived()
    }

    /// Refuses a call that could move masked data out of the walker's sight: a function
    /// that is not a built-in (it may read masked columns itself), a sink given masked
    /// data, SQL-running built-ins, and `set_config` on the search path. `args` is set for
    /// an explicit call (not attribute notation).
    pub(super) fn check_call(
        &mut self,
        schema: Option<&str>,
        name: &str,
        flow: &Flow,
        args: Option<&[pb::Node]>,
    ) {
        let label = match schema {
            Some(s) => format!("{s}.{name}"),
            None => name.to_owned(),
        };
        if ALWAYS_REFUSED.contains(&name)
            || ALWAYS_REFUSED_PREFIXES.iter().any(|p| name.starts_with(p))
        {
            self.refuse(format!(
                "{label}() runs SQL or reads tables named in its arguments, which Warden cannot \
                 follow on a masked connection"
            ));
            return;
        }
        let builtin = schema.is_none_or(|s| s == "pg_catalog");
        if builtin && name == "set_config" {
            if let Some(args) = args {
                match args.first().and_then(literal_string) {
                    Some(setting) if !setting.trim().eq_ignore_ascii_case("search_path") => {}
                    Some(_) => self.refuse(
                        "set_config('search_path', ...) is refused on a masked connection: it \
                         could make a name resolve to a function that is not a built-in"
                            .to_owned(),
                    ),
                    None => self.refuse(
                        "set_config() with a setting name that is not a literal is refused on a \
                         masked connection: it could change search_path"
                            .to_owned(),
                    ),
                }
            }
        }
        match self.schema.function(schema, name) {
            FunctionKind::Pure => {}
            FunctionKind::Sink if flow.is_empty() => {}
            FunctionKind::Sink => {
                let what = self.describe(flow);
                self.refuse(format!(
                    "{label}() would carry {what} out of the query result, where Warden cannot \
                     mask it"
                ));
            }
            FunctionKind::Opaque => self.refuse(format!(
                "{label}() is not a built-in function: it could read masked columns itself, \
                 which Warden cannot follow on a masked connection"
            )),
        }
    }

    /// A schema-qualified operator outside pg_catalog runs a user function.
    pub(super) fn check_operator(&mut self, name: &[pb::Node]) {
        let parts = super::strings(name);
        if let Some((op, qualifiers)) = parts.split_last() {
            if let Some(schema) = qualifiers.last().filter(|s| *s != "pg_catalog") {
                self.refuse(format!(
                    "operator {schema}.{op} is not a built-in: it could read masked columns \
                     itself, which Warden cannot follow on a masked connection"
                ));
            }
        }
    }
}

/// A column reference's names and whether it ends in `*`; `None` for forms the grammar
/// does not produce.
pub(super) fn column_ref_parts(c: &pb::ColumnRef) -> Option<(Vec<&str>, bool)> {
    let mut names = Vec::with_capacity(c.fields.len());
    let mut star = false;
    for (i, field) in c.fields.iter().enumerate() {
        match &field.node {
            Some(N::String(s)) => names.push(s.sval.as_str()),
            Some(N::AStar(_)) if i + 1 == c.fields.len() => star = true,
            _ => return None,
        }
    }
    Some((names, star))
}

/// The range item designated by the first `q` names: `rel`, `schema.rel`,
/// `catalog.schema.rel` (the catalog is the current database).
pub(super) fn item_path<'a>(names: &[&'a str], q: usize) -> Option<(Option<&'a str>, &'a str)> {
    match (q, names) {
        (1, [rel, ..]) => Some((None, rel)),
        (2, [schema, rel, ..]) => Some((Some(schema), rel)),
        (3, [_, schema, rel, ..]) => Some((Some(schema), rel)),
        _ => None,
    }
}

/// A string literal (possibly cast, or a named argument's value).
fn literal_string(node: &pb::Node) -> Option<&str> {
    match node.node.as_ref()? {
        N::AConst(pb::AConst {
            val: Some(pb::a_const::Val::Sval(s)),
            ..
        }) => Some(&s.sval),
        N::TypeCast(t) => literal_string(t.arg.as_deref()?),
        N::NamedArgExpr(a) => literal_string(a.arg.as_deref()?),
        _ => None,
    }
}

/// The name of a node's kind, for messages.
fn node_kind(node: &N) -> String {
    match serde_json::to_value(node) {
        Ok(serde_json::Value::Object(map)) => match map.keys().next() {
            Some(kind) => kind.clone(),
            None => "node".to_owned(),
        },
        _ => "node".to_owned(),
    }
}

/// How sure the walker is of an expression's output column name (PostgreSQL's
/// FigureColname strengths, plus "unsure").
enum Figure {
    /// A name that wins over a cast's type name (strength 2).
    Strong(String),
    /// A fallback name (strength 1).
    Weak(String),
    /// No name: "?column?" (strength 0).
    Nothing,
    /// The walker does not know PostgreSQL's name.
    Unsure,
}

/// The output column name PostgreSQL gives an expression; `None` when the walker does not
/// know it (the column then matches any name, failing closed).
pub(super) fn output_name(node: &pb::Node) -> Option<String> {
    match figure(node) {
        Figure::Strong(name) | Figure::Weak(name) => Some(name),
        Figure::Nothing => Some("?column?".to_owned()),
        Figure::Unsure => None,
    }
}

fn figure(node: &pb::Node) -> Figure {
    let strong = |s: &str| Figure::Strong(s.to_owned());
    let Some(n) = node.node.as_ref() else {
        return Figure::Nothing;
    };
    match n {
        N::ColumnRef(c) => match c.fields.iter().rev().find_map(|f| match &f.node {
            Some(N::String(s)) => Some(s.sval.clone()),
            _ => None,
        }) {
            Some(name) => Figure::Strong(name),
            None => Figure::Nothing,
        },
        N::AIndirection(i) => {
            let field = i.indirection.iter().rev().find_map(|f| match &f.node {
                Some(N::String(s)) => Some(s.sval.clone()),
                _ => None,
            });
            match (field, i.arg.as_deref()) {
                (Some(name), _) => Figure::Strong(name),
                (None, Some(arg)) => figure(arg),
                (None, None) => Figure::Nothing,
            }
        }
        N::FuncCall(f) => match super::strings(&f.funcname).pop() {
            Some(name) => Figure::Strong(name),
            None => Figure::Unsure,
        },
        N::AExpr(e) if e.kind == pb::AExprKind::AexprNullif as i32 => strong("nullif"),
        N::AExpr(_)
        | N::AConst(_)
        | N::ParamRef(_)
        | N::BoolExpr(_)
        | N::NullTest(_)
        | N::BooleanTest(_) => Figure::Nothing,
        N::TypeCast(t) => {
            let inner = match t.arg.as_deref() {
                Some(arg) => figure(arg),
                None => Figure::Nothing,
            };
            match inner {
                Figure::Strong(_) | Figure::Unsure => inner,
                Figure::Weak(_) | Figure::Nothing => {
                    match t.type_name.as_ref().map(|tn| super::strings(&tn.names)) {
                        Some(mut names) if !names.is_empty() => {
                            Figure::Weak(names.pop().unwrap_or_default())
                        }
                        _ => inner,
                    }
                }
            }
        }
        N::CollateClause(c) => match c.arg.as_deref() {
            Some(arg) => figure(arg),
            None => Figure::Nothing,
        },
        N::GroupingFunc(_) => strong("grouping"),
        N::MergeSupportFunc(_) => strong("merge_action"),
        N::SubLink(s) => match pb::SubLinkType::try_from(s.sub_link_type) {
            Ok(pb::SubLinkType::ExistsSublink) => strong("exists"),
            Ok(pb::SubLinkType::ArraySublink) => strong("array"),
            Ok(pb::SubLinkType::ExprSublink) => match s.subselect.as_deref().map(|q| &q.node) {
                Some(Some(N::SelectStmt(sel)))
                    if sel.larg.is_none() && sel.values_lists.is_empty() =>
                {
                    match sel.target_list.first().map(|t| &t.node) {
                        Some(Some(N::ResTarget(t))) if !t.name.is_empty() => {
                            Figure::Strong(t.name.clone())
                        }
                        Some(Some(N::ResTarget(t))) => match t.val.as_deref().map(output_name) {
                            Some(Some(name)) => Figure::Strong(name),
                            _ => Figure::Unsure,
                        },
                        _ => Figure::Unsure,
                    }
                }
                _ => Figure::Unsure,
            },
            Ok(_) => Figure::Nothing,
            Err(_) => Figure::Unsure,
        },
        N::CaseExpr(c) => {
            let inner = match c.defresult.as_deref() {
                Some(d) => figure(d),
                None => Figure::Nothing,
            };
            match inner {
                Figure::Strong(_) | Figure::Unsure => inner,
                Figure::Weak(_) | Figure::Nothing => Figure::Weak("case".to_owned()),
            }
        }
        N::AArrayExpr(_) => strong("array"),
        N::RowExpr(_) => strong("row"),
        N::CoalesceExpr(_) => strong("coalesce"),
        N::MinMaxExpr(m) => match pb::MinMaxOp::try_from(m.op) {
            Ok(pb::MinMaxOp::IsGreatest) => strong("greatest"),
            Ok(pb::MinMaxOp::IsLeast) => strong("least"),
            _ => Figure::Unsure,
        },
        N::XmlSerialize(_) => strong("xmlserialize"),
        _ => Figure::Unsure,
    }
}
