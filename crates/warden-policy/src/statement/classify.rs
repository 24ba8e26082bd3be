//! Classification: parses a text with `pg_query` and walks every node of every statement.
//!
//! Each statement node found anywhere (top level, in a CTE, in a subquery, in a rule's
//! actions, in a PREPARE or EXPLAIN ANALYZE) contributes its class; the statement's class is
//! the riskiest contribution. Function calls and relation references are collected from the
//! whole tree too, and a call of a dangerous function anywhere makes the statement
//! destructive. Only literal-independent facts are read (see `key`'s module docs).

use std::panic::{catch_unwind, AssertUnwindSafe};

use pg_query::protobuf::{ObjectType, RoleStmtType, TransactionStmtKind, VariableSetKind};
use pg_query::ParserOptions;

use super::tree::{bool_field, field, has_field, int_field, str_field, Value};
use super::{Analysis, StatementClass, StatementInfo, MAX_ANALYZED_LEN};

const TOO_DEEP: &str = "the statement is nested too deeply to analyse";

/// Our own walk's recursion bound; the tree is already bounded by `tree`'s limit.
const MAX_WALK_DEPTH: usize = 1024;

/// Functions that reach outside the database, read or write server files, change server
/// configuration or other sessions, or run SQL hidden in a string argument. Compared with
/// the last part of the (case-folded) name, whatever the schema.
const DANGEROUS_FUNCTIONS: &[&str] = &[
    "pg_read_file",
    "pg_read_binary_file",
    "pg_ls_dir",
    "pg_stat_file",
    "lo_import",
    "lo_export",
    "lo_unlink",
    "dblink",
    "dblink_exec",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_rotate_logfile",
    "set_config",
    "pg_file_write",
    "pg_logdir_ls",
    "pg_promote",
    "pg_switch_wal",
    "pg_backup_start",
    "pg_backup_stop",
    "pg_wal_replay_pause",
    "pg_wal_replay_resume",
    "pg_log_backend_memory_contexts",
    "pg_import_system_collations",
    "pg_logical_emit_message",
    "pg_replication_slot_advance",
    // These run the SQL text passed to them, which the parser sees only as a string.
    "query_to_xml",
    "query_to_xmlschema",
    "query_to_xml_and_xmlschema",
    "ts_stat",
];

/// Name prefixes of whole dangerous families (`dblink_connect`, `pg_ls_waldir`, …).
const DANGEROUS_PREFIXES: &[&str] = &[
    "dblink",
    "pg_ls_",
    "pg_read_",
    "pg_file_",
    "pg_create_",
    "pg_drop_",
    "pg_copy_",
    "pg_replication_origin_",
    "pg_logical_slot_",
];

/// Functions that change data although called from a SELECT.
const WRITING_FUNCTIONS: &[&str] = &[
    "nextval",
    "setval",
    "lo_create",
    "lo_creat",
    "lo_put",
    "lo_from_bytea",
    "lo_truncate",
    "lo_truncate64",
    "lowrite",
];

/// Analyses one SQL text without caching. Never panics: a panic inside `pg_query`'s Rust
/// post-processing or our walk becomes an `Unknown` statement.
pub(super) fn analyze_text(sql: &str) -> Analysis {
    if sql.len() > MAX_ANALYZED_LEN {
        return Analysis::unparsed(format!(
            "the statement is {} bytes long; statements over {} bytes are not analysed",
            sql.len(),
            MAX_ANALYZED_LEN
        ));
    }
    catch_unwind(AssertUnwindSafe(|| analyze_parsed(sql))).unwrap_or_else(|_| {
        Analysis::unparsed("the SQL parser failed on this statement".to_owned())
    })
}

