//! The values the walker passes around and the FROM-clause scopes it resolves names in.
//!
//! A value's lineage is a [`Flow`]: the set of masked columns (interned by the walker) whose
//! data reaches it. Keeping columns rather than rule ids lets a refusal name the column it is
//! about; the rules are looked up once, when the lineage is reported.

use std::collections::BTreeSet;

/// A masked column interned by the walker (index into its table of masked columns).
pub(super) type ColId = u32;

/// The masked columns whose data reaches a value.
pub(super) type Flow = BTreeSet<ColId>;

/// What one expression, output column or range column carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Val {
    /// Masked columns feeding the value.
    pub flow: Flow,
    /// Anything but a plain column passed through unchanged (see `OutputTaint::derived`).
    pub derived: bool,
}

impl Val {
    /// An expression's value before its inputs are added: derived, carrying nothing yet.
    pub fn derived() -> Self {
        Val {
            flow: Flow::new(),
            derived: true,
        }
    }

    /// Adds what `other` carries; derived if either is.
    pub fn absorb(&mut self, other: &Val) {
        self.flow.extend(other.flow.iter().copied());
        self.derived |= other.derived;
    }

    /// Adds `other`'s columns only (an input of an expression that is derived anyway).
    pub fn absorb_flow(&mut self, other: &Flow) {
        self.flow.extend(other.iter().copied());
    }

    /// The same columns, as part of an expression.
    pub fn into_derived(mut self) -> Self {
        self.derived = true;
        self
    }
}

/// One column of a row source (a relation, subquery, CTE, function or join).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Col {
    /// Its name. `None` when the walker cannot tell the name PostgreSQL would give it; such a
    /// column matches every name looked up (failing closed).
    pub name: Option<String>,
    /// What it carries.
    pub val: Val,
}

impl Col {
    pub fn named(name: impl Into<String>, val: Val) -> Self {
        Col {
            name: Some(name.into()),
            val,
        }
    }
}

/// The columns a query produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Shape {
    /// Exactly these columns, in order.
    Known(Vec<Col>),
    /// An unknown number of columns, each of which may carry this.
    Unknown(Val),
}

impl Shape {
    /// No columns (a data-modifying statement without RETURNING used as a row source).
    pub fn empty() -> Self {
        Shape::Known(Vec::new())
    }

    /// Everything any column carries; derived if any column is.
    pub fn union(&self) -> Val {
        match self {
            Shape::Known(cols) => {
                let mut val = Val::default();
                for col in cols {
                    val.absorb(&col.val);
                }
                val
            }
            Shape::Unknown(val) => val.clone(),
        }
    }
}

/// A column name looked up in a range item.
pub(super) struct Hit {
    /// What the matching columns carry.
    pub val: Val,
    /// False when the item's columns are not all known and the name may or may not be one of
    /// them (PostgreSQL could then resolve the name elsewhere too).
    pub known: bool,
}

/// A FROM-clause entry as name resolution sees it.
#[derive(Debug, Clone, Default)]
pub(super) struct Item {
    /// The name that qualifies its columns (alias, relation, CTE or function name). `None`
    /// for an unaliased join or subquery, which cannot be named.
    pub name: Option<String>,
    /// For a relation referenced without alias: the schemas `schema.rel.col` may name (empty:
    /// any schema, as the catalog did not say). `None`: schema qualification does not apply.
    pub schemas: Option<Vec<String>>,
    /// Its known columns, in `SELECT *` order.
    pub cols: Vec<Col>,
    /// Set when it may have columns beyond `cols` (a relation the catalog omitted, a function
    /// without a column definition list, a subquery of unknown width): what they may carry.
    pub extra: Option<Val>,
    /// The sides of an unaliased join, still referable by their own names.
    pub children: Vec<Item>,
}

impl Item {
    /// An item built from a query's shape, with optional column aliases.
    pub fn from_shape(name: Option<String>, shape: Shape, aliases: &[String]) -> Item {
        let mut item = match shape {
            Shape::Known(cols) => Item {
                name,
                cols,
                ..Item::default()
            },
            Shape::Unknown(val) => Item {
                name,
                cols: Vec::new(),
                extra: Some(val),
                ..Item::default()
            },
        };
        item.rename(aliases);
        item
    }

    /// Applies column aliases (`AS x(a, b)`) to the leading columns. Aliases beyond the
    /// known columns name columns of unknown content, which carry `extra`.
    pub fn rename(&mut self, aliases: &[String]) {
        for (i, alias) in aliases.iter().enumerate() {
            if let Some(col) = self.cols.get_mut(i) {
                col.name = Some(alias.clone());
            } else {
                let val = self.extra.clone().unwrap_or_default();
                self.cols.push(Col::named(alias.clone(), val));
            }
        }
    }

