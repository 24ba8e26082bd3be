//! What the target's catalog says about masked columns: every user relation with its
//! columns, which (OID, attnum) pairs carry which rules (views included, through their
//! definitions), and how function names resolve. Loaded over a connection of its own,
//! shared by all sessions of a connection, and reloaded when it is older than its TTL or
//! a result names a relation it does not know.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgSslMode};
use sqlx::PgPool;
use warden_masking::lineage::{
    self, ColumnInfo, FunctionKind, Lineage, Outputs, RelationInfo, RuleId, Schema, Taint,
};
use warden_masking::JsonPath;

use super::rules::MaskRules;

/// Relation OIDs below this are built into PostgreSQL (`FirstNormalObjectId`): never
/// masked, never a reason to reload.
pub const FIRST_USER_OID: u32 = 16384;
/// Passes over views so that views over views pick up their sources' taint.
const VIEW_PASSES: usize = 8;

/// Built-ins that store, send or emit a value: refused with a masked argument.
const SINKS: &[&str] = &[
    "set_config",
    "pg_notify",
    "setval",
    "lo_from_bytea",
    "lo_put",
    "pg_logical_emit_message",
    "pg_advisory_lock",
    "pg_advisory_xact_lock",
    "pg_try_advisory_lock",
    "pg_try_advisory_xact_lock",
];
/// Built-ins that run SQL text or read whole tables by name: always refused.
const OPAQUE_BUILTINS: &[&str] = &[
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "table_to_xml",
    "table_to_xmlschema",
    "table_to_xml_and_xmlschema",
    "cursor_to_xml",
    "cursor_to_xmlschema",
    "schema_to_xml",
    "schema_to_xmlschema",
    "schema_to_xml_and_xmlschema",
    "database_to_xml",
    "database_to_xmlschema",
    "database_to_xml_and_xmlschema",
];

/// System views and tables that hold column values or other sessions' statement texts
/// (statistics keep a column's most common values). On a masked connection every column
/// of theirs is masked by every column rule.
const VALUE_HOLDING_CATALOGS: &[&str] = &[
    "pg_stats",
    "pg_stats_ext",
    "pg_stats_ext_exprs",
    "pg_statistic",
    "pg_statistic_ext_data",
    "pg_stat_activity",
    "pg_stat_statements",
    "pg_stat_statements_info",
    "pg_prepared_statements",
    "pg_cursors",
];

/// One loaded snapshot.
pub struct Catalog {
    rels: HashMap<u32, RelationInfo>,
    attnums: HashMap<u32, Vec<i16>>,
    by_name: HashMap<String, Vec<u32>>,
    by_qualified: HashMap<(String, String), u32>,
    /// Column and JSON-path rule taint by origin.
    origins: HashMap<(u32, i16), Taint>,
    /// JSON paths by origin.
    json: HashMap<(u32, i16), Vec<(RuleId, JsonPath)>>,
    /// Detector rules scoped to an origin (rules that scan everything are not listed).
    scans: HashMap<(u32, i16), Vec<RuleId>>,
    builtin_functions: HashSet<String>,
    user_functions: HashSet<String>,
    /// User relation OIDs seen at load, masked or not.
    known: HashSet<u32>,
    /// When it was loaded.
    pub loaded: Instant,
    lineage: quick_cache::sync::Cache<Box<str>, Arc<Vec<Lineage>>>,
}

impl Schema for Catalog {
    fn relations(&self, schema: Option<&str>, name: &str) -> Vec<&RelationInfo> {
        match schema {
            Some(s) => self
                .by_qualified
                .get(&(s.to_owned(), name.to_owned()))
                .and_then(|oid| self.rels.get(oid))
                .into_iter()
                .collect(),
            None => self
                .by_name
                .get(name)
                .map(|oids| oids.iter().filter_map(|o| self.rels.get(o)).collect())
                .unwrap_or_default(),
        }
    }

    fn function(&self, schema: Option<&str>, name: &str) -> FunctionKind {
        let builtin = |name: &str| {
            if OPAQUE_BUILTINS.contains(&name) {
                FunctionKind::Opaque
            } else if SINKS.contains(&name) {
                FunctionKind::Sink
            } else {
                FunctionKind::Pure
            }
        };
        match schema {
            Some("pg_catalog") => builtin(name),
            Some(_) => FunctionKind::Opaque,
            // A user function of the same name may win overload resolution: opaque.
            None if self.user_functions.contains(name) => FunctionKind::Opaque,
            None if self.builtin_functions.contains(name) => builtin(name),
            // Unknown everywhere: the target will refuse it.
            None => FunctionKind::Pure,
        }
    }
}

