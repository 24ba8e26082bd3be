//! The parse-tree walk behind [`super::analyze`].
//!
//! One [`Walker`] analyses one top-level statement. It keeps a stack of query levels
//! ([`scope::Scope`]) to resolve column names the way PostgreSQL does, a stack of CTE frames,
//! and three accumulators: every masked column read (`refs`, which becomes `touches`), the
//! masked columns used per inference-prone clause, and the first refusal. Queries are
//! analysed into [`Shape`]s (their output columns), expressions into [`Val`]s.
//!
//! - `select`: SELECT, VALUES, set operations, CTEs and FROM items.
//! - `expr`: expressions, column references and function calls.
//! - `dml`: INSERT, UPDATE, DELETE and MERGE.
//! - `statement`: the dispatch over statement kinds and every other kind.
//! - this file: parsing, and the walker's state and bookkeeping.
//!
//! Failing closed: a construct the walker does not know taints its value with everything in
//! scope and, if the statement touches masked columns at all, refuses it.

mod dml;
mod expr;
mod scope;
mod select;
mod statement;

use std::collections::{BTreeMap, HashMap};
use std::panic::{catch_unwind, AssertUnwindSafe};

use pg_query::protobuf as pb;
use pg_query::{NodeEnum as N, ParserOptions};

use super::{Clause, ColumnInfo, Lineage, OutputTaint, Outputs, RelationInfo, Schema, Taint};
use scope::{Col, ColId, Flow, Item, Scope, Shape, Val};

/// Our own recursion bound (statements, queries, FROM items, expressions). `pg_query`'s
/// decoder already stops at about 100 nested messages; this keeps the walk bounded whatever
/// the decoder allows.
const MAX_DEPTH: usize = 200;

/// Bound on the nodes visited for one statement. Recursive CTEs are analysed a few times
/// each until their columns stop changing, so nested ones could otherwise multiply the work.
const MAX_STEPS: usize = 200_000;

const TOO_DEEP: &str =
    "the statement is nested too deeply for Warden to analyse on a masked connection";
const TOO_COMPLEX: &str =
    "the statement is too complex for Warden to analyse on a masked connection";
const PARSER_FAILED: &str =
    "Warden could not analyse this statement, so it is refused on a masked connection";

/// Parses `sql` and analyses each statement. Never panics: a panic inside `pg_query` or the
/// walk refuses the text.
pub(super) fn analyze_impl(sql: &str, schema: &dyn Schema) -> Vec<Lineage> {
    catch_unwind(AssertUnwindSafe(|| analyze_text(sql, schema)))
        .unwrap_or_else(|_| vec![refused(PARSER_FAILED)])
}

fn analyze_text(sql: &str, schema: &dyn Schema) -> Vec<Lineage> {
    let parsed = match pg_query::parse(sql, ParserOptions::DEFAULT) {
        Ok(parsed) => parsed,
        // The parser's own stack and nesting limits: the server may well run it.
        Err(pg_query::Error::Parse(message))
            if message.contains("stack depth") || message.contains("too deeply") =>
        {
            return vec![refused(TOO_DEEP)]
        }
        Err(pg_query::Error::Parse(message)) if message.contains("memory") => {
            return vec![refused(PARSER_FAILED)]
        }
        // The server rejects it too; its error is the caller's to scrub.
        Err(pg_query::Error::Parse(_)) => return vec![unparsed()],
        // The decoder gives up on deeply nested trees the server would run: refuse.
        Err(pg_query::Error::Decode(_)) => return vec![refused(TOO_DEEP)],
        Err(_) => return vec![refused(PARSER_FAILED)],
    };
    parsed
        .protobuf
        .stmts
        .iter()
        .map(
            |raw| match raw.stmt.as_deref().and_then(|n| n.node.as_ref()) {
                Some(stmt) => {
                    let mut walker = Walker::new(schema);
                    let outputs = walker.statement(stmt);
                    walker.finish(outputs)
                }
                None => unparsed(),
            },
        )
        .collect()
}

fn unparsed() -> Lineage {
    Lineage {
        outputs: Outputs::Unknown(OutputTaint::default()),
        predicates: Vec::new(),
        touches: Taint::none(),
        refusal: None,
    }
}

fn refused(reason: &str) -> Lineage {
    Lineage {
        refusal: Some(reason.to_owned()),
        ..unparsed()
    }
}

/// A masked column met during the walk.
struct Masked {
    /// `schema.table.column`, for refusal messages.
    name: String,
    taint: Taint,
}

/// A CTE name bound in a WITH clause.
struct Cte {
    name: String,
    shape: Shape,
}