fn analyze_parsed(sql: &str) -> Analysis {
    let parsed = match pg_query::parse(sql, ParserOptions::DEFAULT) {
        Ok(parsed) => parsed,
        Err(pg_query::Error::Parse(message)) => return Analysis::unparsed(message),
        // The protobuf decoder stops at 100 nested messages (about 20 nested subqueries
        // or 45 chained operators).
        Err(pg_query::Error::Decode(_)) => return Analysis::unparsed(TOO_DEEP.to_owned()),
        Err(pg_query::Error::Conversion(_)) => {
            return Analysis::unparsed("the statement contains a NUL byte".to_owned())
        }
        Err(other) => return Analysis::unparsed(other.to_string()),
    };
    let mut statements = Vec::with_capacity(parsed.protobuf.stmts.len());
    for raw in &parsed.protobuf.stmts {
        let tree = match Value::from_tree(&raw.stmt) {
            Ok(tree) => tree,
            Err(e) => return Analysis::unparsed(e.to_string()),
        };
        statements.push(statement_info(&tree));
    }
    Analysis {
        statements,
        parse_error: None,
    }
}

fn statement_info(tree: &Value) -> StatementInfo {
    let mut walker = Walker::default();
    walker.walk(tree, true, 0);
    StatementInfo {
        class: walker.class.unwrap_or(StatementClass::Utility),
        kind: kind_of(tree),
        tables: walker.tables,
        functions: walker.functions,
        reasons: walker.reasons,
    }
}

/// Collects what one top-level statement does.
#[derive(Default)]
struct Walker<'t> {
    class: Option<StatementClass>,
    reasons: Vec<String>,
    tables: Vec<String>,
    functions: Vec<String>,
    /// Names of the CTEs visible at the current point of the walk.
    ctes: Vec<&'t str>,
}