impl Catalog {
    /// Rules on the column at `(oid, attnum)` (`None` when the relation is unknown).
    pub fn origin(&self, oid: u32, attnum: i16) -> Option<&Taint> {
        self.origins.get(&(oid, attnum))
    }

    /// Whether the relation was in the catalog when it was loaded (built-ins count).
    pub fn knows(&self, oid: u32) -> bool {
        oid < FIRST_USER_OID || self.known.contains(&oid)
    }

    /// JSON paths on the column at `(oid, attnum)`.
    pub fn json_paths(&self, oid: u32, attnum: i16) -> &[(RuleId, JsonPath)] {
        self.json.get(&(oid, attnum)).map_or(&[], Vec::as_slice)
    }

    /// Detector rules scoped to the column at `(oid, attnum)`.
    pub fn scans(&self, oid: u32, attnum: i16) -> &[RuleId] {
        self.scans.get(&(oid, attnum)).map_or(&[], Vec::as_slice)
    }

    /// The lineage of `sql`, cached for this snapshot.
    pub fn lineage(&self, sql: &str) -> Arc<Vec<Lineage>> {
        if let Some(l) = self.lineage.get(sql) {
            return l;
        }
        let l = Arc::new(lineage::analyze(sql, self));
        self.lineage.insert(sql.into(), l.clone());
        l
    }

    /// Builds a snapshot from catalog rows.
    pub fn build(rows: CatalogRows, rules: &MaskRules) -> Catalog {
        let mut c = Catalog {
            rels: HashMap::new(),
            attnums: HashMap::new(),
            by_name: HashMap::new(),
            by_qualified: HashMap::new(),
            origins: HashMap::new(),
            json: HashMap::new(),
            scans: HashMap::new(),
            builtin_functions: rows.builtin_functions,
            user_functions: rows.user_functions,
            known: HashSet::new(),
            loaded: Instant::now(),
            lineage: quick_cache::sync::Cache::new(4096),
        };
        // Ancestors (inheritance and partitioning): a child's column matches the parent's
        // patterns too, so masking `public.events.email` covers every partition.
        let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
        for (child, parent) in &rows.inherits {
            parents.entry(*child).or_default().push(*parent);
        }
        let names: HashMap<u32, (String, String)> = rows
            .relations
            .iter()
            .map(|r| (r.oid, (r.schema.clone(), r.name.clone())))
            .collect();
        let ancestors = |oid: u32| {
            let mut out = vec![oid];
            let mut i = 0;
            while i < out.len() && out.len() < 64 {
                if let Some(ps) = parents.get(&out[i]) {
                    for p in ps {
                        if !out.contains(p) {
                            out.push(*p);
                        }
                    }
                }
                i += 1;
            }
            out
        };
        let mut views = Vec::new();
        for r in &rows.relations {
            c.known.insert(r.oid);
            let mut columns = Vec::new();
            let holds_values = VALUE_HOLDING_CATALOGS.contains(&r.name.as_str())
                && (r.schema == "pg_catalog" || r.oid >= FIRST_USER_OID);
            for (name, &attnum) in r.columns.iter().zip(&r.attnums) {
                let mut taint = Taint::none();
                if holds_values {
                    taint.0.extend(rules.column_rules());
                }
                for a in ancestors(r.oid) {
                    let Some((s, t)) = names.get(&a) else {
                        continue;
                    };
                    taint.0.extend(rules.column_taint(s, t, name));
                    for (i, rule) in rules.rules.iter().enumerate() {
                        for (p, path) in &rule.json {
                            if super::rules::glob(&p[0], s)
                                && super::rules::glob(&p[1], t)
                                && super::rules::glob(&p[2], name)
                            {
                                c.json
                                    .entry((r.oid, attnum))
                                    .or_default()
                                    .push((i as RuleId, path.clone()));
                            }
                        }
                    }
                    let scans: Vec<RuleId> = rules
                        .scan_scope(s, t, name)
                        .into_iter()
                        .filter(|&i| !rules.rules[usize::from(i)].scans_everything())
                        .collect();
                    if !scans.is_empty() {
                        c.scans.entry((r.oid, attnum)).or_default().extend(scans);
                    }
                }
                columns.push(ColumnInfo {
                    name: name.clone(),
                    taint,
                });
            }
            if let Some(def) = &r.view_def {
                views.push((r.oid, def.clone()));
            }
            c.attnums.insert(r.oid, r.attnums.clone());
            c.by_name.entry(r.name.clone()).or_default().push(r.oid);
            c.by_qualified
                .insert((r.schema.clone(), r.name.clone()), r.oid);
            c.rels.insert(
                r.oid,
                RelationInfo {
                    schema: r.schema.clone(),
                    name: r.name.clone(),
                    columns,
                },
            );
        }
        let column_rules = Taint(rules.column_rules().collect());
        for _ in 0..VIEW_PASSES {
            let mut changed = false;
            for (oid, def) in &views {
                let analysed = lineage::analyze(def, &c);
                let Some(rel) = c.rels.get(oid) else { continue };
                let width = rel.columns.len();
                let per_column: Vec<Taint> = match analysed.first() {
                    // A view calling something the analysis cannot see through is masked
                    // whole (failing closed).
                    Some(l) if l.refusal.is_some() => vec![column_rules.clone(); width],
                    // So is one the parser cannot read (a newer grammar, say): the target
                    // printed it, so it runs there whatever it reads.
                    Some(Lineage {
                        outputs: Outputs::Unknown(o),
                        ..
                    }) if !o.taint.is_tainted()
                        && warden_policy::statement::analyze_uncached(def)
                            .parse_error
                            .is_some() =>
                    {
                        vec![column_rules.clone(); width]
                    }
                    Some(Lineage {
                        outputs: Outputs::Known(cols),
                        ..
                    }) if cols.len() == width => cols.iter().map(|o| o.taint.clone()).collect(),
                    Some(Lineage {
                        outputs: Outputs::Unknown(o),
                        ..
                    }) => vec![o.taint.clone(); width],
                    Some(Lineage {
                        outputs: Outputs::Known(cols),
                        ..
                    }) => {
                        let mut all = Taint::none();
                        for o in cols {
                            all.extend(&o.taint);
                        }
                        vec![all; width]
                    }
                    _ => vec![column_rules.clone(); width],
                };
                if let Some(rel) = c.rels.get_mut(oid) {
                    for (col, t) in rel.columns.iter_mut().zip(per_column) {
                        let before = col.taint.0.len();
                        col.taint.extend(&t);
                        changed |= col.taint.0.len() != before;
                    }
                }
            }
            if !changed {
                break;
            }
        }
        for (oid, rel) in &c.rels {
            if let Some(nums) = c.attnums.get(oid) {
                for (col, &attnum) in rel.columns.iter().zip(nums) {
                    if col.taint.is_tainted() {
                        c.origins.insert((*oid, attnum), col.taint.clone());
                    }
                }
            }
        }
        c
    }
}