    /// Whether `[schema.]name` designates this item.
    pub fn matches(&self, schema: Option<&str>, name: &str) -> bool {
        if self.name.as_deref() != Some(name) {
            return false;
        }
        match (schema, &self.schemas) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(schema), Some(list)) => list.is_empty() || list.iter().any(|s| s == schema),
        }
    }

    /// The whole row as one value (`row_to_json(c)`, `SELECT c`, `c.*` in an expression).
    pub fn whole_row(&self) -> Val {
        let mut val = Val::derived();
        for col in &self.cols {
            val.absorb_flow(&col.val.flow);
        }
        if let Some(extra) = &self.extra {
            val.absorb_flow(&extra.flow);
        }
        val
    }

    /// The column(s) called `name`. Columns of unknown name and unknown extra columns may be
    /// it too: they are added, and make the hit uncertain unless a named column matched.
    pub fn column(&self, name: &str) -> Option<Hit> {
        let mut val: Option<Val> = None;
        let mut known = false;
        let mut add = |v: &Val| match &mut val {
            Some(acc) => acc.absorb(v),
            None => val = Some(v.clone()),
        };
        for col in &self.cols {
            match col.name.as_deref() {
                Some(n) if n == name => {
                    known = true;
                    add(&col.val);
                }
                Some(_) => {}
                None => add(&col.val),
            }
        }
        if let Some(extra) = &self.extra {
            if !known {
                add(extra);
            }
        }
        val.map(|val| Hit { val, known })
    }

    /// This item or one of its unaliased-join descendants designated by `[schema.]name`.
    pub fn find(&self, schema: Option<&str>, name: &str) -> Option<&Item> {
        if self.matches(schema, name) {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(schema, name))
    }
}

/// The FROM items of one query level.
#[derive(Debug, Default)]
pub(super) struct Level {
    pub items: Vec<Item>,
    /// Named windows of its WINDOW clause and what their ordering carries.
    pub windows: Vec<(String, Val)>,
    /// Set while a non-LATERAL subquery of this level's FROM clause is analysed: it cannot
    /// see its siblings.
    pub hidden: bool,
}

impl Level {
    pub fn with(items: Vec<Item>) -> Self {
        Level {
            items,
            windows: Vec::new(),
            hidden: false,
        }
    }
}

/// The nested query levels visible at a point of the walk, innermost last.
#[derive(Debug, Default)]
pub(super) struct Scope {
    levels: Vec<Level>,
}

impl Scope {
    pub fn push(&mut self, level: Level) {
        self.levels.push(level);
    }

    pub fn pop(&mut self) -> Option<Level> {
        self.levels.pop()
    }

    /// Inserts a level just outside the innermost one (RETURNING's `old`/`new` names, which
    /// the statement's own items shadow).
    pub fn insert_outside_innermost(&mut self, level: Level) {
        let at = self.levels.len().saturating_sub(1);
        self.levels.insert(at, level);
    }

    /// Removes the level inserted by [`Scope::insert_outside_innermost`].
    pub fn remove_outside_innermost(&mut self) {
        if self.levels.len() >= 2 {
            let at = self.levels.len() - 2;
            self.levels.remove(at);
        }
    }

    /// The innermost level (the query being analysed).
    pub fn innermost(&mut self) -> Option<&mut Level> {
        self.levels.last_mut()
    }

    /// Hides or shows the innermost level; returns its previous state.
    pub fn set_innermost_hidden(&mut self, hidden: bool) -> bool {
        match self.levels.last_mut() {
            Some(level) => std::mem::replace(&mut level.hidden, hidden),
            None => false,
        }
    }

    fn visible(&self) -> impl Iterator<Item = &Level> {
        self.levels.iter().rev().filter(|l| !l.hidden)
    }

    /// The items of the innermost visible level (what a bare `*` expands).
    pub fn innermost_items(&self) -> &[Item] {
        self.visible().next().map_or(&[], |l| l.items.as_slice())
    }

    /// The nearest item designated by `[schema.]name`, innermost level first.
    pub fn find_item(&self, schema: Option<&str>, name: &str) -> Option<&Item> {
        self.visible()
            .find_map(|level| level.items.iter().find_map(|i| i.find(schema, name)))
    }

    /// A named window of the innermost visible level.
    pub fn find_window(&self, name: &str) -> Option<Val> {
        if name.is_empty() {
            return None;
        }
        let level = self.visible().next()?;
        level
            .windows
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }

    /// An unqualified column name. PostgreSQL takes the innermost level where the name is a
    /// column; a level whose items' columns are not all known may or may not be that level,
    /// so its possible match is added and the search goes on outward.
    pub fn find_column(&self, name: &str) -> Option<Hit> {
        let mut found: Option<Hit> = None;
        for level in self.visible() {
            let mut known_here = false;
            for hit in level.items.iter().filter_map(|i| i.column(name)) {
                known_here |= hit.known;
                match &mut found {
                    Some(f) => {
                        f.val.absorb(&hit.val);
                        f.known |= hit.known;
                    }
                    None => found = Some(hit),
                }
            }
            if known_here {
                break;
            }
        }
        found
    }

    /// Everything every visible item carries (for constructs the walker cannot follow).
    pub fn everything(&self) -> Val {
        let mut val = Val::derived();
        for level in self.visible() {
            for item in &level.items {
                val.absorb_flow(&item.whole_row().flow);
            }
        }
        val
    }
}
