//! Statement analysis: what each SQL text a client sends would do, decided by the real
//! PostgreSQL parser (`pg_query`) and cached so the proxy's hot path rarely parses.
//!
//! Flow of [`Analyzer::analyze`]: `key` turns the text into a cache key with literals
//! replaced by markers (so `… WHERE aid = 1` and `… WHERE aid = 2` share one entry, while
//! `aid = -1` does not, the minus being an operator); on a hit the cached [`Analysis`] is
//! returned; on a miss the *original* text is parsed, `tree` turns the parse tree into a
//! generic tree, `classify` walks all of it, and the result is cached. Why reusing one
//! text's analysis for another with the same key is sound is argued in `key.rs`.
//!
//! The analysis assumes `standard_conforming_strings = on` (PostgreSQL's default since
//! 9.1), as `pg_query` does; a `SET` that turns it off is classified
//! [`StatementClass::Destructive`] for that reason.

mod classify;
mod key;
mod tree;

use std::cmp::Ordering as CmpOrdering;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use quick_cache::sync::Cache;
use quick_cache::Weighter;
use serde::{Deserialize, Serialize};

/// Statements longer than this are not parsed: they are reported as one
/// [`StatementClass::Unknown`] statement. The bound keeps one client from making the gateway
/// spend seconds and hundreds of megabytes on a single parse.
pub const MAX_ANALYZED_LEN: usize = 8 << 20;

/// What a statement may do, from least to most risky: [`StatementClass::Utility`] <
/// [`StatementClass::Read`] < [`StatementClass::Write`] < [`StatementClass::Ddl`] <
/// [`StatementClass::Destructive`] < [`StatementClass::Unknown`] (see [`StatementClass::risk`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatementClass {
    /// Reads data: SELECT, COPY … TO STDOUT, EXPLAIN, FETCH.
    Read,
    /// Changes rows: INSERT, UPDATE/DELETE with WHERE, MERGE, COPY FROM STDIN,
    /// SELECT … FOR UPDATE, EXECUTE of a prepared statement, CALL.
    Write,
    /// Creates objects: CREATE TABLE/INDEX/VIEW/…, maintenance such as VACUUM or REINDEX.
    Ddl,
    /// Destroys or changes existing objects or privileges, runs opaque code, or reaches
    /// outside the database (see [`StatementInfo::reasons`]).
    Destructive,
    /// Session and transaction control: SET, SHOW, BEGIN, COMMIT, LISTEN, DISCARD, ….
    Utility,
    /// Did not parse (or could not be analysed): callers treat it as the riskiest class.
    Unknown,
}

impl StatementClass {
    /// Rank for comparisons: higher is riskier.
    pub fn risk(self) -> u8 {
        match self {
            StatementClass::Utility => 0,
            StatementClass::Read => 1,
            StatementClass::Write => 2,
            StatementClass::Ddl => 3,
            StatementClass::Destructive => 4,
            StatementClass::Unknown => 5,
        }
    }

    /// The class named `name` in configuration.
    pub fn from_name(name: &str) -> Option<StatementClass> {
        [
            StatementClass::Read,
            StatementClass::Write,
            StatementClass::Ddl,
            StatementClass::Destructive,
            StatementClass::Utility,
            StatementClass::Unknown,
        ]
        .into_iter()
        .find(|c| c.as_str() == name)
    }

    /// The lowercase name used in configuration (`"destructive"`).
    pub fn as_str(self) -> &'static str {
        match self {
            StatementClass::Read => "read",
            StatementClass::Write => "write",
            StatementClass::Ddl => "ddl",
            StatementClass::Destructive => "destructive",
            StatementClass::Utility => "utility",
            StatementClass::Unknown => "unknown",
        }
    }
}

impl PartialOrd for StatementClass {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

/// Orders by [`StatementClass::risk`].
impl Ord for StatementClass {
    fn cmp(&self, other: &Self) -> CmpOrdering {
        self.risk().cmp(&other.risk())
    }
}

impl fmt::Display for StatementClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One top-level statement of a (possibly multi-statement) SQL text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatementInfo {
    /// The riskiest thing the statement or anything nested in it does.
    pub class: StatementClass,
    /// A command-tag-like name: `"SELECT"`, `"INSERT"`, `"DROP TABLE"`, `"COPY FROM STDIN"`.
    pub kind: String,
    /// Relations referenced anywhere in the statement (CTE names excluded), schema-qualified
    /// when written so; a part that is not a plain lower-case identifier is double-quoted.
    pub tables: Vec<String>,
    /// Functions called anywhere in the statement, qualified when written so.
    pub functions: Vec<String>,
    /// Why the class is what it is when that is not obvious from `kind`, e.g.
    /// `"DELETE without WHERE"`, `"calls pg_read_file"`. Never contains literal values.
    pub reasons: Vec<String>,
}

/// The analysis of one SQL text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Analysis {
    /// One entry per statement, in order; empty for an empty or comment-only text.
    pub statements: Vec<StatementInfo>,
    /// Set when the text did not parse; `statements` then holds one `Unknown` entry.
    pub parse_error: Option<String>,
}

impl Analysis {
    /// The riskiest class among the statements ([`StatementClass::Utility`] when there
    /// are none).
    pub fn riskiest(&self) -> StatementClass {
        self.statements
            .iter()
            .map(|s| s.class)
            .max()
            .unwrap_or(StatementClass::Utility)
    }