/// What the catalog queries return.
#[derive(Default)]
pub struct CatalogRows {
    /// User relations.
    pub relations: Vec<RelationRow>,
    /// `(child, parent)` from pg_inherits.
    pub inherits: Vec<(u32, u32)>,
    /// Function names in pg_catalog.
    pub builtin_functions: HashSet<String>,
    /// Function names in any other schema.
    pub user_functions: HashSet<String>,
}

/// One relation.
pub struct RelationRow {
    /// pg_class OID.
    pub oid: u32,
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// Live columns in attnum order.
    pub columns: Vec<String>,
    /// Their attnums.
    pub attnums: Vec<i16>,
    /// A view's or materialized view's defining query.
    pub view_def: Option<String>,
}

const RELATIONS_SQL: &str = "\
SELECT c.oid::int8, n.nspname::text, c.relname::text,
       coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       coalesce(array_agg(a.attnum::int4 ORDER BY a.attnum) FILTER (WHERE a.attnum IS NOT NULL), '{}'),
       CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid) END
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f')
  AND ((n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND n.nspname NOT LIKE 'pg\\_toast%')
       OR c.relname = ANY($1))
GROUP BY c.oid, n.nspname, c.relname, c.relkind";

const FUNCTIONS_SQL: &str = "\
SELECT DISTINCT n.nspname = 'pg_catalog', p.proname::text
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> 'information_schema'";

/// A connection's catalog: its own small pool and the current snapshot.
pub struct CatalogHandle {
    pool: PgPool,
    rules: Arc<MaskRules>,
    current: ArcSwapOption<Catalog>,
    reload: tokio::sync::Mutex<()>,
    ttl: Duration,
    /// Set when a session committed DDL on the connection: the next use reloads.
    stale: std::sync::atomic::AtomicBool,
}

