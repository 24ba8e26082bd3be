//! INSERT, UPDATE, DELETE and MERGE.
//!
//! A value written into a table leaves the result set, where the proxy masks, for good:
//! whatever is written can later be read back unmasked from an unmasked column (or, for a
//! masked column under a partial strategy, shifted into the part left visible). So any
//! written value computed from a masked column refuses the statement. Filters stay
//! predicates. The target's masked columns count as touched: constraint errors can show the
//! whole row.

use pg_query::protobuf as pb;
use pg_query::NodeEnum as N;

use super::scope::{Col, Item, Level, Shape, Val};
use super::{Clause, Walker};

impl Walker<'_> {
    /// A data-modifying statement; `Some` with the RETURNING list's columns, if it has one.
    pub(super) fn dml(&mut self, node: &N) -> Option<Shape> {
        if !self.enter() {
            return Some(Shape::Unknown(self.scope.everything()));
        }
        let (with, relation) = match node {
            N::InsertStmt(s) => (s.with_clause.as_ref(), s.relation.as_ref()),
            N::UpdateStmt(s) => (s.with_clause.as_ref(), s.relation.as_ref()),
            N::DeleteStmt(s) => (s.with_clause.as_ref(), s.relation.as_ref()),
            N::MergeStmt(s) => (s.with_clause.as_ref(), s.relation.as_ref()),
            _ => (None, None),
        };
        let framed = self.with_clause(with);
        let target = match relation {
            Some(rv) => Target {
                item: self.relation_item(rv, false),
                label: self.relation_label(rv),
            },
            None => Target {
                item: Item::default(),
                label: "the target table".to_owned(),
            },
        };
        self.touch(&target.item);
        let returning = match node {
            N::InsertStmt(s) => self.insert(s, &target),
            N::UpdateStmt(s) => self.update(s, &target),
            N::DeleteStmt(s) => self.delete(s, &target),
            N::MergeStmt(s) => self.merge(s, &target),
            _ => None,
        };
        if framed {
            self.ctes.pop();
        }
        self.leave();
        returning
    }

    fn insert(&mut self, s: &pb::InsertStmt, target: &Target) -> Option<Shape> {
        if let Some(source) = s.select_stmt.as_deref() {
            let shape = self.query(source);
            self.refuse_written(&shape.union(), "INSERT", &target.label);
        }
        self.scope.push(Level::with(vec![target.item.clone()]));
        if let Some(conflict) = s.on_conflict_clause.as_deref() {
            self.on_conflict(conflict, target);
        }
        let returning = self.returning(s.returning_clause.as_ref(), &target.item);
        self.scope.pop();
        returning
    }

    /// ON CONFLICT: the conflict target filters on the existing rows; DO UPDATE writes.
    fn on_conflict(&mut self, conflict: &pb::OnConflictClause, target: &Target) {
        // `excluded` holds the proposed row: the INSERT's values, refused above if masked.
        let excluded = Item {
            name: Some("excluded".to_owned()),
            cols: target
                .item
                .cols
                .iter()
                .map(|c| Col {
                    name: c.name.clone(),
                    val: Val::default(),
                })
                .collect(),
            extra: target.item.extra.as_ref().map(|_| Val::default()),
            ..Item::default()
        };
        self.push_item(excluded);
        if let Some(infer) = conflict.infer.as_deref() {
            for elem in &infer.index_elems {
                let Some(N::IndexElem(elem)) = &elem.node else {
                    continue;
                };
                if let Some(e) = elem.expr.as_deref() {
                    self.clause(Clause::Where, e);
                } else if let Some(hit) = self.scope.find_column(&elem.name) {
                    self.refs.extend(hit.val.flow.iter().copied());
                    self.note(Clause::Where, &hit.val.flow);
                }
            }
            if let Some(w) = infer.where_clause.as_deref() {
                self.clause(Clause::Where, w);
            }
        }
        self.assignments(
            &conflict.target_list,
            "INSERT ... ON CONFLICT DO UPDATE",
            target,
        );
        if let Some(w) = conflict.where_clause.as_deref() {
            self.clause(Clause::Where, w);
        }
        self.pop_item();
    }

    fn update(&mut self, s: &pb::UpdateStmt, target: &Target) -> Option<Shape> {
        self.scope.push(Level::with(vec![target.item.clone()]));
        self.add_range_items(&s.from_clause);
        self.assignments(&s.target_list, "UPDATE", target);
        if let Some(w) = s.where_clause.as_deref() {
            self.clause(Clause::Where, w);
        }
        let returning = self.returning(s.returning_clause.as_ref(), &target.item);
        self.scope.pop();
        returning
    }

    fn delete(&mut self, s: &pb::DeleteStmt, target: &Target) -> Option<Shape> {
        self.scope.push(Level::with(vec![target.item.clone()]));
        self.add_range_items(&s.using_clause);
        if let Some(w) = s.where_clause.as_deref() {
            self.clause(Clause::Where, w);
        }
        let returning = self.returning(s.returning_clause.as_ref(), &target.item);
        self.scope.pop();
        returning
    }

    fn merge(&mut self, s: &pb::MergeStmt, target: &Target) -> Option<Shape> {
        self.scope.push(Level::with(vec![target.item.clone()]));
        if let Some(source) = s.source_relation.as_deref() {
            let item = self.range_item(source);
            if let Some(level) = self.scope.innermost() {
                level.items.push(item);
            }
        }
        if let Some(on) = s.join_condition.as_deref() {
            self.clause(Clause::Join, on);
        }
        for when in &s.merge_when_clauses {
            let Some(N::MergeWhenClause(when)) = &when.node else {
                continue;
            };
            if let Some(c) = when.condition.as_deref() {
                self.clause(Clause::Where, c);
            }
            // UPDATE SET col = value; INSERT (cols) VALUES (values).
            self.assignments(&when.target_list, "MERGE", target);
            let mut written = Val::default();
            for value in &when.values {
                written.absorb(&self.expr(value));
            }
            self.refuse_written(&written, "MERGE", &target.label);
        }
        let returning = self.returning(s.returning_clause.as_ref(), &target.item);
        self.scope.pop();
        returning
    }

    /// FROM / USING items added to the statement's level.
    fn add_range_items(&mut self, items: &[pb::Node]) {
        for node in items {
            let item = self.range_item(node);
            if let Some(level) = self.scope.innermost() {
                level.items.push(item);
            }
        }
    }

    /// `SET col = value` lists: a value (or subscript) computed from a masked column is
    /// refused.
    fn assignments(&mut self, list: &[pb::Node], what: &str, target: &Target) {
        for node in list {
            let Some(N::ResTarget(set)) = &node.node else {
                continue;
            };
            let mut written = Val::default();
            for e in set.val.as_deref().into_iter().chain(&set.indirection) {
                written.absorb(&self.expr(e));
            }
            let column = if set.name.is_empty() {
                target.label.clone()
            } else {
                format!("{}.{}", target.label, set.name)
            };
            self.refuse_written(&written, what, &column);
        }
    }

    fn refuse_written(&mut self, written: &Val, what: &str, into: &str) {
        if !written.flow.is_empty() {
            let columns = self.describe(&written.flow);
            self.refuse(format!(
                "{what} copies {columns} into {into}, where Warden cannot mask it"
            ));
        }
    }

    /// RETURNING: like a target list over the statement's level, where `old` and `new`
    /// (or their RETURNING WITH aliases) name the target's row before and after.
    fn returning(&mut self, clause: Option<&pb::ReturningClause>, target: &Item) -> Option<Shape> {
        let clause = clause.filter(|c| !c.exprs.is_empty())?;
        let mut old = "old".to_owned();
        let mut new = "new".to_owned();
        for option in &clause.options {
            if let Some(N::ReturningOption(o)) = &option.node {
                if o.option == pb::ReturningOptionKind::ReturningOptionOld as i32 {
                    old = o.value.clone();
                } else if o.option == pb::ReturningOptionKind::ReturningOptionNew as i32 {
                    new = o.value.clone();
                }
            }
        }
        let row = |name: String| Item {
            name: Some(name),
            schemas: None,
            cols: target.cols.clone(),
            extra: target.extra.clone(),
            children: Vec::new(),
        };
        self.scope
            .insert_outside_innermost(Level::with(vec![row(old), row(new)]));
        let targets = self.targets(&clause.exprs);
        self.scope.remove_outside_innermost();
        Some(targets.into_shape())
    }
}

/// The table a data-modifying statement writes.
struct Target {
    item: Item,
    /// `schema.table` for messages.
    label: String,
}