type Fields = [(&'static str, Value)];

impl<'t> Walker<'t> {
    fn raise(&mut self, class: StatementClass, reason: Option<String>) {
        self.class = Some(self.class.map_or(class, |c| c.max(class)));
        if let Some(reason) = reason {
            push_unique(&mut self.reasons, reason);
        }
    }

    /// Walks `v`. `executed` is false inside things that are not run by this statement
    /// (a plain EXPLAIN's query, a function body): their statements add nothing to the
    /// class, but their tables, functions and dangerous calls still count.
    fn walk(&mut self, v: &'t Value, executed: bool, depth: usize) {
        if depth > MAX_WALK_DEPTH {
            self.raise(StatementClass::Unknown, Some(TOO_DEEP.to_owned()));
            return;
        }
        match v {
            Value::Seq(items) => {
                for item in items {
                    self.walk(item, executed, depth + 1);
                }
            }
            Value::Node(name, fields) => self.node(name, fields, executed, depth + 1),
            Value::Unit | Value::Bool(_) | Value::Int(_) | Value::Str(_) => {}
        }
    }

    fn walk_fields(&mut self, fields: &'t Fields, executed: bool, depth: usize) {
        for (_, v) in fields {
            self.walk(v, executed, depth);
        }
    }

    fn node(&mut self, name: &'static str, fields: &'t Fields, executed: bool, depth: usize) {
        if executed && name.ends_with("Stmt") {
            let (class, reason) = classify_stmt(name, fields);
            self.raise(class, reason);
        }
        match name {
            "RangeVar" => return self.range_var(fields, true),
            "FuncCall" => {
                self.func_call(fields, executed);
                for (key, v) in fields {
                    if *key != "funcname" {
                        self.walk(v, executed, depth);
                    }
                }
                return;
            }
            "ExplainStmt" => {
                // Any ANALYZE option counts, whatever its value: `ANALYZE 'off'` and
                // `ANALYZE 'on'` share a cache key.
                let analyze = field(fields, "options").is_some_and(|options| {
                    options
                        .as_seq()
                        .iter()
                        .any(|o| o.field("defname").and_then(Value::as_str) == Some("analyze"))
                });
                for (key, v) in fields {
                    let runs = if *key == "query" {
                        executed && analyze
                    } else {
                        executed
                    };
                    self.walk(v, runs, depth);
                }
                return;
            }
            // The body runs later, and the statement is destructive anyway.
            "CreateFunctionStmt" => return self.walk_fields(fields, false, depth),
            "DropStmt" => self.drop_targets(fields),
            _ => {}
        }
        let is_dml = matches!(
            name,
            "InsertStmt" | "UpdateStmt" | "DeleteStmt" | "MergeStmt"
        );
        let scope = self.ctes.len();
        if let Some(with) = field(fields, "with_clause").filter(|w| w.is_present()) {
            self.with_clause(with, executed, depth);
        }
        for (key, v) in fields {
            match *key {
                "with_clause" => {}
                // The target of INSERT/UPDATE/DELETE/MERGE is always a table, never a CTE.
                "relation" if is_dml => {
                    if let Some(("RangeVar", rv)) = v.as_node() {
                        self.range_var(rv, false);
                    }
                }
                _ => self.walk(v, executed, depth),
            }
        }
        self.ctes.truncate(scope);
    }

    /// Walks the CTEs of a WITH clause and leaves all their names in scope for the rest of
    /// the statement (the caller pops them). A CTE sees the ones before it, or all of them
    /// (itself included) under RECURSIVE.
    fn with_clause(&mut self, with: &'t Value, executed: bool, depth: usize) {
        let recursive = matches!(with.field("recursive"), Some(Value::Bool(true)));
        let ctes = with.field("ctes").map(Value::as_seq).unwrap_or(&[]);
        let name_of = |cte: &'t Value| cte.field("ctename").and_then(Value::as_str);
        if recursive {
            self.ctes.extend(ctes.iter().filter_map(name_of));
        }
        for cte in ctes {
            self.walk(cte, executed, depth);
            if !recursive {
                self.ctes.extend(name_of(cte));
            }
        }
    }

    fn range_var(&mut self, fields: &Fields, may_be_cte: bool) {
        let catalog = str_field(fields, "catalogname");
        let schema = str_field(fields, "schemaname");
        let relation = str_field(fields, "relname");
        if relation.is_empty() {
            return;
        }
        if may_be_cte && catalog.is_empty() && schema.is_empty() && self.ctes.contains(&relation) {
            return;
        }
        push_unique(&mut self.tables, qualified([catalog, schema, relation]));
    }

    fn func_call(&mut self, fields: &Fields, executed: bool) {
        let parts: Vec<&str> = field(fields, "funcname")
            .map(Value::as_seq)
            .unwrap_or(&[])
            .iter()
            .filter_map(|part| part.field("sval").and_then(Value::as_str))
            .collect();
        let Some(last) = parts.last() else {
            return;
        };
        push_unique(&mut self.functions, qualified(parts.iter().copied()));
        let lower = last.to_ascii_lowercase();
        if DANGEROUS_FUNCTIONS.contains(&lower.as_str())
            || DANGEROUS_PREFIXES.iter().any(|p| lower.starts_with(p))
            || lower.ends_with("_replication_slot")
        {
            // Counted even where not executed: immutable calls can run at plan time.
            self.raise(StatementClass::Destructive, Some(format!("calls {lower}")));
        } else if executed && WRITING_FUNCTIONS.contains(&lower.as_str()) {
            self.raise(
                StatementClass::Write,
                Some(format!("calls {lower}, which changes data")),
            );
        }
    }

    /// DROP TABLE/VIEW/… names its targets as name lists, not RangeVars.
    fn drop_targets(&mut self, fields: &Fields) {
        let relation_kind = matches!(
            ObjectType::try_from(int_field(fields, "remove_type")),
            Ok(ObjectType::ObjectTable
                | ObjectType::ObjectView
                | ObjectType::ObjectMatview
                | ObjectType::ObjectForeignTable
                | ObjectType::ObjectSequence
                | ObjectType::ObjectIndex)
        );
        if !relation_kind {
            return;
        }
        for object in field(fields, "objects").map(Value::as_seq).unwrap_or(&[]) {
            let parts = object
                .field("items")
                .map(Value::as_seq)
                .unwrap_or(&[])
                .iter()
                .filter_map(|part| part.field("sval").and_then(Value::as_str));
            let name = qualified(parts);
            if !name.is_empty() {
                push_unique(&mut self.tables, name);
            }
        }
    }
}

/// The class one statement node contributes by itself (nested nodes add their own), and
/// why when that is not obvious from its kind.
fn classify_stmt(name: &str, fields: &Fields) -> (StatementClass, Option<String>) {
    use StatementClass::{Ddl, Destructive, Read, Utility, Write};
    let why = |s: &str| Some(s.to_owned());
    match name {
        "SelectStmt" => {
            if has_field(fields, "into_clause") {
                (Ddl, why("SELECT INTO creates a table"))
            } else if has_field(fields, "locking_clause") {
                (Write, why("SELECT … FOR UPDATE/SHARE locks rows"))
            } else {
                (Read, None)
            }
        }
        "InsertStmt" | "MergeStmt" | "LockStmt" | "RefreshMatViewStmt" => (Write, None),
        "UpdateStmt" | "DeleteStmt" => {
            if has_field(fields, "where_clause") {
                (Write, None)
            } else if name == "UpdateStmt" {
                (Destructive, why("UPDATE without WHERE"))
            } else {
                (Destructive, why("DELETE without WHERE"))
            }
        }
        "CopyStmt" => {
            if bool_field(fields, "is_program") {
                (
                    Destructive,
                    why("COPY … PROGRAM runs a shell command on the database server"),
                )
            } else if !str_field(fields, "filename").is_empty() {
                (
                    Destructive,
                    why("COPY with a file name reads or writes a file on the database server"),
                )
            } else if bool_field(fields, "is_from") {
                (Write, None)
            } else {
                (Read, None)
            }
        }
        "ExplainStmt" | "FetchStmt" | "DeclareCursorStmt" | "ReturnStmt" | "PlassignStmt" => {
            (Read, None)
        }
        "ExecuteStmt" => (Write, why("EXECUTE of a prepared statement")),
        "CallStmt" => (
            Write,
            why("CALL runs a procedure whose effects are not visible here"),
        ),
        "VariableSetStmt" => set_class(fields),
        "VariableShowStmt" | "TransactionStmt" | "ListenStmt" | "UnlistenStmt" | "NotifyStmt"
        | "DiscardStmt" | "DeallocateStmt" | "PrepareStmt" | "ClosePortalStmt"
        | "ConstraintsSetStmt" | "CheckPointStmt" => (Utility, None),
        "VacuumStmt" if !bool_field(fields, "is_vacuumcmd") => (Utility, None),
        "VacuumStmt" | "ClusterStmt" | "ReindexStmt" => (Ddl, None),
        "DoStmt" => (Destructive, why("DO runs an opaque procedural block")),
        "CreateFunctionStmt" => (
            Destructive,
            why("CREATE FUNCTION/PROCEDURE defines opaque code"),
        ),
        "LoadStmt" => (
            Destructive,
            why("LOAD loads a shared library into the server"),
        ),
        "TruncateStmt" => (Destructive, why("TRUNCATE removes all rows")),
        "GrantStmt" | "GrantRoleStmt" => {
            if bool_field(fields, "is_grant") {
                (Destructive, why("GRANT changes privileges"))
            } else {
                (Destructive, why("REVOKE changes privileges"))
            }
        }
        "AlterDefaultPrivilegesStmt" => (
            Destructive,
            why("ALTER DEFAULT PRIVILEGES changes privileges"),
        ),
        "CreateRoleStmt" | "AlterRoleStmt" | "AlterRoleSetStmt" | "DropRoleStmt" => {
            (Destructive, why("changes roles"))
        }
        "AlterSystemStmt" => (
            Destructive,
            why("ALTER SYSTEM changes the server configuration"),
        ),
        "ReassignOwnedStmt" => (Destructive, why("REASSIGN OWNED changes ownership")),
        n if n.starts_with("Drop") => (Destructive, why("DROP removes objects")),
        n if n.starts_with("Alter") || n == "RenameStmt" || n == "ReplicaIdentityStmt" => {
            (Destructive, why("ALTER changes an existing object"))
        }
        n if n.starts_with("Create")
            || matches!(
                n,
                "DefineStmt"
                    | "IndexStmt"
                    | "ViewStmt"
                    | "RuleStmt"
                    | "CompositeTypeStmt"
                    | "CommentStmt"
                    | "SecLabelStmt"
                    | "ImportForeignSchemaStmt"
            ) =>
        {
            if bool_field(fields, "replace") {
                (
                    Destructive,
                    why("CREATE OR REPLACE changes an existing object"),
                )
            } else {
                (Ddl, None)
            }
        }
        other => (
            Destructive,
            Some(format!("unrecognised statement type {other}")),
        ),
    }
}

/// SET is utility, except the settings that change who the session is or how later
/// statements are lexed (which this analysis depends on). Values are never read.
fn set_class(fields: &Fields) -> (StatementClass, Option<String>) {
    let sets = matches!(
        VariableSetKind::try_from(int_field(fields, "kind")),
        Ok(VariableSetKind::VarSetValue
            | VariableSetKind::VarSetDefault
            | VariableSetKind::VarSetCurrent)
    );
    match str_field(fields, "name") {
        "role" | "session_authorization" if sets => (
            StatementClass::Destructive,
            Some("SET ROLE/SESSION AUTHORIZATION changes the session's privileges".to_owned()),
        ),
        "standard_conforming_strings" if sets => (
            StatementClass::Destructive,
            Some(
                "SET standard_conforming_strings changes how string literals are parsed".to_owned(),
            ),
        ),
        _ => (StatementClass::Utility, None),
    }
}

/// A command-tag-like name for a top-level statement.
fn kind_of(tree: &Value) -> String {
    let Some((name, f)) = tree.as_node() else {
        return "UNKNOWN".to_owned();
    };
    let object = |key: &str| object_words(int_field(f, key));
    match name {
        "SelectStmt" if has_field(f, "into_clause") => "SELECT INTO".to_owned(),
        "CopyStmt" => {
            let direction = if bool_field(f, "is_from") {
                "FROM"
            } else {
                "TO"
            };
            let endpoint = if bool_field(f, "is_program") {
                "PROGRAM"
            } else if !str_field(f, "filename").is_empty() {
                "FILE"
            } else if bool_field(f, "is_from") {
                "STDIN"
            } else {
                "STDOUT"
            };
            format!("COPY {direction} {endpoint}")
        }
        "ExplainStmt" => {
            let analyze = field(f, "options").is_some_and(|o| {
                o.as_seq()
                    .iter()
                    .any(|o| o.field("defname").and_then(Value::as_str) == Some("analyze"))
            });
            if analyze {
                "EXPLAIN ANALYZE"
            } else {
                "EXPLAIN"
            }
            .to_owned()
        }
        "DropStmt" => format!("DROP {}", object("remove_type")),
        "AlterTableStmt" => format!("ALTER {}", object("objtype")),
        "AlterObjectSchemaStmt" | "AlterOwnerStmt" | "AlterObjectDependsStmt" => {
            format!("ALTER {}", object("object_type"))
        }
        "RenameStmt" => {
            let renamed = ObjectType::try_from(int_field(f, "rename_type"));
            let on_relation = matches!(
                renamed,
                Ok(ObjectType::ObjectColumn
                    | ObjectType::ObjectAttribute
                    | ObjectType::ObjectTabconstraint)
            );
            if on_relation {
                format!("ALTER {}", object("relation_type"))
            } else {
                format!("ALTER {}", object("rename_type"))
            }
        }
        "DefineStmt" => format!("CREATE {}", object("kind")),
        "CreateTableAsStmt" => {
            if bool_field(f, "is_select_into") {
                "SELECT INTO".to_owned()
            } else if ObjectType::try_from(int_field(f, "objtype")) == Ok(ObjectType::ObjectMatview)
            {
                "CREATE MATERIALIZED VIEW".to_owned()
            } else {
                "CREATE TABLE AS".to_owned()
            }
        }
        "CreateFunctionStmt" if bool_field(f, "is_procedure") => "CREATE PROCEDURE".to_owned(),
        "CreateRoleStmt" => match RoleStmtType::try_from(int_field(f, "stmt_type")) {
            Ok(RoleStmtType::RolestmtUser) => "CREATE USER",
            Ok(RoleStmtType::RolestmtGroup) => "CREATE GROUP",
            _ => "CREATE ROLE",
        }
        .to_owned(),
        "GrantStmt" | "GrantRoleStmt" => if bool_field(f, "is_grant") {
            "GRANT"
        } else {
            "REVOKE"
        }
        .to_owned(),
        "VariableSetStmt" => match VariableSetKind::try_from(int_field(f, "kind")) {
            Ok(VariableSetKind::VarReset | VariableSetKind::VarResetAll) => "RESET",
            _ => "SET",
        }
        .to_owned(),
        "TransactionStmt" => {
            use TransactionStmtKind as K;
            match K::try_from(int_field(f, "kind")) {
                Ok(K::TransStmtBegin) => "BEGIN",
                Ok(K::TransStmtStart) => "START TRANSACTION",
                Ok(K::TransStmtCommit) => "COMMIT",
                Ok(K::TransStmtRollback) => "ROLLBACK",
                Ok(K::TransStmtSavepoint) => "SAVEPOINT",
                Ok(K::TransStmtRelease) => "RELEASE",
                Ok(K::TransStmtRollbackTo) => "ROLLBACK TO SAVEPOINT",
                Ok(K::TransStmtPrepare) => "PREPARE TRANSACTION",
                Ok(K::TransStmtCommitPrepared) => "COMMIT PREPARED",
                Ok(K::TransStmtRollbackPrepared) => "ROLLBACK PREPARED",
                _ => "TRANSACTION",
            }
            .to_owned()
        }
        "VacuumStmt" if !bool_field(f, "is_vacuumcmd") => "ANALYZE".to_owned(),
        "FetchStmt" if bool_field(f, "ismove") => "MOVE".to_owned(),
        other => fixed_kind(other).map_or_else(|| words_of(other), str::to_owned),
    }
}

/// Kinds that depend on the node type alone.
fn fixed_kind(name: &str) -> Option<&'static str> {
    Some(match name {
        "SelectStmt" => "SELECT",
        "InsertStmt" => "INSERT",
        "UpdateStmt" => "UPDATE",
        "DeleteStmt" => "DELETE",
        "MergeStmt" => "MERGE",
        "CreateStmt" => "CREATE TABLE",
        "IndexStmt" => "CREATE INDEX",
        "ViewStmt" => "CREATE VIEW",
        "RuleStmt" => "CREATE RULE",
        "CreateFunctionStmt" => "CREATE FUNCTION",
        "CreatedbStmt" => "CREATE DATABASE",
        "DropdbStmt" => "DROP DATABASE",
        "AlterDatabaseStmt" | "AlterDatabaseSetStmt" | "AlterDatabaseRefreshCollStmt" => {
            "ALTER DATABASE"
        }
        "CreateTableSpaceStmt" => "CREATE TABLESPACE",
        "DropTableSpaceStmt" => "DROP TABLESPACE",
        "AlterTableSpaceOptionsStmt" => "ALTER TABLESPACE",
        "AlterTableMoveAllStmt" => "ALTER TABLE",
        "CreateTrigStmt" => "CREATE TRIGGER",
        "CreateEventTrigStmt" => "CREATE EVENT TRIGGER",
        "AlterEventTrigStmt" => "ALTER EVENT TRIGGER",
        "CreatePlangStmt" => "CREATE LANGUAGE",
        "CreateFdwStmt" => "CREATE FOREIGN DATA WRAPPER",
        "AlterFdwStmt" => "ALTER FOREIGN DATA WRAPPER",
        "CreateForeignServerStmt" => "CREATE SERVER",
        "AlterForeignServerStmt" => "ALTER SERVER",
        "CreateForeignTableStmt" => "CREATE FOREIGN TABLE",
        "CreateAmStmt" => "CREATE ACCESS METHOD",
        "CreateSeqStmt" => "CREATE SEQUENCE",
        "AlterSeqStmt" => "ALTER SEQUENCE",
        "CreateStatsStmt" => "CREATE STATISTICS",
        "AlterStatsStmt" => "ALTER STATISTICS",
        "CompositeTypeStmt" | "CreateEnumStmt" | "CreateRangeStmt" => "CREATE TYPE",
        "AlterEnumStmt" | "AlterTypeStmt" => "ALTER TYPE",
        "AlterFunctionStmt" => "ALTER FUNCTION",
        "AlterRoleStmt" | "AlterRoleSetStmt" => "ALTER ROLE",
        "DropRoleStmt" => "DROP ROLE",
        "AlterDefaultPrivilegesStmt" => "ALTER DEFAULT PRIVILEGES",
        "CreateUserMappingStmt" => "CREATE USER MAPPING",
        "AlterUserMappingStmt" => "ALTER USER MAPPING",
        "DropUserMappingStmt" => "DROP USER MAPPING",
        "AlterTsdictionaryStmt" => "ALTER TEXT SEARCH DICTIONARY",
        "AlterTsconfigurationStmt" => "ALTER TEXT SEARCH CONFIGURATION",
        "CreateOpClassStmt" => "CREATE OPERATOR CLASS",
        "CreateOpFamilyStmt" => "CREATE OPERATOR FAMILY",
        "AlterOpFamilyStmt" => "ALTER OPERATOR FAMILY",
        "DoStmt" => "DO",
        "CallStmt" => "CALL",
        "NotifyStmt" => "NOTIFY",
        "ListenStmt" => "LISTEN",
        "UnlistenStmt" => "UNLISTEN",
        "LoadStmt" => "LOAD",
        "VacuumStmt" => "VACUUM",
        "ClusterStmt" => "CLUSTER",
        "ReindexStmt" => "REINDEX",
        "CheckPointStmt" => "CHECKPOINT",
        "DiscardStmt" => "DISCARD",
        "LockStmt" => "LOCK TABLE",
        "ConstraintsSetStmt" => "SET CONSTRAINTS",
        "VariableShowStmt" => "SHOW",
        "PrepareStmt" => "PREPARE",
        "ExecuteStmt" => "EXECUTE",
        "DeallocateStmt" => "DEALLOCATE",
        "DeclareCursorStmt" => "DECLARE CURSOR",
        "ClosePortalStmt" => "CLOSE",
        "FetchStmt" => "FETCH",
        "TruncateStmt" => "TRUNCATE",
        "CommentStmt" => "COMMENT",
        "SecLabelStmt" => "SECURITY LABEL",
        "RefreshMatViewStmt" => "REFRESH MATERIALIZED VIEW",
        "AlterSystemStmt" => "ALTER SYSTEM",
        "ReassignOwnedStmt" => "REASSIGN OWNED",
        "DropOwnedStmt" => "DROP OWNED",
        "ImportForeignSchemaStmt" => "IMPORT FOREIGN SCHEMA",
        _ => return None,
    })
}

/// `CreateExtensionStmt` → `CREATE EXTENSION`: the fallback for node types without a
/// fixed kind (including any a future `pg_query` adds).
fn words_of(name: &str) -> String {
    let base = name.strip_suffix("Stmt").unwrap_or(name);
    let mut out = String::with_capacity(base.len() + 4);
    for (i, c) in base.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// `OBJECT_MATVIEW` → `MATERIALIZED VIEW`.
fn object_words(value: i32) -> String {
    let Ok(object) = ObjectType::try_from(value) else {
        return "OBJECT".to_owned();
    };
    let name = object.as_str_name();
    let base = name.strip_prefix("OBJECT_").unwrap_or(name);
    match base {
        "MATVIEW" => "MATERIALIZED VIEW",
        "FDW" => "FOREIGN DATA WRAPPER",
        "FOREIGN_SERVER" => "SERVER",
        "LARGEOBJECT" => "LARGE OBJECT",
        "OPCLASS" => "OPERATOR CLASS",
        "OPFAMILY" => "OPERATOR FAMILY",
        "STATISTIC_EXT" => "STATISTICS",
        "TABCONSTRAINT" | "DOMCONSTRAINT" => "CONSTRAINT",
        "TSCONFIGURATION" => "TEXT SEARCH CONFIGURATION",
        "TSDICTIONARY" => "TEXT SEARCH DICTIONARY",
        "TSPARSER" => "TEXT SEARCH PARSER",
        "TSTEMPLATE" => "TEXT SEARCH TEMPLATE",
        "DEFACL" => "DEFAULT PRIVILEGES",
        "AMOP" | "AMPROC" => "OPERATOR FAMILY",
        other => return other.replace('_', " "),
    }
    .to_owned()
}

/// Joins name parts with `.`, double-quoting any part that is not a plain lower-case
/// identifier, so `"a.b".c` and `a."b.c"` stay distinct.
fn qualified<'a>(parts: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::new();
    for part in parts.into_iter().filter(|p| !p.is_empty()) {
        if !out.is_empty() {
            out.push('.');
        }
        let mut bytes = part.bytes();
        let plain = matches!(bytes.next(), Some(b'a'..=b'z' | b'_'))
            && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'$'));
        if plain {
            out.push_str(part);
        } else {
            out.push('"');
            for c in part.chars() {
                if c == '"' {
                    out.push('"');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    out
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}