impl CatalogHandle {
    /// A handle reading the catalog as `user` (connections open lazily).
    pub fn new(
        host: &str,
        port: u16,
        database: &str,
        user: &str,
        password: Option<&str>,
        rules: Arc<MaskRules>,
        connect_timeout: Duration,
    ) -> CatalogHandle {
        let mut opts = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(port)
            .database(database)
            .username(user)
            .ssl_mode(PgSslMode::Disable)
            .application_name("warden-catalog")
            .options([("statement_timeout", "30s")]);
        if let Some(pw) = password {
            opts = opts.password(pw);
        }
        let opts = sqlx::ConnectOptions::disable_statement_logging(opts);
        let pool = PgPoolOptions::new()
            .max_connections(2)
            .min_connections(0)
            .acquire_timeout(connect_timeout)
            .idle_timeout(Some(Duration::from_secs(300)))
            .connect_lazy_with(opts);
        CatalogHandle {
            pool,
            rules,
            current: ArcSwapOption::empty(),
            reload: tokio::sync::Mutex::new(()),
            ttl: Duration::from_secs(60),
            stale: Default::default(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &Arc<MaskRules> {
        &self.rules
    }

    /// Marks the snapshot out of date: a session committed a statement that may have
    /// created, changed or dropped relations.
    pub fn mark_stale(&self) {
        self.stale.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Whether the snapshot is out of date.
    pub fn is_stale(&self) -> bool {
        self.stale.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current snapshot, loading it when there is none, it is older than the TTL or it
    /// is out of date.
    pub async fn get(&self) -> Result<Arc<Catalog>, String> {
        if let Some(c) = self.current.load_full() {
            if c.loaded.elapsed() < self.ttl && !self.is_stale() {
                return Ok(c);
            }
        }
        self.reload_since(Instant::now()).await
    }

    /// The snapshot without loading (sessions keep theirs between reloads).
    pub fn peek(&self) -> Option<Arc<Catalog>> {
        self.current.load_full()
    }

    /// A snapshot loaded after `since`: reloads unless another task already did.
    pub async fn reload_since(&self, since: Instant) -> Result<Arc<Catalog>, String> {
        let _one = self.reload.lock().await;
        if let Some(c) = self.current.load_full() {
            if c.loaded >= since && !self.is_stale() {
                return Ok(c);
            }
        }
        // Cleared before reading: DDL committed while the queries run marks it again.
        self.stale
            .store(false, std::sync::atomic::Ordering::Release);
        let rows = match self.fetch().await {
            Ok(r) => r,
            Err(e) => {
                self.mark_stale();
                return Err(e);
            }
        };
        let cat = Arc::new(Catalog::build(rows, &self.rules));
        self.current.store(Some(cat.clone()));
        metrics::counter!("warden_masking_catalog_loads_total").increment(1);
        Ok(cat)
    }

    async fn fetch(&self) -> Result<CatalogRows, String> {
        let err = |e: sqlx::Error| match e {
            sqlx::Error::Database(d) => {
                format!("the target refused the catalog query: {}", d.message())
            }
            other => format!("could not read the target's catalog: {other}"),
        };
        let mut rows = CatalogRows::default();
        type RelTuple = (i64, String, String, Vec<String>, Vec<i32>, Option<String>);
        let sensitive: Vec<String> = VALUE_HOLDING_CATALOGS
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rels: Vec<RelTuple> = sqlx::query_as(RELATIONS_SQL)
            .bind(sensitive)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        for (oid, schema, name, columns, attnums, view_def) in rels {
            rows.relations.push(RelationRow {
                oid: oid as u32,
                schema,
                name,
                columns,
                attnums: attnums.into_iter().map(|a| a as i16).collect(),
                view_def,
            });
        }
        let inh: Vec<(i64, i64)> =
            sqlx::query_as("SELECT inhrelid::int8, inhparent::int8 FROM pg_inherits")
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
        rows.inherits = inh.into_iter().map(|(c, p)| (c as u32, p as u32)).collect();
        let funcs: Vec<(bool, String)> = sqlx::query_as(FUNCTIONS_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(err)?;
        for (builtin, name) in funcs {
            if builtin {
                rows.builtin_functions.insert(name);
            } else {
                rows.user_functions.insert(name);
            }
        }
        Ok(rows)
    }
}