    /// The analysis of a text that could not be analysed: one `Unknown` statement.
    fn unparsed(error: String) -> Analysis {
        Analysis {
            statements: vec![StatementInfo {
                class: StatementClass::Unknown,
                kind: "UNKNOWN".to_owned(),
                tables: Vec::new(),
                functions: Vec::new(),
                reasons: vec!["the statement could not be analysed".to_owned()],
            }],
            parse_error: Some(error),
        }
    }
}

/// Statement kinds whose text may carry a secret (a password, a connection string).
const SECRET_KINDS: &[&str] = &[
    "CREATE ROLE",
    "CREATE USER",
    "CREATE GROUP",
    "ALTER ROLE",
    "CREATE USER MAPPING",
    "ALTER USER MAPPING",
    "CREATE SERVER",
    "ALTER SERVER",
    "CREATE SUBSCRIPTION",
    "ALTER SUBSCRIPTION",
];

/// Words that mark a text as possibly carrying a secret whatever its kind (a function
/// argument, a DO block, a statement that did not parse).
const SECRET_WORDS: &[&str] = &["password", "passwd", "secret", "dblink", "conninfo"];

impl Analysis {
    /// Whether `sql` (the text this is the analysis of) may hold a secret, so a recording
    /// must keep only [`redact`]ed text and no parameters.
    pub fn may_hold_secret(&self, sql: &str) -> bool {
        self.parse_error.is_some()
            || self
                .statements
                .iter()
                .any(|s| SECRET_KINDS.iter().any(|k| s.kind.starts_with(k)))
            || {
                let lower = sql.to_ascii_lowercase();
                SECRET_WORDS.iter().any(|w| lower.contains(w))
            }
    }
}

/// `sql` with every literal replaced by `$n` (PostgreSQL's own normaliser), for texts that
/// may hold a secret. A text that cannot be parsed is replaced whole: failing closed.
pub fn redact(sql: &str) -> String {
    match pg_query::normalize(sql) {
        Ok(n) => n,
        Err(_) => {
            "<redacted: a statement that could not be parsed and may hold a secret>".to_owned()
        }
    }
}

/// Analyses `sql` without any cache (for one-off callers and tests).
pub fn analyze_uncached(sql: &str) -> Analysis {
    classify::analyze_text(sql)
}

/// Weighs cache entries by size, so a cache of `n` entries holds `n` typical statements
/// but not `n` megabyte-sized ones: each started KiB of key counts as one entry.
#[derive(Debug, Clone, Copy)]
struct KeyWeighter;

impl Weighter<String, Arc<Analysis>> for KeyWeighter {
    fn weight(&self, key: &String, _value: &Arc<Analysis>) -> u64 {
        1 + (key.len() / 1024) as u64
    }
}

/// Analyses SQL texts with a shared cache. `Send + Sync`: one per gateway, shared by all
/// sessions.
pub struct Analyzer {
    cache: Cache<String, Arc<Analysis>, KeyWeighter>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (hits, misses) = self.stats();
        f.debug_struct("Analyzer")
            .field("entries", &self.cache.len())
            .field("capacity", &self.cache.capacity())
            .field("hits", &hits)
            .field("misses", &misses)
            .finish()
    }
}

impl Analyzer {
    /// An analyzer caching about `cache_capacity` statements (0 disables caching).
    pub fn new(cache_capacity: usize) -> Self {
        let weight = cache_capacity as u64;
        // The estimate only pre-sizes the tables; a huge configured capacity must not
        // allocate it all up front.
        let estimated = cache_capacity.clamp(1, 1 << 16);
        Analyzer {
            cache: Cache::with_weighter(estimated, weight, KeyWeighter),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }
    }

    /// Analyses `sql`, from the cache when a text with the same literal-free key was seen.
    pub fn analyze(&self, sql: &str) -> Arc<Analysis> {
        if sql.len() > MAX_ANALYZED_LEN {
            // Not worth a key (a copy of the text) nor a cache slot.
            self.misses.fetch_add(1, Ordering::Relaxed);
            return Arc::new(classify::analyze_text(sql));
        }
        let key = key::cache_key(sql);
        if let Some(hit) = self.cache.get(key.as_str()) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return hit;
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let analysis = Arc::new(classify::analyze_text(sql));
        // A parse error may quote a literal of *this* text; under a normalized key another
        // session's text would get that message, so such results are not shared.
        if analysis.parse_error.is_none() || !key::is_normalized(&key) {
            self.cache.insert(key, Arc::clone(&analysis));
        }
        analysis
    }

    /// Analyses a query string as it arrived on the wire. Text that is not UTF-8 is not
    /// guessed at: it is one `Unknown` statement (and not cached).
    pub fn analyze_bytes(&self, sql: &[u8]) -> Arc<Analysis> {
        match std::str::from_utf8(sql) {
            Ok(sql) => self.analyze(sql),
            Err(e) => {
                self.misses.fetch_add(1, Ordering::Relaxed);
                Arc::new(Analysis::unparsed(format!(
                    "the statement is not valid UTF-8 (at byte {})",
                    e.valid_up_to()
                )))
            }
        }
    }

    /// Cache hits and misses since creation.
    pub fn stats(&self) -> (u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests;
