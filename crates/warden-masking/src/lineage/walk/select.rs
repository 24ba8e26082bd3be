//! Queries: SELECT, VALUES, set operations, WITH clauses and FROM items.

use pg_query::protobuf as pb;
use pg_query::NodeEnum as N;

use super::scope::{Col, Item, Level, Shape, Val};
use super::{strings, Clause, Cte, Walker};

/// How many times the CTEs of a WITH RECURSIVE clause are re-analysed while their columns
/// still change, before the walker assumes each may carry anything any of them does.
const MAX_FIXPOINT_ROUNDS: usize = 6;

/// A SELECT's target list as analysed.
pub(super) struct Targets {
    pub cols: Vec<Col>,
    /// Set when a `*` expanded a row source of unknown width: what its columns may carry.
    pub unknown: Option<Val>,
}

impl Targets {
    /// Known columns, or, if any `*` had an unknown width, one unknown shape carrying
    /// everything (the proxy cannot tell which column is which).
    pub fn into_shape(self) -> Shape {
        match self.unknown {
            None => Shape::Known(self.cols),
            Some(mut all) => {
                for col in &self.cols {
                    all.absorb(&col.val);
                }
                Shape::Unknown(all.into_derived())
            }
        }
    }
}

impl Walker<'_> {
    /// A query as a row source: SELECT, VALUES or a set operation, or a data-modifying
    /// statement (its RETURNING list) in a WITH clause.
    pub(super) fn query(&mut self, node: &pb::Node) -> Shape {
        match node.node.as_ref() {
            Some(N::SelectStmt(s)) => self.select(s),
            Some(
                n @ (N::InsertStmt(_) | N::UpdateStmt(_) | N::DeleteStmt(_) | N::MergeStmt(_)),
            ) => self.dml(n).unwrap_or_else(Shape::empty),
            Some(other) => {
                Shape::Unknown(self.unfollowed("this kind of subquery".to_owned(), Some(other)))
            }
            None => Shape::empty(),
        }
    }

    /// A SELECT, VALUES list or set operation, with its WITH clause.
    pub(super) fn select(&mut self, s: &pb::SelectStmt) -> Shape {
        if !self.enter() {
            return Shape::Unknown(self.scope.everything());
        }
        let framed = self.with_clause(s.with_clause.as_ref());
        let shape = if s.op != pb::SetOperation::SetopNone as i32
            && s.op != pb::SetOperation::Undefined as i32
        {
            self.set_operation(s)
        } else if !s.values_lists.is_empty() {
            self.values(s)
        } else {
            self.simple_select(s)
        };
        if framed {
            self.ctes.pop();
        }
        self.leave();
        shape
    }

    /// UNION / INTERSECT / EXCEPT: column i of the result may come from column i of either
    /// arm, so it carries both, and is derived once anything masked reaches it.
    fn set_operation(&mut self, s: &pb::SelectStmt) -> Shape {
        let (Some(l), Some(r)) = (s.larg.as_deref(), s.rarg.as_deref()) else {
            return Shape::Unknown(self.unfollowed("a malformed set operation".to_owned(), None));
        };
        let left = self.select(l);
        let right = self.select(r);
        let shape = match (left, right) {
            (Shape::Known(mut lc), Shape::Known(rc)) if lc.len() == rc.len() => {
                for (col, other) in lc.iter_mut().zip(&rc) {
                    col.val.absorb(&other.val);
                    if !col.val.flow.is_empty() {
                        col.val.derived = true;
                    }
                }
                Shape::Known(lc)
            }
            (left, right) => {
                let mut all = left.union();
                all.absorb(&right.union());
                Shape::Unknown(all.into_derived())
            }
        };
        self.output_clauses(s, &shape);
        shape
    }

    /// VALUES: column i carries whatever row expression i of any row does.
    fn values(&mut self, s: &pb::SelectStmt) -> Shape {
        let mut cols: Vec<Col> = Vec::new();
        let mut ragged = false;
        for (r, row) in s.values_lists.iter().enumerate() {
            let items = match &row.node {
                Some(N::List(list)) => list.items.as_slice(),
                _ => std::slice::from_ref(row),
            };
            if r == 0 {
                cols = (1..=items.len())
                    .map(|i| Col::named(format!("column{i}"), Val::derived()))
                    .collect();
            } else if items.len() != cols.len() {
                ragged = true;
            }
            for (i, item) in items.iter().enumerate() {
                let val = self.expr(item);
                match cols.get_mut(i) {
                    Some(col) => col.val.absorb(&val),
                    None => {
                        ragged = true;
                        if let Some(last) = cols.last_mut() {
                            last.val.absorb(&val);
                        }
                    }
                }
            }
        }
        let shape = Shape::Known(cols);
        let shape = if ragged {
            Shape::Unknown(shape.union().into_derived())
        } else {
            shape
        };
        self.output_clauses(s, &shape);
        shape
    }

    /// ORDER BY / LIMIT / OFFSET of a set operation or VALUES, which see only the output
    /// columns.
    fn output_clauses(&mut self, s: &pb::SelectStmt, shape: &Shape) {
        if s.sort_clause.is_empty() && s.limit_count.is_none() && s.limit_offset.is_none() {
            return;
        }
        let targets = match shape {
            Shape::Known(cols) => Targets {
                cols: cols.clone(),
                unknown: None,
            },
            Shape::Unknown(val) => Targets {
                cols: Vec::new(),
                unknown: Some(val.clone()),
            },
        };
        let item = Item {
            cols: targets.cols.clone(),
            extra: targets.unknown.clone(),
            ..Item::default()
        };
        self.scope.push(Level::with(vec![item]));
        for key in &s.sort_clause {
            self.sort_key(Clause::OrderBy, key, &targets);
        }
        self.limits(s);
        self.scope.pop();
    }

    /// LIMIT and OFFSET: a count computed from a masked value leaks it through the number of
    /// rows, so they count as filters.
    fn limits(&mut self, s: &pb::SelectStmt) {
        for limit in [&s.limit_count, &s.limit_offset].into_iter().flatten() {
            self.clause(Clause::Where, limit);
        }
    }

    /// A plain SELECT: FROM, WHERE, the target list, and the clauses that filter, group or
    /// sort on values.
    fn simple_select(&mut self, s: &pb::SelectStmt) -> Shape {
        self.scope.push(Level::default());
        for from in &s.from_clause {
            let item = self.range_item(from);
            if let Some(level) = self.scope.innermost() {
                level.items.push(item);
            }
        }
        if let Some(w) = s.where_clause.as_deref() {
            self.clause(Clause::Where, w);
        }
        for window in &s.window_clause {
            if let Some(N::WindowDef(def)) = &window.node {
                let val = self.window(def);
                if let Some(level) = self.scope.innermost() {
                    level.windows.push((def.name.clone(), val));
                }
            }
        }
        let targets = self.targets(&s.target_list);
        for key in &s.group_clause {
            self.group_key(key, &targets);
        }
        if let Some(h) = s.having_clause.as_deref() {
            self.clause(Clause::Where, h);
        }
        for key in s.distinct_clause.iter().filter(|n| n.node.is_some()) {
            self.sort_key(Clause::GroupBy, key, &targets);
        }
        for key in &s.sort_clause {
            self.sort_key(Clause::OrderBy, key, &targets);
        }
        self.limits(s);
        self.scope.pop();
        targets.into_shape()
    }

    /// A target list (SELECT or RETURNING): one column per target, `*` expanded.
    pub(super) fn targets(&mut self, list: &[pb::Node]) -> Targets {
        let mut targets = Targets {
            cols: Vec::with_capacity(list.len()),
            unknown: None,
        };
        for node in list {
            let Some(N::ResTarget(target)) = &node.node else {
                let val = self.unfollowed("an unusual target list entry".to_owned(), None);
                targets.cols.push(Col { name: None, val });
                continue;
            };
            let Some(value) = target.val.as_deref() else {
                continue;
            };
            if let Some(N::ColumnRef(cr)) = &value.node {
                if let Some((names, true)) = super::expr::column_ref_parts(cr) {
                    self.expand_star(&names, &mut targets);
                    continue;
                }
            }
            let val = self.expr(value);
            let name = if target.name.is_empty() {
                super::expr::output_name(value)
            } else {
                Some(target.name.clone())
            };
            targets.cols.push(Col { name, val });
        }
        targets
    }

    /// `*`, `x.*` or `schema.x.*` in a target list: the item's columns, each passed through.
    fn expand_star(&mut self, names: &[&str], targets: &mut Targets) {
        let mut cols = Vec::new();
        let mut extra: Option<Val> = None;
        if names.is_empty() {
            for item in self.scope.innermost_items() {
                cols.extend(item.cols.iter().cloned());
                if let Some(e) = &item.extra {
                    add_val(&mut extra, e);
                }
            }
        } else {
            let found = match super::expr::item_path(names, names.len()) {
                Some((schema, rel)) => self.scope.find_item(schema, rel),
                None => None,
            };
            match found {
                Some(item) => {
                    cols.extend(item.cols.iter().cloned());
                    if let Some(e) = &item.extra {
                        add_val(&mut extra, e);
                    }
                }
                // A composite column's fields: of unknown number.
                None => {
                    let val = self.resolve(names, false).into_derived();
                    add_val(&mut extra, &val);
                }
            }
        }
        for col in &cols {
            self.refs.extend(col.val.flow.iter().copied());
        }
        if let Some(e) = &extra {
            self.refs.extend(e.flow.iter().copied());
            add_val(&mut targets.unknown, e);
        }
        targets.cols.extend(cols);
    }

    /// A GROUP BY item (grouping sets included).
    fn group_key(&mut self, key: &pb::Node, targets: &Targets) {
        match &key.node {
            Some(N::GroupingSet(set)) => {
                for k in &set.content {
                    self.group_key(k, targets);
                }
            }
            _ => self.sort_key(Clause::GroupBy, key, targets),
        }
    }

    /// An ORDER BY, GROUP BY or DISTINCT ON key. A number names an output column by
    /// position; a bare name may be an output column's alias (PostgreSQL prefers it in
    /// ORDER BY, the input column in GROUP BY: both are counted).
    fn sort_key(&mut self, clause: Clause, key: &pb::Node, targets: &Targets) {
        let expr = match &key.node {
            Some(N::SortBy(sort)) => {
                self.check_operator(&sort.use_op);
                match sort.node.as_deref() {
                    Some(e) => e,
                    None => return,
                }
            }
            _ => key,
        };
        match &expr.node {
            Some(N::AConst(pb::AConst {
                val: Some(pb::a_const::Val::Ival(i)),
                ..
            })) => {
                let position = usize::try_from(i.ival).ok().and_then(|p| p.checked_sub(1));
                match position.and_then(|p| targets.cols.get(p)) {
                    Some(col) => {
                        let flow = col.val.flow.clone();
                        self.note(clause, &flow);
                    }
                    None => {
                        if let Some(unknown) = &targets.unknown {
                            let flow = unknown.flow.clone();
                            self.note(clause, &flow);
                        }
                    }
                }
                return;
            }
            Some(N::ColumnRef(cr)) => {
                if let Some((names, false)) = super::expr::column_ref_parts(cr) {
                    if let [name] = names.as_slice() {
                        let mut flow = super::scope::Flow::new();
                        for col in &targets.cols {
                            if col.name.as_deref().is_none_or(|n| n == *name) {
                                flow.extend(col.val.flow.iter().copied());
                            }
                        }
                        self.note(clause, &flow);
                    }
                }
            }
            _ => {}
        }
        self.clause(clause, expr);
    }

    /// A window definition: partitioning and ordering by a masked value sorts on it, and
    /// the window function's value depends on that order.
    pub(super) fn window(&mut self, def: &pb::WindowDef) -> Val {
        let (mut val, flow) = self.collect(|w| {
            let mut val = Val::derived();
            for node in def.partition_clause.iter().chain(&def.order_clause) {
                val.absorb(&w.expr(node));
            }
            for offset in [&def.start_offset, &def.end_offset].into_iter().flatten() {
                val.absorb(&w.expr(offset));
            }
            val
        });
        self.note(Clause::OrderBy, &flow);
        for name in [&def.refname, &def.name] {
            if let Some(named) = self.scope.find_window(name) {
                val.absorb(&named);
            }
        }
        val
    }

    // ----- WITH --------------------------------------------------------------------------

    /// Binds a WITH clause's CTEs in a new frame (popped by the caller when true).
    pub(super) fn with_clause(&mut self, with: Option<&pb::WithClause>) -> bool {
        let Some(with) = with else { return false };
        self.ctes.push(Vec::new());
        let ctes: Vec<&pb::CommonTableExpr> = with
            .ctes
            .iter()
            .filter_map(|n| match &n.node {
                Some(N::CommonTableExpr(cte)) => Some(cte.as_ref()),
                _ => None,
            })
            .collect();
        if with.recursive {
            self.recursive_ctes(&ctes);
        } else {
            // Each CTE sees the ones before it, not itself.
            for cte in ctes {
                let shape = self.cte_shape(cte, false);
                self.bind_cte(&cte.ctename, shape);
            }
        }
        true
    }

    /// WITH RECURSIVE: any CTE may refer to any other and to itself. Each is first bound to
    /// its non-recursive part, then all are re-analysed until their columns stop changing.
    fn recursive_ctes(&mut self, ctes: &[&pb::CommonTableExpr]) {
        for cte in ctes {
            let shape = self.cte_shape(cte, true);
            self.bind_cte(&cte.ctename, shape);
        }
        for _ in 0..MAX_FIXPOINT_ROUNDS {
            let mut changed = false;
            for cte in ctes {
                let shape = self.cte_shape(cte, false);
                if self.find_cte(&cte.ctename).as_ref() != Some(&shape) {
                    changed = true;
                    self.bind_cte(&cte.ctename, shape);
                }
            }
            if !changed || self.too_complex || self.too_deep {
                return;
            }
        }
        // Not settled: every CTE of the clause may carry anything any of them does.
        let mut all = Val::derived();
        for cte in ctes {
            if let Some(shape) = self.find_cte(&cte.ctename) {
                all.absorb(&shape.union());
            }
        }
        for cte in ctes {
            self.bind_cte(&cte.ctename, Shape::Unknown(all.clone()));
        }
    }

    /// A CTE's columns (with its column aliases, SEARCH and CYCLE columns). `seed`: only the
    /// non-recursive arm of a recursive UNION.
    fn cte_shape(&mut self, cte: &pb::CommonTableExpr, seed: bool) -> Shape {
        let Some(query) = cte.ctequery.as_deref() else {
            return Shape::empty();
        };
        let shape = match (&query.node, seed) {
            (Some(N::SelectStmt(s)), true) if s.larg.is_some() => match s.larg.as_deref() {
                Some(l) => self.select(l),
                None => Shape::empty(),
            },
            _ => self.query(query),
        };
        let Shape::Known(mut cols) = shape else {
            return shape;
        };
        for (col, alias) in cols.iter_mut().zip(strings(&cte.aliascolnames)) {
            col.name = Some(alias);
        }
        // SEARCH and CYCLE add columns computed from the row (the cycle path holds rows).
        let mut added = Vec::new();
        if let Some(search) = &cte.search_clause {
            added.push(search.search_seq_column.clone());
        }
        if let Some(cycle) = &cte.cycle_clause {
            added.push(cycle.cycle_mark_column.clone());
            added.push(cycle.cycle_path_column.clone());
        }
        if !added.is_empty() {
            let all = Shape::Known(cols.clone()).union().into_derived();
            cols.extend(added.into_iter().map(|name| Col::named(name, all.clone())));
        }
        Shape::Known(cols)
    }

    fn bind_cte(&mut self, name: &str, shape: Shape) {
        let Some(frame) = self.ctes.last_mut() else {
            return;
        };
        match frame.iter_mut().find(|c| c.name == name) {
            Some(cte) => cte.shape = shape,
            None => frame.push(Cte {
                name: name.to_owned(),
                shape,
            }),
        }
    }

    // ----- FROM --------------------------------------------------------------------------

    /// One FROM item as a range item.
    pub(super) fn range_item(&mut self, node: &pb::Node) -> Item {
        if !self.enter() {
            return Item {
                extra: Some(self.scope.everything()),
                ..Item::default()
            };
        }
        let item = match node.node.as_ref() {
            Some(N::RangeVar(rv)) => self.relation_item(rv, true),
            Some(N::RangeSubselect(sub)) => self.subselect_item(sub),
            Some(N::JoinExpr(join)) => self.join_item(join),
            Some(N::RangeFunction(f)) => self.function_item(f),
            Some(N::RangeTableFunc(t)) => self.xmltable_item(t),
            Some(N::JsonTable(t)) => self.json_table_item(t),
            Some(N::RangeTableSample(t)) => {
                let item = match t.relation.as_deref() {
                    Some(rel) => self.range_item(rel),
                    None => Item::default(),
                };
                for arg in t.args.iter().chain(t.repeatable.as_deref()) {
                    self.expr(arg);
                }
                item
            }
            Some(other) => Item {
                extra: Some(self.unfollowed("this kind of FROM item".to_owned(), Some(other))),
                ..Item::default()
            },
            None => Item::default(),
        };
        self.leave();
        item
    }

    /// `(SELECT ...) AS s(a, b)`. Without LATERAL it cannot see the other items of its FROM
    /// clause.
    fn subselect_item(&mut self, sub: &pb::RangeSubselect) -> Item {
        let hidden = self.scope.set_innermost_hidden(!sub.lateral);
        let shape = match sub.subquery.as_deref() {
            Some(q) => self.query(q),
            None => Shape::empty(),
        };
        self.scope.set_innermost_hidden(hidden);
        let (name, aliases) = alias_parts(sub.alias.as_ref());
        Item::from_shape(name, shape, &aliases)
    }

    /// A join. Its ON condition and USING columns filter on values; a USING column merges
    /// both sides' columns. Unaliased, its sides stay referable by name.
    fn join_item(&mut self, join: &pb::JoinExpr) -> Item {
        let left = match join.larg.as_deref() {
            Some(l) => self.range_item(l),
            None => Item::default(),
        };
        self.push_item(left);
        let right = match join.rarg.as_deref() {
            Some(r) => self.range_item(r),
            None => Item::default(),
        };
        self.push_item(right);
        if let Some(quals) = join.quals.as_deref() {
            self.clause(Clause::Join, quals);
        }
        let right = self.pop_item();
        let left = self.pop_item();

        let using: Vec<String> = if join.is_natural {
            left.cols
                .iter()
                .filter_map(|c| c.name.clone())
                .filter(|n| right.cols.iter().any(|c| c.name.as_deref() == Some(n)))
                .collect()
        } else {
            strings(&join.using_clause)
        };
        let mut merged = Vec::with_capacity(using.len());
        let mut join_flow = super::scope::Flow::new();
        for name in &using {
            let l = left.column(name).map(|h| h.val).unwrap_or_default();
            let r = right.column(name).map(|h| h.val).unwrap_or_default();
            join_flow.extend(l.flow.iter().chain(&r.flow).copied());
            let mut val = l.clone();
            val.absorb(&r);
            // The merged column is one side's value (COALESCE of both for FULL JOIN): a
            // plain reference only when both sides carry the same rules.
            val.derived |= join.jointype == pb::JoinType::JoinFull as i32
                || self.taint(&l.flow) != self.taint(&r.flow);
            merged.push(Col::named(name.clone(), val));
        }
        if join.is_natural && (left.extra.is_some() || right.extra.is_some()) {
            // The common columns are unknown: any column of either side may be joined on.
            join_flow.extend(left.whole_row().flow);
            join_flow.extend(right.whole_row().flow);
        }
        self.refs.extend(join_flow.iter().copied());
        self.note(Clause::Join, &join_flow);

        let mut cols = merged.clone();
        for side in [&left, &right] {
            cols.extend(
                side.cols
                    .iter()
                    .filter(|c| c.name.as_ref().is_none_or(|n| !using.contains(n)))
                    .cloned(),
            );
        }
        let extra = match (&left.extra, &right.extra) {
            (None, None) => None,
            (l, r) => {
                let mut val = Val::default();
                for e in [l, r].into_iter().flatten() {
                    val.absorb(e);
                }
                Some(val)
            }
        };
        let (name, aliases) = alias_parts(join.alias.as_ref());
        let mut item = Item {
            name: name.clone(),
            cols,
            extra,
            ..Item::default()
        };
        item.rename(&aliases);
        if name.is_none() {
            item.children = vec![left, right];
            if let Some(using_alias) = &join.join_using_alias {
                item.children.push(Item {
                    name: Some(using_alias.aliasname.clone()),
                    cols: merged,
                    ..Item::default()
                });
            }
        }
        item
    }

    pub(super) fn push_item(&mut self, item: Item) {
        match self.scope.innermost() {
            Some(level) => level.items.push(item),
            None => self.scope.push(Level::with(vec![item])),
        }
    }

    pub(super) fn pop_item(&mut self) -> Item {
        self.scope
            .innermost()
            .and_then(|level| level.items.pop())
            .unwrap_or_default()
    }

    /// A function in FROM (`generate_series(...)`, `unnest(...)`, `ROWS FROM (...)`): its
    /// columns carry its arguments. Their number is known only from a column definition
    /// list.
    fn function_item(&mut self, f: &pb::RangeFunction) -> Item {
        let mut val = Val::derived();
        let mut defined: Vec<String> = Vec::new();
        let mut all_defined = !f.functions.is_empty();
        let mut first_name = None;
        for entry in &f.functions {
            let parts = match &entry.node {
                Some(N::List(list)) => list.items.as_slice(),
                _ => std::slice::from_ref(entry),
            };
            if let Some(call) = parts.first() {
                val.absorb(&self.expr(call));
                if first_name.is_none() {
                    first_name = super::expr::output_name(call);
                }
            }
            let defs = match parts.get(1).map(|n| &n.node) {
                Some(Some(N::List(list))) => column_def_names(&list.items),
                _ => Vec::new(),
            };
            if defs.is_empty() {
                all_defined = false;
            }
            defined.extend(defs);
        }
        if defined.is_empty() && f.functions.len() == 1 && !f.coldeflist.is_empty() {
            defined = column_def_names(&f.coldeflist);
            all_defined = true;
        }
        let (alias, aliases) = alias_parts(f.alias.as_ref());
        let name = alias.or(if f.functions.len() == 1 {
            first_name
        } else {
            None
        });
        let mut item = if all_defined {
            let mut cols: Vec<Col> = defined
                .into_iter()
                .map(|n| Col::named(n, val.clone()))
                .collect();
            if f.ordinality {
                cols.push(Col::named("ordinality", Val::derived()));
            }
            Item {
                name,
                cols,
                ..Item::default()
            }
        } else {
            Item {
                name,
                extra: Some(val),
                ..Item::default()
            }
        };
        item.rename(&aliases);
        item
    }

    /// XMLTABLE: its columns carry the document and every expression.
    fn xmltable_item(&mut self, t: &pb::RangeTableFunc) -> Item {
        let mut val = Val::derived();
        for node in [&t.docexpr, &t.rowexpr].into_iter().flatten() {
            val.absorb(&self.expr(node));
        }
        for node in &t.namespaces {
            val.absorb(&self.expr(node));
        }
        let mut names = Vec::new();
        for node in &t.columns {
            if let Some(N::RangeTableFuncCol(col)) = &node.node {
                for e in [&col.colexpr, &col.coldefexpr].into_iter().flatten() {
                    val.absorb(&self.expr(e));
                }
                names.push(col.colname.clone());
            }
        }
        let (name, aliases) = alias_parts(t.alias.as_ref());
        let mut item = Item {
            name,
            cols: names
                .into_iter()
                .map(|n| Col::named(n, val.clone()))
                .collect(),
            ..Item::default()
        };
        item.rename(&aliases);
        item
    }

    /// JSON_TABLE: its columns carry the context item and every expression. Nested paths
    /// make the column list hard to mirror exactly, so its width is left unknown.
    fn json_table_item(&mut self, t: &pb::JsonTable) -> Item {
        let mut val = Val::derived();
        if let Some(ctx) = &t.context_item {
            val.absorb(&self.json_value(ctx));
        }
        if let Some(path) = t.pathspec.as_deref().and_then(|p| p.string.as_deref()) {
            val.absorb(&self.expr(path));
        }
        for node in &t.passing {
            val.absorb(&self.expr(node));
        }
        if let Some(b) = t.on_error.as_deref().and_then(|b| b.expr.as_deref()) {
            val.absorb(&self.expr(b));
        }
        let mut names = Vec::new();
        self.json_table_columns(&t.columns, &mut val, &mut names);
        let (name, aliases) = alias_parts(t.alias.as_ref());
        let mut item = Item {
            name,
            cols: names
                .into_iter()
                .map(|n| Col::named(n, val.clone()))
                .collect(),
            extra: Some(val),
            ..Item::default()
        };
        item.rename(&aliases);
        item
    }

    fn json_table_columns(&mut self, columns: &[pb::Node], val: &mut Val, names: &mut Vec<String>) {
        for node in columns {
            let Some(N::JsonTableColumn(col)) = &node.node else {
                continue;
            };
            if !col.name.is_empty() {
                names.push(col.name.clone());
            }
            for b in [&col.on_empty, &col.on_error].into_iter().flatten() {
                if let Some(e) = b.expr.as_deref() {
                    val.absorb(&self.expr(e));
                }
            }
            self.json_table_columns(&col.columns, val, names);
        }
    }
}

/// Adds `val` to an optional accumulator.
fn add_val(acc: &mut Option<Val>, val: &Val) {
    match acc {
        Some(a) => a.absorb(val),
        None => *acc = Some(val.clone()),
    }
}

/// An alias's name and column names.
fn alias_parts(alias: Option<&pb::Alias>) -> (Option<String>, Vec<String>) {
    match alias {
        Some(a) => (Some(a.aliasname.clone()), strings(&a.colnames)),
        None => (None, Vec::new()),
    }
}

/// The column names of a column definition list.
fn column_def_names(nodes: &[pb::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::ColumnDef(def)) => Some(def.colname.clone()),
            _ => None,
        })
        .collect()
}