/// The state of the analysis of one top-level statement.
struct Walker<'s> {
    schema: &'s dyn Schema,
    scope: Scope,
    /// CTE frames, innermost last; each holds the CTEs of one WITH clause bound so far.
    ctes: Vec<Vec<Cte>>,
    masked: Vec<Masked>,
    masked_ids: HashMap<String, ColId>,
    /// Every masked column read so far (see [`Walker::collect`]).
    refs: Flow,
    predicates: BTreeMap<Clause, Flow>,
    refusal: Option<String>,
    /// The first construct the walker could not follow.
    unfollowed: Option<String>,
    depth: usize,
    steps: usize,
    too_deep: bool,
    too_complex: bool,
}

impl<'s> Walker<'s> {
    fn new(schema: &'s dyn Schema) -> Self {
        Walker {
            schema,
            scope: Scope::default(),
            ctes: Vec::new(),
            masked: Vec::new(),
            masked_ids: HashMap::new(),
            refs: Flow::new(),
            predicates: BTreeMap::new(),
            refusal: None,
            unfollowed: None,
            depth: 0,
            steps: 0,
            too_deep: false,
            too_complex: false,
        }
    }

    fn finish(self, outputs: Outputs) -> Lineage {
        let touches = self.taint(&self.refs);
        let refusal = if self.too_deep {
            Some(TOO_DEEP.to_owned())
        } else if self.too_complex {
            Some(TOO_COMPLEX.to_owned())
        } else if self.refusal.is_some() {
            self.refusal.clone()
        } else {
            match &self.unfollowed {
                Some(what) if touches.is_tainted() => Some(format!(
                    "Warden cannot follow {what} on a masked connection"
                )),
                _ => None,
            }
        };
        let predicates = self
            .predicates
            .iter()
            .map(|(clause, flow)| (*clause, self.taint(flow)))
            .filter(|(_, taint)| taint.is_tainted())
            .collect();
        Lineage {
            outputs,
            predicates,
            touches,
            refusal,
        }
    }

    // ----- bookkeeping -------------------------------------------------------------------

    /// Enters one level of recursion; false (and the statement is refused) past the bounds.
    fn enter(&mut self) -> bool {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            self.too_complex = true;
            return false;
        }
        if self.depth >= MAX_DEPTH {
            self.too_deep = true;
            return false;
        }
        self.depth += 1;
        true
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    /// Records the first refusal reason; later ones add nothing the client needs.
    fn refuse(&mut self, reason: String) {
        if self.refusal.is_none() {
            self.refusal = Some(reason);
        }
    }

    /// A construct the walker does not know: its value may carry anything in scope or in
    /// the relations it names, and the statement is refused if it touches masked columns.
    fn unfollowed(&mut self, what: String, node: Option<&N>) -> Val {
        if self.unfollowed.is_none() {
            self.unfollowed = Some(what);
        }
        let mut val = self.scope.everything();
        if let Some(node) = node {
            let flow = self.scan(node);
            val.absorb_flow(&flow);
        }
        self.refs.extend(val.flow.iter().copied());
        val
    }

    /// Runs `f` and also returns the masked columns it read (they stay in `refs` too).
    fn collect<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> (R, Flow) {
        let outer = std::mem::take(&mut self.refs);
        let result = f(self);
        let inner = std::mem::replace(&mut self.refs, outer);
        self.refs.extend(inner.iter().copied());
        (result, inner)
    }

    /// Walks an expression of an inference-prone clause: every masked column it reads
    /// (subqueries included) is recorded for that clause.
    fn clause(&mut self, clause: Clause, node: &pb::Node) -> Val {
        let (val, flow) = self.collect(|w| w.expr(node));
        self.note(clause, &flow);
        val
    }

    fn note(&mut self, clause: Clause, flow: &Flow) {
        if !flow.is_empty() {
            self.predicates
                .entry(clause)
                .or_default()
                .extend(flow.iter().copied());
        }
    }

    /// Marks every masked column of a row source as read.
    fn touch(&mut self, item: &Item) {
        self.refs.extend(item.whole_row().flow);
    }

    // ----- catalog -----------------------------------------------------------------------

    fn intern(&mut self, rel: &RelationInfo, col: &ColumnInfo) -> Flow {
        if !col.taint.is_tainted() {
            return Flow::new();
        }
        let name = format!("{}.{}.{}", rel.schema, rel.name, col.name);
        let id = match self.masked_ids.get(&name) {
            Some(id) => *id,
            None => {
                let id = ColId::try_from(self.masked.len()).unwrap_or(ColId::MAX);
                self.masked.push(Masked {
                    name: name.clone(),
                    taint: col.taint.clone(),
                });
                self.masked_ids.insert(name, id);
                id
            }
        };
        Flow::from([id])
    }

    /// The catalog's relation(s) `[schema.]name` as a range item named `name`. Several
    /// candidates (the search path is unknown) are merged: per column when their columns
    /// agree, else by name with an unknown width. None: the catalog omitted it (no masked
    /// column) or it does not exist, so its columns are unknown and carry nothing.
    fn relation(&mut self, schema: Option<&str>, name: &str) -> Item {
        let catalog: &'s dyn Schema = self.schema;
        let candidates = catalog.relations(schema, name);
        let mut lists: Vec<Vec<Col>> = Vec::with_capacity(candidates.len());
        for rel in &candidates {
            let cols = rel
                .columns
                .iter()
                .map(|c| {
                    let flow = self.intern(rel, c);
                    Col::named(
                        c.name.clone(),
                        Val {
                            flow,
                            derived: false,
                        },
                    )
                })
                .collect();
            lists.push(cols);
        }
        let mut item = Item {
            name: Some(name.to_owned()),
            // Unqualified: the search path decides the schema, so any qualification matches.
            schemas: Some(schema.map(str::to_owned).into_iter().collect()),
            ..Item::default()
        };
        let mut lists = lists.into_iter();
        match lists.next() {
            None => item.extra = Some(Val::default()),
            Some(first) => {
                item.cols = first;
                for other in lists {
                    let same = other.len() == item.cols.len()
                        && other.iter().zip(&item.cols).all(|(a, b)| a.name == b.name);
                    if same {
                        for (mine, theirs) in item.cols.iter_mut().zip(&other) {
                            mine.val.absorb(&theirs.val);
                        }
                    } else {
                        for col in other {
                            match item.cols.iter_mut().find(|c| c.name == col.name) {
                                Some(mine) => mine.val.absorb(&col.val),
                                None => item.cols.push(col),
                            }
                        }
                        item.extra = Some(Val::default());
                    }
                }
            }
        }
        item
    }

    /// A relation named in FROM (or as a statement's target): a CTE when `allow_cte` and
    /// one of that name is visible, else the catalog's relation; aliases applied.
    fn relation_item(&mut self, rv: &pb::RangeVar, allow_cte: bool) -> Item {
        let aliases = rv
            .alias
            .as_ref()
            .map(|a| strings(&a.colnames))
            .unwrap_or_default();
        let alias = rv.alias.as_ref().map(|a| a.aliasname.clone());
        let schema = non_empty(&rv.schemaname);
        if allow_cte && schema.is_none() {
            if let Some(shape) = self.find_cte(&rv.relname) {
                let name = alias.unwrap_or_else(|| rv.relname.clone());
                return Item::from_shape(Some(name), shape, &aliases);
            }
        }
        let mut item = self.relation(schema, &rv.relname);
        if let Some(alias) = alias {
            item.name = Some(alias);
            item.schemas = None;
        }
        item.rename(&aliases);
        item
    }

    /// How a relation is named in messages: `schema.name` when the catalog knows exactly
    /// one, else as written.
    fn relation_label(&self, rv: &pb::RangeVar) -> String {
        let schema = non_empty(&rv.schemaname);
        let candidates = self.schema.relations(schema, &rv.relname);
        match candidates.as_slice() {
            [one] => format!("{}.{}", one.schema, one.name),
            _ => match schema {
                Some(s) => format!("{s}.{}", rv.relname),
                None => rv.relname.clone(),
            },
        }
    }

    fn find_cte(&self, name: &str) -> Option<Shape> {
        self.ctes
            .iter()
            .rev()
            .find_map(|frame| frame.iter().find(|c| c.name == name))
            .map(|c| c.shape.clone())
    }

    /// The masking rules of a flow.
    fn taint(&self, flow: &Flow) -> Taint {
        let mut taint = Taint::none();
        for id in flow {
            if let Some(m) = self.masked.get(*id as usize) {
                taint.extend(&m.taint);
            }
        }
        taint
    }

    /// "masked column public.customers.email" (or a short list) for refusal messages.
    fn describe(&self, flow: &Flow) -> String {
        let mut names: Vec<&str> = flow
            .iter()
            .filter_map(|id| self.masked.get(*id as usize))
            .map(|m| m.name.as_str())
            .collect();
        names.sort_unstable();
        names.dedup();
        match names.len() {
            0 => "masked data".to_owned(),
            1 => format!("masked column {}", names[0]),
            2 | 3 => format!("masked columns {}", names.join(", ")),
            n => format!(
                "masked columns {} and {} more",
                names[..3].join(", "),
                n - 3
            ),
        }
    }

    fn outputs(&self, shape: &Shape) -> Outputs {
        let out = |val: &Val| OutputTaint {
            taint: self.taint(&val.flow),
            derived: val.derived,
        };
        match shape {
            Shape::Known(cols) => Outputs::Known(cols.iter().map(|c| out(&c.val)).collect()),
            Shape::Unknown(val) => Outputs::Unknown(out(val)),
        }
    }
}
/// The node inside an optional boxed node.
fn inner(node: &Option<Box<pb::Node>>) -> Option<&N> {
    node.as_deref().and_then(|n| n.node.as_ref())
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The strings of a list of `String` nodes (column aliases, USING lists, names).
fn strings(nodes: &[pb::Node]) -> Vec<String> {
    nodes
        .iter()
        .filter_map(|n| match &n.node {
            Some(N::String(s)) => Some(s.sval.clone()),
            _ => None,
        })
        .collect()
}
