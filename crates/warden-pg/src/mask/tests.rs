//! Unit tests of result masking: rule compilation, the catalog snapshot, and the session's
//! client/target state machine driven with hand-built frames (including hostile ones).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use warden_config::{MaskingPatternConfig, MaskingRuleConfig};
use warden_masking::lineage::{Clause, FunctionKind, Lineage, RuleId, Schema, Taint};
use warden_masking::{Detector, MaskKey, Masked, Strategy};
use warden_policy::statement::analyze_uncached;
use warden_wire::{
    DataRow, ErrorResponse, FieldDescription, Frame, Message, NoticeResponse, RowDescription,
    Severity, DEFAULT_MAX_MESSAGE_LEN,
};

use super::catalog::{Catalog, CatalogHandle, CatalogRows, RelationRow, FIRST_USER_OID};
use super::rules::{glob, MaskRules};
use super::{lock, rewrite, Action, ColPlan, Expect, Plan, SessionMask, TargetAction};

// ----- fixtures ---------------------------------------------------------------------------

const CUSTOMERS: u32 = 16_400;
const ORDERS: u32 = 16_410;
const V_CONTACTS: u32 = 16_600;
const V_CONTACTS2: u32 = 16_601;
const V_LEAK: u32 = 16_602;
const PG_STATS: u32 = 12_000;

const INT4: u32 = 23;
const INT8: u32 = 20;
const TEXT: u32 = 25;
const JSONB: u32 = 3802;

const EMAIL: RuleId = 0;
const SSN: RuleId = 1;
const BALANCE: RuleId = 2;
const PROFILE: RuleId = 3;
const CARDS: RuleId = 4;

fn key() -> MaskKey {
    MaskKey::new(vec![7u8; 32]).unwrap()
}

fn cfg(name: &str, strategy: &str) -> MaskingRuleConfig {
    MaskingRuleConfig {
        name: Some(name.into()),
        columns: Vec::new(),
        json_paths: Vec::new(),
        detectors: Vec::new(),
        patterns: Vec::new(),
        strategy: strategy.into(),
        keep_last: None,
        placeholder: None,
        exempt_groups: Vec::new(),
        strict: false,
        refuse_in: Vec::new(),
    }
}

fn with_columns(mut c: MaskingRuleConfig, columns: &[&str]) -> MaskingRuleConfig {
    c.columns = columns.iter().map(|s| s.to_string()).collect();
    c
}

/// The rules most tests use; their indexes are the `EMAIL`..`CARDS` constants.
fn main_rules() -> Vec<MaskingRuleConfig> {
    let email = with_columns(cfg("email", "redact"), &["public.customers.email"]);
    let mut ssn = with_columns(cfg("ssn", "hash"), &["public.customers.ssn"]);
    ssn.strict = true;
    ssn.refuse_in = vec!["where".into()];
    let balance = with_columns(cfg("balance", "redact"), &["public.customers.balance"]);
    let mut profile = cfg("profile", "redact");
    profile.json_paths = vec!["public.customers.profile:$.phone".into()];
    let mut cards = with_columns(cfg("cards", "redact"), &["public.customers.notes"]);
    cards.detectors = vec!["payment_card".into()];
    vec![email, ssn, balance, profile, cards]
}

fn rel(
    oid: u32,
    schema: &str,
    name: &str,
    cols: &[(&str, i16)],
    view: Option<&str>,
) -> RelationRow {
    RelationRow {
        oid,
        schema: schema.into(),
        name: name.into(),
        columns: cols.iter().map(|(c, _)| c.to_string()).collect(),
        attnums: cols.iter().map(|(_, a)| *a).collect(),
        view_def: view.map(str::to_owned),
    }
}

fn names(list: &[&str]) -> HashSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// `customers` has a dropped column (attnum 4), so attnums and positions differ.
fn main_rows() -> CatalogRows {
    CatalogRows {
        relations: vec![
            // Listed before the view it reads, so its taint needs a second pass.
            rel(
                V_CONTACTS2,
                "public",
                "v_contacts2",
                &[("contact", 1), ("id", 2)],
                Some("SELECT v_contacts.contact, v_contacts.id FROM v_contacts"),
            ),
            rel(
                CUSTOMERS,
                "public",
                "customers",
                &[
                    ("id", 1),
                    ("email", 2),
                    ("ssn", 3),
                    ("balance", 5),
                    ("profile", 6),
                    ("notes", 7),
                    ("name", 8),
                ],
                None,
            ),
            rel(
                ORDERS,
                "public",
                "orders",
                &[("id", 1), ("customer_id", 2), ("total", 3), ("note", 4)],
                None,
            ),
            rel(
                V_CONTACTS,
                "public",
                "v_contacts",
                &[("id", 1), ("contact", 2)],
                Some("SELECT customers.id, customers.email AS contact FROM customers"),
            ),
            rel(
                V_LEAK,
                "public",
                "v_leak",
                &[("x", 1), ("id", 2)],
                Some("SELECT leak(customers.id) AS x, customers.id FROM customers"),
            ),
            rel(
                PG_STATS,
                "pg_catalog",
                "pg_stats",
                &[("schemaname", 1), ("tablename", 2), ("most_common_vals", 3)],
                None,
            ),
        ],
        inherits: Vec::new(),
        builtin_functions: names(&[
            "lower",
            "upper",
            "length",
            "set_config",
            "query_to_xml",
            "now",
        ]),
        user_functions: names(&["leak", "upper"]),
    }
}

fn compile(cfgs: &[MaskingRuleConfig]) -> MaskRules {
    MaskRules::compile(cfgs, key()).expect("rules compile")
}

fn session_with(
    cfgs: &[MaskingRuleConfig],
    rows: CatalogRows,
    active: Option<Vec<bool>>,
) -> SessionMask {
    let rules = Arc::new(compile(cfgs));
    let catalog = Arc::new(Catalog::build(rows, &rules));
    let active = active.unwrap_or_else(|| vec![true; rules.rules.len()]);
    let handle = Arc::new(CatalogHandle::new(
        "127.0.0.1",
        1,
        "db",
        "u",
        None,
        rules,
        Duration::from_secs(1),
    ));
    SessionMask::new(handle, catalog, active)
}

fn session() -> SessionMask {
    session_with(&main_rules(), main_rows(), None)
}

fn taint(ids: &[RuleId]) -> Taint {
    Taint(ids.iter().copied().collect())
}

fn check(m: &SessionMask, sql: &str) -> Result<Arc<Vec<Lineage>>, String> {
    m.check(sql, &analyze_uncached(sql))
}

/// Checks `sql` (it must be allowed) and sends it as a simple Query.
fn query(m: &SessionMask, sql: &str) {
    let l = check(m, sql).unwrap_or_else(|e| panic!("{sql}: refused: {e}"));
    m.query_sent(l);
}

/// Checks `sql` (it must be allowed) and sends it as a Parse of `name`.
fn parse(m: &SessionMask, name: &str, sql: &str) {
    let l = check(m, sql).unwrap_or_else(|e| panic!("{sql}: refused: {e}"));
    m.parse_sent(name, &l);
}

fn field(name: &str, table_oid: u32, attr: i16, type_oid: u32, format: i16) -> FieldDescription {
    FieldDescription {
        name: name.into(),
        table_oid,
        column_attr: attr,
        type_oid,
        type_len: -1,
        type_modifier: -1,
        format,
    }
}

/// A RowDescription body (no header).
fn rd(fields: Vec<FieldDescription>) -> Vec<u8> {
    RowDescription::new(fields).unwrap().frame().body().to_vec()
}

/// A DataRow body (no header).
fn row(cols: &[Option<&[u8]>]) -> Vec<u8> {
    DataRow::new(cols.iter().copied())
        .unwrap()
        .frame()
        .body()
        .to_vec()
}

fn text_row(cols: &[Option<&str>]) -> Vec<u8> {
    let cols: Vec<Option<&[u8]>> = cols.iter().map(|c| c.map(str::as_bytes)).collect();
    row(&cols)
}

fn error_body(e: &ErrorResponse) -> Vec<u8> {
    e.encode()[5..].to_vec()
}

/// A Bind body: portal, statement, no parameters, default result formats.
fn bind_body(portal: &str, stmt: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(portal.as_bytes());
    b.push(0);
    b.extend_from_slice(stmt.as_bytes());
    b.push(0);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    b
}

/// A CopyOutResponse body: overall format and `width` columns of that format.
fn copy_out(format: u8, width: u16) -> Vec<u8> {
    let mut b = vec![format];
    b.extend_from_slice(&width.to_be_bytes());
    for _ in 0..width {
        b.extend_from_slice(&i16::from(format).to_be_bytes());
    }
    b
}

fn describe(a: &TargetAction) -> String {
    match a {
        TargetAction::Forward => "Forward".into(),
        TargetAction::Replace(b) => format!("Replace({b:?})"),
        TargetAction::Drop => "Drop".into(),
        TargetAction::Reload => "Reload".into(),
        TargetAction::Fail(why) => format!("Fail({why})"),
    }
}

#[track_caller]
fn forwarded(a: TargetAction) {
    assert!(matches!(a, TargetAction::Forward), "{}", describe(&a));
}

#[track_caller]
fn dropped(a: TargetAction) {
    assert!(matches!(a, TargetAction::Drop), "{}", describe(&a));
}

#[track_caller]
fn failed(a: TargetAction) {
    assert!(matches!(a, TargetAction::Fail(_)), "{}", describe(&a));
}

#[track_caller]
fn replaced(a: TargetAction) -> Bytes {
    match a {
        TargetAction::Replace(b) => b,
        other => panic!("expected Replace, got {}", describe(&other)),
    }
}

/// The raw bytes must hold exactly one frame whose length field is right.
#[track_caller]
fn frame_of(b: &Bytes) -> Frame {
    Frame::from_raw(b.clone(), DEFAULT_MAX_MESSAGE_LEN).expect("a well-formed frame")
}

#[track_caller]
fn values(b: &Bytes) -> Vec<Option<Vec<u8>>> {
    let row = DataRow::from_frame(&frame_of(b)).expect("a DataRow");
    row.columns().map(|c| c.map(<[u8]>::to_vec)).collect()
}

#[track_caller]
fn masked_row(a: TargetAction) -> Vec<Option<Vec<u8>>> {
    values(&replaced(a))
}

fn some(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

fn hash_of(v: &str) -> String {
    match Strategy::Hash.apply(v, &key()) {
        Masked::Text(s) => s,
        Masked::Null => panic!("hash gives text"),
    }
}

fn queue_len(m: &SessionMask) -> usize {
    lock(&m.queue).len()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

// ----- rules ------------------------------------------------------------------------------

#[test]
fn glob_edge_cases() {
    assert!(glob("*", ""));
    assert!(glob("**", ""));
    assert!(glob("**", "abc"));
    assert!(glob("a*", "a"));
    assert!(glob("*a", "a"));
    assert!(!glob("a*a", "a"));
    assert!(glob("a*a", "aa"));
    // Backtracking: the first `b` is not the one that has to match.
    assert!(glob("a*b", "axbyb"));
    assert!(!glob("a*b", "axby"));
    assert!(glob("*b*b*", "abcb"));
    assert!(!glob("*b*b*", "abc"));
    assert!(glob("a*b*c", "abbbc"));
    // Only `*` is special: `?`, `.`, `[` match themselves.
    assert!(glob("a?c", "a?c"));
    assert!(!glob("a?c", "abc"));
    assert!(!glob("a.c", "abc"));
    assert!(glob("[x]", "[x]"));
    // Case matters (catalog names are compared as stored).
    assert!(!glob("Customers", "customers"));
    // A pattern longer than the name.
    assert!(!glob("customers_2024", "customers"));
    // Multi-byte names match by bytes.
    assert!(glob("kund*", "kundé"));
    assert!(glob("*é", "kundé"));
    assert!(!glob("*é", "kunde"));
    // No blow-up on a pathological pattern.
    let long = "a".repeat(2000);
    assert!(!glob(&format!("{}b", "*a".repeat(50)), &long));
    assert!(glob(&"*a".repeat(50), &long));
}

#[test]
fn compile_every_strategy() {
    let mut partial_default = cfg("p4", "partial");
    partial_default.columns = vec!["*.*.a".into()];
    let mut partial_2 = partial_default.clone();
    partial_2.name = Some("p2".into());
    partial_2.keep_last = Some(2);
    let mut redact = cfg("r", "redact");
    redact.placeholder = Some("[hidden]".into());
    let rules = compile(&[
        redact,
        cfg("r0", "redact"),
        partial_default,
        partial_2,
        cfg("kd", "keep_domain"),
        cfg("h", "hash"),
        cfg("fp", "format_preserving"),
        cfg("n", "null"),
    ]);
    let strategies: Vec<&Strategy> = rules.rules.iter().map(|r| &r.strategy).collect();
    assert_eq!(
        strategies,
        vec![
            &Strategy::Redact {
                placeholder: Some("[hidden]".into())
            },
            &Strategy::Redact { placeholder: None },
            &Strategy::Partial { keep_last: 4 },
            &Strategy::Partial { keep_last: 2 },
            &Strategy::KeepDomain,
            &Strategy::Hash,
            &Strategy::FormatPreserving,
            &Strategy::Null,
        ]
    );
    assert_eq!(rules.rules[5].name, "h");
    // The key is the one given: hash tokens come out as under that key.
    assert_eq!(
        rules.rules[5].strategy.apply("x", &rules.key),
        Strategy::Hash.apply("x", &key())
    );
}

#[test]
fn compile_names_and_errors() {
    let mut unnamed = cfg("", "null");
    unnamed.name = None;
    let rules = compile(&[cfg("a", "null"), unnamed]);
    assert_eq!(rules.rules[1].name, "masking[1]");

    let err = |c: MaskingRuleConfig| MaskRules::compile(&[c], key()).err().expect("an error");
    let e = err(cfg("bad", "rot13"));
    assert!(e.contains("bad") && e.contains("rot13"), "{e}");

    let mut no_colon = cfg("j", "redact");
    no_colon.json_paths = vec!["public.t.doc".into()];
    let e = err(no_colon);
    assert!(e.contains("bad json path"), "{e}");

    let mut bad_path = cfg("j", "redact");
    bad_path.json_paths = vec!["public.t.doc:a.b".into()];
    let e = err(bad_path);
    assert!(e.starts_with("j: "), "{e}");

    let mut unknown_detector = cfg("d", "redact");
    unknown_detector.detectors = vec!["tax_id".into()];
    let e = err(unknown_detector);
    assert!(e.contains("tax_id"), "{e}");

    let mut bad_regex = cfg("d", "redact");
    bad_regex.detectors = vec!["emp".into()];
    bad_regex.patterns = vec![MaskingPatternConfig {
        name: "emp".into(),
        regex: "EMP-(".into(),
    }];
    let e = err(bad_regex);
    assert!(e.starts_with("d: "), "{e}");
}

#[test]
fn compile_detectors_json_and_refuse_in() {
    let mut d = cfg("d", "partial");
    d.columns = vec!["public.notes.body".into()];
    d.detectors = vec![
        "email",
        "payment_card",
        "us_ssn",
        "phone",
        "iban",
        "ipv4",
        "ipv6",
        "jwt",
        "api_key",
        "emp",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    d.patterns = vec![MaskingPatternConfig {
        name: "emp".into(),
        regex: r"EMP-\d{6}".into(),
    }];
    d.refuse_in = vec![
        "where".into(),
        "join".into(),
        "group_by".into(),
        "order_by".into(),
        "select".into(),
    ];
    let mut j = cfg("j", "redact");
    j.json_paths = vec!["app.users.doc:$.a.b".into(), "*.*.meta:$..ssn".into()];
    let rules = compile(&[d, j]);
    let scanner = rules.rules[0].scanner.as_ref().expect("a scanner");
    let scanned: Vec<&str> = scanner.rules().iter().map(|r| r.name.as_str()).collect();
    assert_eq!(scanned.len(), 10);
    assert_eq!(scanned[0], "d:email");
    assert_eq!(scanned[9], "d:emp");
    assert!(matches!(scanner.rules()[1].detector, Detector::PaymentCard));
    assert!(matches!(scanner.rules()[9].detector, Detector::Custom(_)));
    // Each detector masks with the rule's strategy.
    assert!(scanner
        .rules()
        .iter()
        .all(|r| r.strategy == Strategy::Partial { keep_last: 4 }));
    // The custom detector works.
    let (out, _) = scanner
        .mask_text("id EMP-123456 ok", &key())
        .expect("a match");
    assert!(!out.contains("123456"), "{out}");
    // Unknown clause names are ignored rather than refused.
    assert_eq!(
        rules.rules[0].refuse_in,
        vec![
            Clause::Where,
            Clause::Join,
            Clause::GroupBy,
            Clause::OrderBy
        ]
    );
    assert!(!rules.rules[0].is_column_rule());
    assert!(!rules.rules[0].scans_everything());
    // JSON paths split at the first colon into a three-part pattern and a path.
    assert_eq!(rules.rules[1].json.len(), 2);
    assert_eq!(
        rules.rules[1].json[0].0,
        ["app".to_string(), "users".into(), "doc".into()]
    );
    assert!(!rules.rules[1].is_column_rule());
}

#[test]
fn column_patterns_split_into_three_parts() {
    let rules = compile(&[
        with_columns(cfg("a", "redact"), &["s.t"]),
        with_columns(cfg("b", "redact"), &["s.t.c.d"]),
    ]);
    assert_eq!(
        rules.rules[0].columns[0],
        ["s".to_string(), "t".into(), String::new()]
    );
    // The third part keeps any further dots (never matches a column name with none).
    assert_eq!(rules.rules[1].columns[0][2], "c.d");
    assert!(rules.column_taint("s", "t", "c").is_empty());
    // `s.t` names no column: an empty pattern matches only an empty name.
    assert!(rules.column_taint("s", "t", "x").is_empty());
}

#[test]
fn too_many_rules_are_refused() {
    let many = vec![cfg("r", "null"); usize::from(RuleId::MAX) + 1];
    let e = MaskRules::compile(&many, key()).err().expect("refused");
    assert!(e.contains("too many"), "{e}");
    let most = vec![cfg("r", "null"); usize::from(RuleId::MAX)];
    assert_eq!(
        MaskRules::compile(&most, key()).unwrap().rules.len(),
        65_535
    );
}

#[test]
fn active_for_honours_exempt_groups() {
    let mut a = with_columns(cfg("a", "redact"), &["*.*.email"]);
    a.exempt_groups = vec!["support".into(), "admins".into()];
    let mut b = with_columns(cfg("b", "redact"), &["*.*.ssn"]);
    b.exempt_groups = vec!["admins".into()];
    let c = with_columns(cfg("c", "redact"), &["*.*.card"]);
    let rules = compile(&[a, b, c]);
    let who = |groups: &[&str]| warden_types::Identity {
        subject: "alice".into(),
        display_name: "Alice".into(),
        issuer: "warden".into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        kind: warden_types::CredentialKind::Builtin,
        actor: None,
        token_id: None,
        expires_at: None,
    };
    assert_eq!(rules.active_for(&who(&[])), vec![true, true, true]);
    assert_eq!(
        rules.active_for(&who(&["dev", "support"])),
        vec![false, true, true]
    );
    assert_eq!(
        rules.active_for(&who(&["admins"])),
        vec![false, false, true]
    );
    // Group names match exactly.
    assert_eq!(
        rules.active_for(&who(&["admin", "Support"])),
        vec![true, true, true]
    );
}

#[test]
fn column_taint_and_scan_scope() {
    let mut det = with_columns(cfg("det", "redact"), &["public.notes.*"]);
    det.detectors = vec!["email".into()];
    let mut everywhere = with_columns(cfg("all", "redact"), &["*.*.*"]);
    everywhere.detectors = vec!["payment_card".into()];
    let mut json = cfg("json", "redact");
    json.json_paths = vec!["*.*.doc:$.a".into()];
    let rules = compile(&[
        with_columns(cfg("email", "redact"), &["*.*.email", "hr.staff.mail"]),
        with_columns(cfg("pii", "hash"), &["public.cust*.s*n", "*.*.email"]),
        det,
        everywhere,
        json,
    ]);
    assert_eq!(
        rules.column_taint("public", "customers", "email"),
        vec![0, 1]
    );
    assert_eq!(rules.column_taint("crm", "leads", "email"), vec![0, 1]);
    assert_eq!(rules.column_taint("hr", "staff", "mail"), vec![0]);
    assert_eq!(rules.column_taint("public", "customers", "ssn"), vec![1]);
    assert_eq!(rules.column_taint("public", "customers", "sn"), vec![1]);
    assert_eq!(
        rules.column_taint("public", "orders", "ssn"),
        Vec::<RuleId>::new()
    );
    assert_eq!(
        rules.column_taint("public", "customers", "emails"),
        Vec::<RuleId>::new()
    );
    // Detector rules never taint a column; JSON-path rules do.
    assert_eq!(
        rules.column_taint("public", "notes", "body"),
        Vec::<RuleId>::new()
    );
    assert_eq!(rules.column_taint("x", "y", "doc"), vec![4]);
    // Scan scope: detector rules only.
    assert_eq!(rules.scan_scope("public", "notes", "body"), vec![2, 3]);
    assert_eq!(rules.scan_scope("public", "customers", "email"), vec![3]);
    assert!(rules.rules[3].scans_everything());
    assert!(!rules.rules[2].scans_everything());
    assert!(rules.rules[0].is_column_rule());
}

// ----- catalog ----------------------------------------------------------------------------

fn main_catalog() -> (MaskRules, Catalog) {
    let rules = compile(&main_rules());
    let catalog = Catalog::build(main_rows(), &rules);
    (rules, catalog)
}

#[test]
fn catalog_taints_table_columns_by_pattern() {
    let rules = compile(&[
        with_columns(cfg("e", "redact"), &["public.cust*.e*"]),
        with_columns(cfg("b", "redact"), &["public.customers.balance"]),
    ]);
    let c = Catalog::build(main_rows(), &rules);
    assert_eq!(c.origin(CUSTOMERS, 2), Some(&taint(&[0])));
    // By attnum, not position: balance is the 4th column but attnum 5.
    assert_eq!(c.origin(CUSTOMERS, 5), Some(&taint(&[1])));
    assert_eq!(c.origin(CUSTOMERS, 4), None);
    assert_eq!(c.origin(CUSTOMERS, 1), None);
    assert_eq!(c.origin(ORDERS, 4), None);
    // The view over customers.email carries its rule under its own name.
    assert_eq!(c.origin(V_CONTACTS, 2), Some(&taint(&[0])));
    assert!(c.knows(CUSTOMERS) && c.knows(ORDERS));
    assert!(c.knows(1259), "built-in relations are always known");
    assert!(!c.knows(FIRST_USER_OID + 99_999));
}

#[test]
fn partitions_and_inheritance_children_take_their_ancestors_rules() {
    let rules = compile(&[
        with_columns(cfg("e", "redact"), &["public.events.email"]),
        with_columns(cfg("m", "redact"), &["public.events_2024.meta"]),
    ]);
    let rows = CatalogRows {
        relations: vec![
            rel(
                20_002,
                "public",
                "events_2024_q1",
                &[("email", 3), ("meta", 4)],
                None,
            ),
            rel(20_000, "public", "events", &[("id", 1), ("email", 2)], None),
            rel(
                20_001,
                "public",
                "events_2024",
                &[("email", 1), ("meta", 2)],
                None,
            ),
            rel(20_003, "public", "unrelated", &[("email", 1)], None),
        ],
        // A cycle must not loop forever.
        inherits: vec![(20_001, 20_000), (20_002, 20_001), (20_000, 20_002)],
        ..CatalogRows::default()
    };
    let c = Catalog::build(rows, &rules);
    assert_eq!(c.origin(20_000, 2), Some(&taint(&[0])));
    assert_eq!(c.origin(20_001, 1), Some(&taint(&[0])));
    assert_eq!(c.origin(20_001, 2), Some(&taint(&[1])));
    // The grandchild: both ancestors' rules, at its own attnums.
    assert_eq!(c.origin(20_002, 3), Some(&taint(&[0])));
    assert_eq!(c.origin(20_002, 4), Some(&taint(&[1])));
    assert_eq!(c.origin(20_003, 1), None);
}

#[test]
fn views_carry_the_taint_of_what_they_select() {
    let (_, c) = main_catalog();
    assert_eq!(c.origin(V_CONTACTS, 1), None);
    assert_eq!(c.origin(V_CONTACTS, 2), Some(&taint(&[EMAIL])));
    // A view over that view, listed before it.
    assert_eq!(c.origin(V_CONTACTS2, 1), Some(&taint(&[EMAIL])));
    assert_eq!(c.origin(V_CONTACTS2, 2), None);
    // And a query over the view is tainted through it.
    let l = c.lineage("SELECT upper(contact) FROM v_contacts2");
    assert!(l[0].refusal.is_some(), "upper is also a user function here");
    let l = c.lineage("SELECT lower(contact) FROM v_contacts2");
    assert!(l[0].touches.0.contains(&EMAIL));
}

#[test]
fn a_view_calling_an_opaque_function_is_masked_whole() {
    let (rules, c) = main_catalog();
    let column_rules: Taint = Taint(
        rules
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.is_column_rule())
            .map(|(i, _)| i as RuleId)
            .collect(),
    );
    assert_eq!(column_rules, taint(&[EMAIL, SSN, BALANCE]));
    assert_eq!(c.origin(V_LEAK, 1), Some(&column_rules));
    // Even the column that is a plain id.
    assert_eq!(c.origin(V_LEAK, 2), Some(&column_rules));
}

#[test]
fn a_view_whose_definition_does_not_parse_is_masked_whole() {
    // The target printed the definition, so it runs there: a parser that cannot read it
    // (a newer grammar, say) must not make the view look harmless.
    let rules = compile(&[
        with_columns(cfg("e", "redact"), &["*.*.email"]),
        with_columns(cfg("s", "redact"), &["*.*.ssn"]),
    ]);
    let rows = CatalogRows {
        relations: vec![
            rel(
                20_100,
                "public",
                "weird",
                &[("a", 1), ("b", 2)],
                Some("SELEKT email FROM t"),
            ),
            rel(20_101, "public", "fine", &[("a", 1)], Some("SELECT 1 AS a")),
        ],
        ..CatalogRows::default()
    };
    let c = Catalog::build(rows, &rules);
    assert_eq!(c.origin(20_100, 1), Some(&taint(&[0, 1])));
    assert_eq!(c.origin(20_100, 2), Some(&taint(&[0, 1])));
    assert_eq!(c.origin(20_101, 1), None);
}

#[test]
fn value_holding_catalogs_are_tainted_by_every_column_rule() {
    let mut det = with_columns(cfg("det", "redact"), &["*.*.*"]);
    det.detectors = vec!["email".into()];
    let mut json = cfg("json", "redact");
    json.json_paths = vec!["*.*.doc:$.a".into()];
    let rules = compile(&[
        with_columns(cfg("e", "redact"), &["public.customers.email"]),
        det,
        with_columns(cfg("s", "hash"), &["public.customers.ssn"]),
        json,
    ]);
    let cols = [("schemaname", 1), ("most_common_vals", 2)];
    let rows = CatalogRows {
        relations: vec![
            rel(PG_STATS, "pg_catalog", "pg_stats", &cols, None),
            rel(
                12_001,
                "pg_catalog",
                "pg_stat_activity",
                &[("query", 1)],
                None,
            ),
            // A user relation of that name also counts (it shadows the system view).
            rel(20_200, "public", "pg_stats", &cols, None),
            // A built-in OID outside pg_catalog does not.
            rel(12_002, "information_schema", "pg_stats", &cols, None),
            rel(12_003, "pg_catalog", "pg_class", &[("relname", 1)], None),
        ],
        ..CatalogRows::default()
    };
    let c = Catalog::build(rows, &rules);
    let every = taint(&[0, 2]);
    assert_eq!(c.origin(PG_STATS, 1), Some(&every));
    assert_eq!(c.origin(PG_STATS, 2), Some(&every));
    assert_eq!(c.origin(12_001, 1), Some(&every));
    assert_eq!(c.origin(20_200, 2), Some(&every));
    assert_eq!(c.origin(12_002, 2), None);
    assert_eq!(c.origin(12_003, 1), None);
}

#[test]
fn schema_lookups_and_function_classification() {
    let (_, c) = main_catalog();
    let found = c.relations(Some("public"), "customers");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].columns.len(), 7);
    assert_eq!(found[0].columns[1].taint, taint(&[EMAIL]));
    assert_eq!(c.relations(None, "customers").len(), 1);
    assert!(c.relations(Some("other"), "customers").is_empty());
    assert!(c.relations(None, "nope").is_empty());

    assert_eq!(c.function(Some("pg_catalog"), "lower"), FunctionKind::Pure);
    assert_eq!(c.function(None, "lower"), FunctionKind::Pure);
    assert_eq!(
        c.function(Some("pg_catalog"), "set_config"),
        FunctionKind::Sink
    );
    assert_eq!(c.function(None, "set_config"), FunctionKind::Sink);
    assert_eq!(
        c.function(Some("pg_catalog"), "query_to_xml"),
        FunctionKind::Opaque
    );
    assert_eq!(c.function(None, "query_to_xml"), FunctionKind::Opaque);
    // A user function, unqualified: opaque (even one shadowing a built-in name).
    assert_eq!(c.function(None, "leak"), FunctionKind::Opaque);
    assert_eq!(c.function(None, "upper"), FunctionKind::Opaque);
    // Qualified outside pg_catalog: opaque whatever the name.
    assert_eq!(c.function(Some("public"), "lower"), FunctionKind::Opaque);
    assert_eq!(c.function(Some("public"), "nope"), FunctionKind::Opaque);
    // Qualified with pg_catalog: the built-in even if a user function has the name.
    assert_eq!(c.function(Some("pg_catalog"), "upper"), FunctionKind::Pure);
    // Unknown everywhere: the target refuses it.
    assert_eq!(c.function(None, "nope"), FunctionKind::Pure);
}

#[test]
fn json_paths_and_scans_by_origin() {
    let (_, c) = main_catalog();
    let paths = c.json_paths(CUSTOMERS, 6);
    assert_eq!(paths.len(), 1);
    assert_eq!(paths[0].0, PROFILE);
    assert!(c.json_paths(CUSTOMERS, 2).is_empty());
    assert_eq!(c.origin(CUSTOMERS, 6), Some(&taint(&[PROFILE])));
    assert_eq!(c.scans(CUSTOMERS, 7), &[CARDS]);
    assert!(c.scans(CUSTOMERS, 8).is_empty());
    // A detector rule taints nothing.
    assert_eq!(c.origin(CUSTOMERS, 7), None);
    // Rules that scan everything are not listed per column.
    let mut all = with_columns(cfg("all", "redact"), &["*.*.*"]);
    all.detectors = vec!["email".into()];
    let rules = compile(&[all]);
    let c = Catalog::build(main_rows(), &rules);
    assert!(c.scans(CUSTOMERS, 7).is_empty());
}

#[test]
fn lineage_is_cached_per_snapshot() {
    let (_, c) = main_catalog();
    let a = c.lineage("SELECT email FROM customers");
    let b = c.lineage("SELECT email FROM customers");
    assert!(Arc::ptr_eq(&a, &b));
    let other = c.lineage("SELECT id FROM customers");
    assert!(!Arc::ptr_eq(&a, &other));
    assert_eq!(a[0].touches, taint(&[EMAIL]));
    assert_eq!(other[0].touches, Taint::none());
}

// ----- check ------------------------------------------------------------------------------

#[tokio::test]
async fn check_refuses_strict_derived_expressions() {
    let m = session();
    let e = check(&m, "SELECT lower(ssn) FROM customers").unwrap_err();
    assert!(e.contains("strict") && e.contains("ssn"), "{e}");
    check(&m, "SELECT ssn FROM customers").unwrap();
    check(&m, "SELECT lower(email) FROM customers").unwrap();
    // The identity is exempt from the strict rule: allowed.
    let m = session_with(
        &main_rules(),
        main_rows(),
        Some(vec![true, false, true, true, true]),
    );
    check(&m, "SELECT lower(ssn) FROM customers").unwrap();
}

#[tokio::test]
async fn check_refuses_masked_columns_in_refused_clauses() {
    let m = session();
    let e = check(&m, "SELECT id FROM customers WHERE ssn = '123-45-6789'").unwrap_err();
    assert!(e.contains("WHERE/HAVING") && e.contains("ssn"), "{e}");
    // Only `where` is refused for ssn; email refuses nothing.
    check(&m, "SELECT id FROM customers ORDER BY ssn").unwrap();
    check(&m, "SELECT id FROM customers WHERE email = 'a@example.com'").unwrap();
    let m = session_with(
        &main_rules(),
        main_rows(),
        Some(vec![true, false, true, true, true]),
    );
    check(&m, "SELECT id FROM customers WHERE ssn = '1'").unwrap();
}

#[tokio::test]
async fn check_passes_on_the_analysers_refusals() {
    let m = session();
    let e = check(&m, "INSERT INTO orders (id) SELECT email FROM customers").unwrap_err();
    assert!(e.contains("INSERT"), "{e}");
    assert!(e.ends_with("(this connection masks columns)"), "{e}");
    let e = check(&m, "SELECT leak(id) FROM customers").unwrap_err();
    assert!(e.contains("leak"), "{e}");
    // Any statement of a text refuses the whole text.
    check(&m, "SELECT 1; COPY (SELECT email FROM customers) TO STDOUT").unwrap_err();
    check(&m, "SELECT id FROM orders").unwrap();
}

#[tokio::test]
async fn sql_execute_is_refused_while_named_masked_statements_exist() {
    let m = session();
    check(&m, "EXECUTE s1").unwrap();
    check(&m, "FETCH 1 FROM p1").unwrap();
    // The unnamed statement does not count (SQL EXECUTE cannot name it).
    parse(&m, "", "SELECT email FROM customers");
    check(&m, "EXECUTE s1").unwrap();
    // A named statement over unmasked columns does not either.
    parse(&m, "plain", "SELECT id FROM orders");
    check(&m, "EXECUTE plain").unwrap();
    parse(&m, "s1", "SELECT email FROM customers");
    let e = check(&m, "EXECUTE s1").unwrap_err();
    assert!(e.contains("EXECUTE"), "{e}");
    check(&m, "FETCH 1 FROM p1").unwrap_err();
    // Closing it lifts the refusal.
    m.close_sent(b"Ss1\0");
    check(&m, "EXECUTE s1").unwrap();
    // A named portal of an unknown statement counts as masked (failing closed).
    m.bind_sent(&bind_body("p1", "never-parsed"));
    check(&m, "FETCH 1 FROM p1").unwrap_err();
    m.close_sent(b"Pp1\0");
    check(&m, "FETCH 1 FROM p1").unwrap();
}

// ----- simple query flow ------------------------------------------------------------------

#[tokio::test]
async fn simple_query_masks_columns_by_origin() {
    let m = session();
    query(&m, "SELECT id, email, ssn FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("id", CUSTOMERS, 1, INT4, 0),
            field("email", CUSTOMERS, 2, TEXT, 0),
            field("ssn", CUSTOMERS, 3, TEXT, 0),
        ]),
    ));
    let r1 = masked_row(m.target_frame(
        b'D',
        &text_row(&[Some("1"), Some("alice@example.com"), Some("123-45-6789")]),
    ));
    assert_eq!(r1[0], some("1"));
    assert_eq!(r1[1], some("****"));
    let tok = String::from_utf8(r1[2].clone().unwrap()).unwrap();
    assert!(tok.starts_with("tok_"), "{tok}");
    assert_eq!(tok, hash_of("123-45-6789"));
    // Equal inputs give equal tokens; other inputs other tokens.
    let r2 = masked_row(m.target_frame(
        b'D',
        &text_row(&[Some("2"), Some("bob@example.com"), Some("123-45-6789")]),
    ));
    assert_eq!(r2[2], r1[2]);
    let r3 = masked_row(m.target_frame(b'D', &text_row(&[Some("3"), None, Some("987-65-4321")])));
    assert_ne!(r3[2], r1[2]);
    // NULL stays NULL (and is not a masked value).
    assert_eq!(r3[1], None);
    forwarded(m.target_frame(b'C', b"SELECT 3\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
    assert_eq!(
        m.take_counts(),
        vec![("email".to_string(), 2), ("ssn".to_string(), 3)]
    );
    assert!(m.take_counts().is_empty());
}

#[tokio::test]
async fn expression_columns_are_masked_through_the_lineage() {
    let m = session();
    query(&m, "SELECT lower(email), id + 1 FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("lower", 0, 0, TEXT, 0),
            field("?column?", 0, 0, INT4, 0),
        ]),
    ));
    let r = masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com"), Some("2")])));
    assert_eq!(r, vec![some("****"), some("2")]);
    // Without masked input an expression column passes.
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    query(&m, "SELECT lower(name) FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("lower", 0, 0, TEXT, 0)])));
    forwarded(m.target_frame(b'D', &text_row(&[Some("alice")])));
}

#[tokio::test]
async fn each_statement_of_a_query_text_uses_its_own_lineage() {
    let m = session();
    query(
        &m,
        "SELECT lower(name) FROM customers; SELECT lower(email) FROM customers",
    );
    let t = rd(vec![field("lower", 0, 0, TEXT, 0)]);
    forwarded(m.target_frame(b'T', &t));
    forwarded(m.target_frame(b'D', &text_row(&[Some("alice")])));
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'T', &t));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![some("****")]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn a_masked_column_of_a_non_text_type_becomes_null() {
    let m = session();
    query(&m, "SELECT balance FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("balance", CUSTOMERS, 5, INT8, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("1000")]))),
        vec![None]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    // Binary format too.
    query(&m, "SELECT balance FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("balance", CUSTOMERS, 5, INT8, 1)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &row(&[Some(&1000i64.to_be_bytes()[..])]))),
        vec![None]
    );
    assert_eq!(m.take_counts(), vec![("balance".to_string(), 2)]);
}

#[tokio::test]
async fn binary_text_columns_are_masked_as_text() {
    let m = session();
    query(&m, "SELECT email, name FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("email", CUSTOMERS, 2, TEXT, 1),
            field("name", CUSTOMERS, 8, TEXT, 1),
        ]),
    ));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com"), Some("Al")]))),
        vec![some("****"), some("Al")]
    );
    // Bytes that are not UTF-8 are masked all the same (redaction does not read them).
    assert_eq!(
        masked_row(m.target_frame(b'D', &row(&[Some(&b"\xff\xfe"[..]), Some(&b"Al"[..])]))),
        vec![some("****"), some("Al")]
    );
}

#[tokio::test]
async fn jsonb_paths_are_masked_in_both_formats() {
    let m = session();
    query(&m, "SELECT profile FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("profile", CUSTOMERS, 6, JSONB, 1)])));
    let mut v = vec![1u8];
    v.extend_from_slice(br#"{"phone": "555-1234", "city": "Oslo"}"#);
    let out = masked_row(m.target_frame(b'D', &row(&[Some(&v[..])])));
    let out = out[0].clone().expect("not NULL");
    assert_eq!(out[0], 1, "the jsonb version byte stays");
    let doc: serde_json::Value = serde_json::from_slice(&out[1..]).unwrap();
    assert_eq!(doc["phone"], "****");
    assert_eq!(doc["city"], "Oslo");
    // A version the gateway does not know: withheld whole.
    let mut v2 = vec![2u8];
    v2.extend_from_slice(br#"{"phone": "555-1234"}"#);
    assert_eq!(
        masked_row(m.target_frame(b'D', &row(&[Some(&v2[..])]))),
        vec![None]
    );
    // Not JSON at all: withheld whole.
    assert_eq!(
        masked_row(m.target_frame(b'D', &row(&[Some(&b"\x01{not json"[..])]))),
        vec![None]
    );
    forwarded(m.target_frame(b'C', b"SELECT 3\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    // Text format.
    query(&m, "SELECT profile FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("profile", CUSTOMERS, 6, JSONB, 0)])));
    let out = masked_row(m.target_frame(
        b'D',
        &text_row(&[Some(r#"{"phone": "555-1234", "city": "Oslo"}"#)]),
    ));
    let doc: serde_json::Value = serde_json::from_slice(out[0].as_deref().unwrap()).unwrap();
    assert_eq!(doc["phone"], "****");
    assert_eq!(doc["city"], "Oslo");
    // A value extracted from the document: masked whole.
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    query(&m, "SELECT profile->>'phone' FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("?column?", 0, 0, TEXT, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("555-1234")]))),
        vec![some("****")]
    );
}

#[tokio::test]
async fn detector_rules_scan_only_their_columns() {
    let m = session();
    query(&m, "SELECT notes FROM customers");
    forwarded(m.target_frame(b'T', &rd(vec![field("notes", CUSTOMERS, 7, TEXT, 0)])));
    let out =
        masked_row(m.target_frame(b'D', &text_row(&[Some("card 4111 1111 1111 1111 on file")])));
    let out = String::from_utf8(out[0].clone().unwrap()).unwrap();
    assert!(!out.contains("4111 1111"), "{out}");
    assert!(
        out.starts_with("card ") && out.ends_with(" on file"),
        "{out}"
    );
    // Nothing found: the row passes unchanged.
    forwarded(m.target_frame(b'D', &text_row(&[Some("no card here")])));
    forwarded(m.target_frame(b'C', b"SELECT 2\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(m.take_counts(), vec![("cards".to_string(), 1)]);
    // A plain column outside the rule's scope is not scanned.
    query(&m, "SELECT note FROM orders");
    forwarded(m.target_frame(b'T', &rd(vec![field("note", ORDERS, 4, TEXT, 0)])));
    forwarded(m.target_frame(b'D', &text_row(&[Some("card 4111 1111 1111 1111 on file")])));
}

#[tokio::test]
async fn value_holding_catalog_rows_are_masked() {
    let m = session();
    query(&m, "SELECT most_common_vals FROM pg_stats");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![field("most_common_vals", PG_STATS, 3, TEXT, 0)]),
    ));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("{alice@example.com}")]))),
        vec![some("****")]
    );
}

#[tokio::test]
async fn rows_nobody_described_are_withheld() {
    let m = session();
    query(&m, "SELECT id FROM orders");
    // No RowDescription: every value of the row is withheld.
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("a"), None, Some("c")]))),
        vec![None, None, None]
    );
}

#[tokio::test]
async fn unknown_user_relations_ask_for_one_reload() {
    let m = session();
    query(&m, "SELECT * FROM fresh");
    let t = rd(vec![field("a", 17_000, 1, TEXT, 0)]);
    assert!(matches!(m.target_frame(b'T', &t), TargetAction::Reload));
    // The same OID again (the reload did not find it): no second reload.
    forwarded(m.target_frame(b'T', &t));
    // Known relations and built-ins never reload.
    let t = rd(vec![
        field("relname", 1259, 2, 19, 0),
        field("id", CUSTOMERS, 1, INT4, 0),
    ]);
    forwarded(m.target_frame(b'T', &t));
    // Another unknown OID: one reload for it.
    let t = rd(vec![field("a", 17_001, 1, TEXT, 0)]);
    assert!(matches!(m.target_frame(b'T', &t), TargetAction::Reload));
    forwarded(m.target_frame(b'T', &t));
    // An expression column (origin 0) names no relation.
    forwarded(m.target_frame(b'T', &rd(vec![field("x", 17_002, 0, TEXT, 0)])));
}

// ----- errors and notices -----------------------------------------------------------------

fn leaky_error() -> ErrorResponse {
    ErrorResponse::new(
        Severity::Error,
        "22P02",
        "invalid input syntax for type integer: \"alice@example.com\"",
    )
    .with_detail("Key (email)=(alice@example.com) already exists.")
    .with_hint("alice@example.com")
    .with_field(b'P', "8")
    .with_field(b'W', "SQL function leak: alice@example.com")
    .with_field(b'c', "email")
}

#[track_caller]
fn assert_scrubbed(b: &Bytes, sqlstate: &str) {
    assert!(!contains(b, b"alice"), "{b:?}");
    let e = ErrorResponse::from_frame(&frame_of(b)).expect("an ErrorResponse");
    assert_eq!(e.sqlstate(), Some(sqlstate));
    assert_eq!(e.severity_level(), Some(Severity::Error));
    assert!(
        e.message().is_some_and(|m| m.contains("Warden withheld")),
        "{e:?}"
    );
    assert_eq!(e.detail(), None);
    assert_eq!(e.hint(), None);
}

#[tokio::test]
async fn errors_of_masked_statements_lose_their_text() {
    let m = session();
    query(&m, "SELECT email::int FROM customers");
    let b = replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    assert_scrubbed(&b, "22P02");
    let e = ErrorResponse::from_frame(&frame_of(&b)).unwrap();
    assert_eq!(e.get(b'P'), Some("8"), "the position stays");
    assert_eq!(e.get(b'W'), None);
    assert_eq!(e.get(b'c'), None);
    forwarded(m.target_frame(b'Z', b"I"));
    // Notices too.
    query(&m, "SELECT email FROM customers");
    let n = NoticeResponse::new(Severity::Notice, "00000", "saw alice@example.com")
        .with_detail("alice@example.com");
    let b = replaced(m.target_frame(b'N', &n.encode()[5..]));
    assert!(!contains(&b, b"alice"), "{b:?}");
    let n = NoticeResponse::from_frame(&frame_of(&b)).expect("a NoticeResponse");
    assert_eq!(n.sqlstate(), Some("00000"));
    assert!(n.message().unwrap().contains("notice's"));
    forwarded(m.target_frame(b'C', b"SELECT 0\0"));
    forwarded(m.target_frame(b'Z', b"I"));
}

#[tokio::test]
async fn errors_of_untouched_statements_pass_unchanged() {
    let m = session();
    query(&m, "SELECT id::text::int FROM orders");
    forwarded(m.target_frame(b'E', &error_body(&leaky_error())));
    forwarded(m.target_frame(b'Z', b"I"));
    // With nothing in flight (an asynchronous notice) too.
    forwarded(m.target_frame(
        b'N',
        &NoticeResponse::new(Severity::Notice, "00000", "hi").encode()[5..],
    ));
}

#[tokio::test]
async fn unreadable_errors_of_masked_statements_are_not_forwarded() {
    let m = session();
    query(&m, "SELECT email FROM customers");
    for garbage in [
        &b"Msecret alice@example.com"[..],
        b"",
        b"C22P02\0Malice@example.com\0",
        b"\0trailing alice@example.com",
    ] {
        let a = m.target_frame(b'E', garbage);
        let b = replaced(a);
        assert!(!contains(&b, b"alice"), "{b:?}");
        let e = ErrorResponse::from_frame(&frame_of(&b)).expect("an ErrorResponse");
        assert_eq!(e.severity_level(), Some(Severity::Error));
        assert!(e.sqlstate().is_some());
        // An unreadable notice is dropped.
        dropped(m.target_frame(b'N', garbage));
    }
    forwarded(m.target_frame(b'Z', b"I"));
    // For an untouched statement there is nothing to protect.
    query(&m, "SELECT id FROM orders");
    forwarded(m.target_frame(b'E', b"Mnot terminated"));
}

#[test]
fn scrub_error_keeps_only_severity_code_and_position() {
    let b = super::scrub_error(b'E', &error_body(&leaky_error())).expect("readable");
    let e = ErrorResponse::from_frame(&frame_of(&b)).unwrap();
    let codes: Vec<u8> = e.iter().map(|(c, _)| c).collect();
    assert_eq!(codes, vec![b'S', b'V', b'C', b'M', b'P']);
    assert!(e.message().unwrap().contains("SQLSTATE 22P02"));
    // No SQLSTATE in the original: still no text.
    let raw = b"SERROR\0Msecret\0\0";
    let b = super::scrub_error(b'E', raw).unwrap();
    assert!(!contains(&b, b"secret"));
    assert!(ErrorResponse::from_frame(&frame_of(&b))
        .unwrap()
        .message()
        .unwrap()
        .contains('?'));
    for bad in [&b""[..], b"S", b"SERROR", b"SERROR\0", b"SERROR\0\0junk"] {
        assert!(super::scrub_error(b'E', bad).is_none(), "{bad:?}");
        assert!(super::scrub_error(b'N', bad).is_none(), "{bad:?}");
    }
}

#[test]
fn scrub_error_keeps_kept_fields_only_in_their_usual_shape() {
    // A lost NUL after the position joins the context (with a value) to it.
    let raw = b"SERROR\0VERROR\0C22P02\0Mbad\0P8\xffWSQL function leak: alice@example.com\0\0";
    let b = super::scrub_error(b'E', raw).expect("readable");
    assert!(!contains(&b, b"alice"), "{b:?}");
    let e = ErrorResponse::from_frame(&frame_of(&b)).unwrap();
    assert_eq!(e.get(b'P'), None);
    assert_eq!(e.sqlstate(), Some("22P02"));
    // Text where a severity or SQLSTATE should be.
    let raw = b"Salice@example.com\0Valice@example.com\0Calice@example.com\0Mx\0\0";
    let b = super::scrub_error(b'E', raw).unwrap();
    assert!(!contains(&b, b"alice"), "{b:?}");
    let e = ErrorResponse::from_frame(&frame_of(&b)).unwrap();
    assert_eq!(e.severity_level(), Some(Severity::Error));
    assert_eq!(e.sqlstate(), Some("XX000"));
    assert!(e.message().unwrap().contains("XX000"));
    let b = super::scrub_error(b'N', raw).unwrap();
    assert!(!contains(&b, b"alice"), "{b:?}");
    let n = NoticeResponse::from_frame(&frame_of(&b)).unwrap();
    assert_eq!(n.severity_level(), Some(Severity::Notice));
    // A localized severity is given as its non-localized name; FATAL stays FATAL.
    let raw = b"SFEHLER\0VFATAL\0C57P01\0Mbye\0P123\0\0";
    let e = ErrorResponse::from_frame(&frame_of(&super::scrub_error(b'E', raw).unwrap())).unwrap();
    assert_eq!(e.get(b'S'), Some("FATAL"));
    assert_eq!(e.get(b'V'), Some("FATAL"));
    assert_eq!(e.get(b'P'), Some("123"));
}

// ----- extended protocol ------------------------------------------------------------------

#[tokio::test]
async fn execute_injects_a_describe_whose_answer_is_swallowed() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers WHERE id = $1");
    m.bind_sent(&bind_body("p1", "s1"));
    let d = m.execute_sent("p1").expect("a Describe is injected");
    assert_eq!(&d[..], b"D\0\0\0\x08Pp1\0");
    let f = frame_of(&d);
    assert_eq!(f.tag(), b'D');
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(b'T', &rd(vec![field("email", CUSTOMERS, 2, TEXT, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![some("****")]
    );
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("bob@example.com")]))),
        vec![some("****")]
    );
    forwarded(m.target_frame(b'C', b"SELECT 2\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
    assert_eq!(m.take_counts(), vec![("email".to_string(), 2)]);
    // The unnamed portal: an empty name in the Describe.
    parse(&m, "", "SELECT id FROM orders");
    m.bind_sent(&bind_body("", ""));
    assert_eq!(&m.execute_sent("").unwrap()[..], b"D\0\0\0\x06P\0");
}

#[tokio::test]
async fn a_clients_own_describe_is_answered_to_it() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers");
    m.bind_sent(&bind_body("p1", "s1"));
    m.describe_sent(b"Pp1\0");
    assert!(m.execute_sent("p1").is_none(), "no second Describe");
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    forwarded(m.target_frame(b'T', &rd(vec![field("email", CUSTOMERS, 2, TEXT, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![some("****")]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
    // A Describe of another portal, or anything sent after it, does not count.
    m.bind_sent(&bind_body("p1", "s1"));
    m.describe_sent(b"Pp2\0");
    assert!(m.execute_sent("p1").is_some());
    m.describe_sent(b"Pp1\0");
    m.bind_sent(&bind_body("p1", "s1"));
    assert!(m.execute_sent("p1").is_some());
}

#[tokio::test]
async fn describe_of_a_statement_and_no_data() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers");
    m.describe_sent(b"Ss1\0");
    parse(&m, "s2", "UPDATE orders SET total = 0");
    m.bind_sent(&bind_body("p2", "s2"));
    assert!(m.execute_sent("p2").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b't', b"\0\0"));
    forwarded(m.target_frame(b'T', &rd(vec![field("email", CUSTOMERS, 2, TEXT, 0)])));
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    // The injected Describe's NoData is swallowed too.
    dropped(m.target_frame(b'n', b""));
    forwarded(m.target_frame(b'C', b"UPDATE 3\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn an_error_in_an_extended_batch_skips_to_its_sync() {
    let m = session();
    parse(&m, "s1", "SELECT email::int FROM customers");
    m.bind_sent(&bind_body("p1", "s1"));
    assert!(m.execute_sent("p1").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    // The Bind fails: the target skips Describe and Execute.
    let b = replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    assert_scrubbed(&b, "22P02");
    assert_eq!(queue_len(&m), 1);
    assert!(matches!(lock(&m.queue).front(), Some(Expect::Sync)));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
    // The next statement's answers pair with it, not with the failed batch.
    query(&m, "SELECT id::text::int FROM orders");
    forwarded(m.target_frame(b'E', &error_body(&leaky_error())));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn a_query_pipelined_into_a_failed_batch_is_skipped_with_it() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers");
    // A simple Query before the batch's Sync: the target ignores it after the error.
    query(&m, "SELECT 1");
    m.sync_sent();
    replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0, "nothing stale is left to pair with");
    // So the next masked statement's error is still recognised as its own.
    query(&m, "SELECT email::int FROM customers");
    let b = replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    assert_scrubbed(&b, "22P02");
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn a_query_pipelined_into_a_good_batch_runs() {
    let m = session();
    parse(&m, "s1", "SELECT id FROM orders");
    query(&m, "SELECT email FROM customers");
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'T', &rd(vec![field("email", CUSTOMERS, 2, TEXT, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![some("****")]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"T"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn portal_suspended_ends_an_execute_and_the_next_one_is_described_again() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers");
    m.bind_sent(&bind_body("p1", "s1"));
    assert!(m.execute_sent("p1").is_some());
    assert!(
        m.execute_sent("p1").is_some(),
        "each Execute gets its own Describe"
    );
    m.sync_sent();
    let t = rd(vec![field("email", CUSTOMERS, 2, TEXT, 0)]);
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(b'T', &t));
    masked_row(m.target_frame(b'D', &text_row(&[Some("a@example.com")])));
    forwarded(m.target_frame(b's', b""));
    dropped(m.target_frame(b'T', &t));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("b@example.com")]))),
        vec![some("****")]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn a_portal_of_an_unknown_statement_is_masked_whole() {
    let m = session();
    // Bound to a statement the gateway never saw (e.g. SQL PREPARE): no lineage.
    m.bind_sent(&bind_body("p", "prepared-in-sql"));
    assert!(m.execute_sent("p").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(
        b'T',
        &rd(vec![
            field("email", CUSTOMERS, 2, TEXT, 0),
            field("n", 0, 0, TEXT, 0),
        ]),
    ));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com"), Some("x")]))),
        vec![some("****"), some("****")]
    );
    // Its errors are scrubbed.
    replaced(m.target_frame(b'E', &error_body(&leaky_error())));
}

#[tokio::test]
async fn close_and_sync_forget_portals() {
    let m = session();
    parse(&m, "s1", "SELECT email FROM customers");
    m.bind_sent(&bind_body("", "s1"));
    m.bind_sent(&bind_body("named", "s1"));
    m.close_sent(b"Pnamed\0");
    m.sync_sent();
    assert!(lock(&m.client).portals.is_empty());
    assert!(lock(&m.client).statements.contains_key("s1"));
    m.close_sent(b"Ss1\0");
    assert!(!lock(&m.client).statements.contains_key("s1"));
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    forwarded(m.target_frame(b'2', b""));
    forwarded(m.target_frame(b'3', b""));
    forwarded(m.target_frame(b'Z', b"I"));
    forwarded(m.target_frame(b'3', b""));
    assert_eq!(queue_len(&m), 0);
}

// ----- COPY -------------------------------------------------------------------------------

#[tokio::test]
async fn copy_text_rows_are_rewritten() {
    let m = session();
    query(&m, "COPY customers TO STDOUT");
    forwarded(m.target_frame(b'H', &copy_out(0, 7)));
    let line = b"1\talice@example.com\t12\\t3\t100\t{\"phone\": \"5\"}\tcard 4111 1111 1111 1111\tAl\\\\ice\\none\n";
    let out = replaced(m.target_frame(b'd', line));
    let f = frame_of(&out);
    assert_eq!(f.tag(), b'd');
    let body = f.body();
    let expected = format!(
        "1\t****\t{}\t****\t****\tcard ****\tAl\\\\ice\\none\n",
        hash_of("12\t3")
    );
    assert_eq!(std::str::from_utf8(body).unwrap(), expected);
    // NULL stays `\N` and is not counted.
    let out = replaced(m.target_frame(b'd', b"2\t\\N\t1\t\\N\t\\N\t\\N\t\\N\n"));
    assert_eq!(
        std::str::from_utf8(frame_of(&out).body()).unwrap(),
        format!("2\t\\N\t{}\t\\N\t\\N\t\\N\t\\N\n", hash_of("1"))
    );
    forwarded(m.target_frame(b'c', b""));
    forwarded(m.target_frame(b'C', b"COPY 2\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    let counts: BTreeMap<String, u64> = m.take_counts().into_iter().collect();
    assert_eq!(counts["email"], 1);
    assert_eq!(counts["ssn"], 2);
    assert_eq!(counts["balance"], 1);
    assert_eq!(counts["profile"], 1);
    assert_eq!(counts["cards"], 1);
}

#[tokio::test]
async fn copy_escapes_what_masking_puts_in() {
    let mut rules = main_rules();
    rules[0].placeholder = Some("a\tb\\c\nd\re".into());
    let m = session_with(&rules, main_rows(), None);
    query(&m, "COPY customers (email, id) TO STDOUT");
    forwarded(m.target_frame(b'H', &copy_out(0, 2)));
    let out = replaced(m.target_frame(b'd', b"alice@example.com\t1\n"));
    assert_eq!(frame_of(&out).body(), b"a\\tb\\\\c\\nd\\re\t1\n");
}

#[tokio::test]
async fn binary_copy_of_masked_columns_is_withheld() {
    let m = session();
    // Refused up front when the options say so...
    let e = check(&m, "COPY customers TO STDOUT (FORMAT binary)").unwrap_err();
    assert!(e.contains("default text format"), "{e}");
    // ...and withheld if the target answers in binary anyway.
    query(&m, "COPY customers TO STDOUT");
    forwarded(m.target_frame(b'H', &copy_out(1, 7)));
    dropped(m.target_frame(b'd', b"PGCOPY\n\xff\r\n\0alice@example.com"));
    dropped(m.target_frame(b'd', b"\xff\xff"));
    dropped(m.target_frame(b'c', b""));
    let b = replaced(m.target_frame(b'C', b"COPY 1\0"));
    let e = ErrorResponse::from_frame(&frame_of(&b)).expect("an ErrorResponse");
    assert_eq!(e.sqlstate(), Some("42501"));
    forwarded(m.target_frame(b'Z', b"I"));
    // The next statement is not blocked.
    query(&m, "SELECT id FROM orders");
    forwarded(m.target_frame(b'T', &rd(vec![field("id", ORDERS, 1, INT4, 0)])));
    forwarded(m.target_frame(b'D', &text_row(&[Some("1")])));
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
}

#[tokio::test]
async fn copy_of_an_unexpected_width_is_withheld() {
    let m = session();
    query(&m, "COPY customers TO STDOUT");
    forwarded(m.target_frame(b'H', &copy_out(0, 3)));
    dropped(m.target_frame(b'd', b"1\talice@example.com\tx\n"));
    replaced(m.target_frame(b'C', b"COPY 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    // A CopyOutResponse too short to read.
    query(&m, "COPY customers TO STDOUT");
    forwarded(m.target_frame(b'H', b"\0"));
    dropped(m.target_frame(b'd', b"1\talice@example.com\n"));
    replaced(m.target_frame(b'C', b"COPY 1\0"));
}

#[tokio::test]
async fn copy_over_unmasked_columns_passes() {
    let m = session_with(&main_rules()[..4], main_rows(), None);
    query(&m, "COPY orders TO STDOUT (FORMAT binary)");
    forwarded(m.target_frame(b'H', &copy_out(1, 4)));
    forwarded(m.target_frame(b'd', b"PGCOPY\n\xff\r\n\0"));
    forwarded(m.target_frame(b'c', b""));
    forwarded(m.target_frame(b'C', b"COPY 1\0"));
}

#[tokio::test]
async fn copy_in_the_extended_protocol_uses_the_portals_lineage() {
    let m = session();
    parse(&m, "", "COPY customers (id, email) TO STDOUT");
    m.bind_sent(&bind_body("", ""));
    assert!(m.execute_sent("").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(b'n', b""));
    forwarded(m.target_frame(b'H', &copy_out(0, 2)));
    let out = replaced(m.target_frame(b'd', b"1\talice@example.com\n"));
    assert_eq!(frame_of(&out).body(), b"1\t****\n");
    forwarded(m.target_frame(b'c', b""));
    forwarded(m.target_frame(b'C', b"COPY 1\0"));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

fn text_plan(actions: Vec<Action>) -> Plan {
    Plan {
        cols: actions
            .into_iter()
            .map(|action| ColPlan {
                action,
                scans: Vec::new(),
                binary: false,
                type_oid: TEXT,
            })
            .collect(),
        active: true,
    }
}

#[test]
fn copy_text_row_withholds_what_it_cannot_read() {
    let rules = compile(&main_rules());
    let plan = text_plan(vec![Action::Mask(EMAIL), Action::Keep]);
    let mut counts = vec![0u64; rules.rules.len()];
    let body = |b: Option<Bytes>| frame_of(&b.expect("rewritten")).body().to_vec();
    // Not UTF-8 in the masked column: redacted all the same.
    let out = rewrite::copy_text_row(b"\xff\xfe\tkeep\n", &plan, &rules, &mut counts);
    assert_eq!(body(out), b"****\tkeep\n");
    // Not UTF-8 in a kept column: kept byte for byte.
    let out = rewrite::copy_text_row(b"a@b.c\t\xff\n", &plan, &rules, &mut counts);
    assert_eq!(body(out), b"****\t\xff\n");
    // Too many, too few, no fields: the whole row is withheld.
    for bad in [
        &b"alice@example.com\tx\ty\n"[..],
        b"alice@example.com\n",
        b"",
        b"\n",
        b"alice@example.com",
    ] {
        let out = rewrite::copy_text_row(bad, &plan, &rules, &mut counts);
        assert_eq!(body(out), b"\\N\t\\N\n", "{bad:?}");
    }
    // A row without the final newline still parses.
    let out = rewrite::copy_text_row(b"alice@example.com\tx", &plan, &rules, &mut counts);
    assert_eq!(body(out), b"****\tx\n");
    // A trailing backslash is kept as is.
    let out = rewrite::copy_text_row(b"x\\\ty\\\n", &plan, &rules, &mut counts);
    assert_eq!(body(out), b"****\ty\\\n");
    // Nothing to change: forwarded as it came.
    let keep = text_plan(vec![Action::Keep, Action::Keep]);
    assert!(rewrite::copy_text_row(b"a\tb\n", &keep, &rules, &mut counts).is_none());
    // A plan of no columns: still never forwards the row.
    let none = text_plan(Vec::new());
    let out = rewrite::copy_text_row(b"secret\n", &none, &rules, &mut counts);
    assert_eq!(body(out), b"\\N\n");
}

// ----- hostile DataRows -------------------------------------------------------------------

/// A session in the middle of `SELECT id, email FROM customers`.
fn mid_select() -> SessionMask {
    let m = session();
    query(&m, "SELECT id, email FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("id", CUSTOMERS, 1, INT4, 0),
            field("email", CUSTOMERS, 2, TEXT, 0),
        ]),
    ));
    m
}

#[tokio::test]
async fn malformed_data_rows_end_the_session() {
    let m = mid_select();
    let good = text_row(&[Some("1"), Some("alice@example.com")]);
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("one byte", vec![0]),
        ("count only", vec![0, 2]),
        ("truncated length", vec![0, 2, 0, 0, 0, 1, b'1', 0, 0]),
        ("truncated value", good[..good.len() - 3].to_vec()),
    ];
    let mut long = vec![0, 2, 0, 0, 0, 1, b'1', 0, 0, 0x03, 0xe8];
    long.extend_from_slice(b"alice");
    cases.push(("length beyond the body", long));
    let mut huge = vec![0, 2, 0, 0, 0, 1, b'1', 0x7f, 0xff, 0xff, 0xff];
    huge.extend_from_slice(b"alice");
    cases.push(("i32::MAX length", huge));
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"alice@example.com");
    cases.push(("trailing bytes", trailing));
    cases.push((
        "too wide",
        text_row(&[
            Some("1"),
            Some("alice@example.com"),
            Some("alice@example.com"),
        ]),
    ));
    cases.push(("too narrow", text_row(&[Some("alice@example.com")])));
    cases.push(("no columns", vec![0, 0]));
    let mut count_lies = good.clone();
    count_lies[1] = 1;
    cases.push(("count says one", count_lies));
    for (what, body) in cases {
        let a = m.target_frame(b'D', &body);
        assert!(
            matches!(a, TargetAction::Fail(_)),
            "{what}: {}",
            describe(&a)
        );
    }
    // The same session still masks a good row.
    assert_eq!(masked_row(m.target_frame(b'D', &good))[1], some("****"));
}

#[tokio::test]
async fn malformed_rows_nobody_described_end_the_session() {
    let m = session();
    query(&m, "SELECT email FROM customers");
    failed(m.target_frame(b'D', b""));
    failed(m.target_frame(b'D', &[0, 1, 0, 0, 0, 9, b'a']));
    failed(m.target_frame(b'D', &[0, 1, 0xff, 0xff, 0xff, 0xff, b'x']));
}

#[tokio::test]
async fn negative_lengths_never_let_a_value_through() {
    let m = mid_select();
    // -2 is not NULL on the wire, but nothing after it may be skipped unmasked.
    let mut body = vec![0, 2, 0xff, 0xff, 0xff, 0xfe, 0, 0, 0, 5];
    body.extend_from_slice(b"alice");
    match m.target_frame(b'D', &body) {
        TargetAction::Fail(_) => {}
        TargetAction::Replace(b) => {
            assert!(!contains(&b, b"alice"), "{b:?}");
            assert_eq!(values(&b)[1], some("****"));
        }
        other => panic!("{}", describe(&other)),
    }
}

#[tokio::test]
async fn unreadable_row_descriptions_mask_the_rows_blind() {
    let m = session();
    query(&m, "SELECT id FROM orders");
    for garbage in [
        &b""[..],
        b"\0",
        b"\0\x05abc",
        b"\0\x01name\0",
        b"\0\x01email\0\0\0\x40\x10\0\x02\0\0\0\x19\xff\xff\xff\xff\xff\xff\0\0extra",
    ] {
        forwarded(m.target_frame(b'T', garbage));
        assert_eq!(
            masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com"), Some("1")]))),
            vec![None, None],
            "{garbage:?}"
        );
    }
}

#[tokio::test]
async fn an_unreadable_answer_to_the_gateways_describe_is_not_forwarded() {
    let m = session();
    parse(&m, "s1", "SELECT id FROM orders");
    m.bind_sent(&bind_body("p1", "s1"));
    assert!(m.execute_sent("p1").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'1', b""));
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(b'T', b"\0\x09garbage"));
    // No plan: the rows are withheld.
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![None]
    );
    forwarded(m.target_frame(b'C', b"SELECT 1\0"));
    assert!(matches!(lock(&m.queue).front(), Some(Expect::Sync)));
    forwarded(m.target_frame(b'Z', b"I"));
    assert_eq!(queue_len(&m), 0);
}

#[tokio::test]
async fn malformed_client_messages_fail_closed() {
    let m = session();
    for body in [
        &b""[..],
        b"p1",
        b"p1\0s",
        b"\xff\xfe\0\xff\0",
        b"\0\0",
        b"\0\0\0\0\0\0\0\0",
    ] {
        m.bind_sent(body);
        m.describe_sent(body);
        m.close_sent(body);
    }
    for body in [&b"P"[..], b"S", b"Pxx", b"S\xff\0", b"X\0", b"Pp\0trailing"] {
        m.describe_sent(body);
        m.close_sent(body);
    }
    let _ = m.execute_sent("\u{fffd}");
    let _ = m.execute_sent("");
    m.sync_sent();
    // A Bind whose statement cannot be read is treated as reading masked columns.
    let m = session();
    m.bind_sent(b"p1");
    replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    forwarded(m.target_frame(b'Z', b"I"));
    // And its portal's rows are masked whole.
    let m = session();
    m.bind_sent(b"\xff\0\xff\0");
    assert!(m.execute_sent("\u{fffd}").is_some());
    m.sync_sent();
    forwarded(m.target_frame(b'2', b""));
    dropped(m.target_frame(b'T', &rd(vec![field("x", 0, 0, TEXT, 0)])));
    assert_eq!(
        masked_row(m.target_frame(b'D', &text_row(&[Some("alice@example.com")]))),
        vec![some("****")]
    );
}

// ----- fuzzing ----------------------------------------------------------------------------

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const STATEMENTS: [&str; 3] = ["", "s1", "s2"];
const PORTALS: [&str; 3] = ["", "p1", "\u{fffd}"];

const TAGS: &[u8] = b"123TnDHdcCIsENZtAKSRGWV\0\xff";

/// A body for `tag`: random bytes, or a valid one with a random cut, extension or flip.
fn fuzz_body(rng: &mut Rng, tag: u8) -> Vec<u8> {
    let mut body = match (tag, rng.below(3)) {
        (_, 0) => return rng.bytes(64),
        (b'T', _) => {
            let fresh = 17_000 + rng.below(3) as u32;
            let oid = *rng.pick(&[0, CUSTOMERS, fresh]);
            rd(vec![
                field("email", CUSTOMERS, 2, TEXT, rng.below(2) as i16),
                field("x", oid, 1, JSONB, 1),
            ])
        }
        (b'D', _) => text_row(&[Some("alice@example.com"), None]),
        (b'H', _) => copy_out(rng.below(2) as u8, rng.below(8) as u16),
        (b'd', _) => b"1\talice@example.com\t\\N\n".to_vec(),
        (b'E' | b'N', _) => error_body(&leaky_error()),
        _ => rng.bytes(16),
    };
    match rng.below(4) {
        0 if !body.is_empty() => {
            let cut = rng.below(body.len());
            body.truncate(cut);
        }
        1 => body.extend(rng.bytes(8)),
        2 if !body.is_empty() => {
            let at = rng.below(body.len());
            body[at] = rng.next() as u8;
        }
        _ => {}
    }
    body
}

#[tokio::test]
async fn random_frames_never_panic_and_replacements_are_well_formed() {
    let sqls = [
        "SELECT id, email FROM customers",
        "SELECT lower(email) FROM customers",
        "SELECT id FROM orders",
        "COPY customers TO STDOUT",
        "SELECT profile FROM customers",
        "not sql at all",
    ];
    let m = session();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..5_000 {
        // Now and then the client says something.
        match rng.below(10) {
            0 => {
                let sql = *rng.pick(&sqls);
                m.query_sent(m.lineage(sql));
            }
            1 => {
                let sql = *rng.pick(&sqls);
                let l = m.lineage(sql);
                let name = *rng.pick(&STATEMENTS);
                m.parse_sent(name, &l);
            }
            2 => {
                if rng.below(2) == 0 {
                    let portal = *rng.pick(&PORTALS[..2]);
                    let stmt = *rng.pick(&["", "s1", "s9"]);
                    m.bind_sent(&bind_body(portal, stmt));
                } else {
                    m.bind_sent(&rng.bytes(12));
                }
            }
            3 => m.describe_sent(&rng.bytes(6)),
            4 => {
                let portal = *rng.pick(&PORTALS);
                if let Some(d) = m.execute_sent(portal) {
                    assert_eq!(frame_of(&d).tag(), b'D');
                }
            }
            5 => m.close_sent(&rng.bytes(6)),
            6 => m.sync_sent(),
            _ => {}
        }
        let tag = *rng.pick(TAGS);
        let body = fuzz_body(&mut rng, tag);
        match m.target_frame(tag, &body) {
            TargetAction::Replace(b) => {
                let f = frame_of(&b);
                match tag {
                    b'D' => {
                        DataRow::from_frame(&f).unwrap_or_else(|e| panic!("{i}: {e}"));
                    }
                    // A blocked COPY's end becomes an error.
                    b'E' | b'C' | b'I' | b's' => {
                        ErrorResponse::from_frame(&f).unwrap_or_else(|e| panic!("{i}: {e}"));
                    }
                    b'N' => {
                        NoticeResponse::from_frame(&f).unwrap_or_else(|e| panic!("{i}: {e}"));
                    }
                    b'd' => assert_eq!(f.tag(), b'd'),
                    // A notification loses its payload.
                    b'A' => {
                        warden_wire::NotificationResponse::from_frame(&f)
                            .unwrap_or_else(|e| panic!("{i}: {e}"));
                    }
                    other => panic!("{i}: replaced a {:?}", other as char),
                }
                // A masked value never comes back out.
                assert!(!contains(&b, b"alice"), "{i}: {b:?}");
            }
            TargetAction::Fail(_) => assert_eq!(tag, b'D', "{i}"),
            TargetAction::Reload => assert_eq!(tag, b'T', "{i}"),
            TargetAction::Forward | TargetAction::Drop => {}
        }
    }
}

#[tokio::test]
async fn random_rows_under_a_masking_plan_never_forward_a_value() {
    let m = session();
    query(&m, "SELECT email, ssn FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("email", CUSTOMERS, 2, TEXT, 0),
            field("ssn", CUSTOMERS, 3, TEXT, 0),
        ]),
    ));
    let mut rng = Rng(42);
    let mut fails = 0;
    for i in 0..5_000 {
        let mut body = match rng.below(3) {
            0 => rng.bytes(40),
            _ => {
                let a = rng.bytes(12);
                let b = rng.bytes(12);
                let pick = |r: &mut Rng, v: &[u8]| (r.below(4) != 0).then(|| v.to_vec());
                let (a, b) = (pick(&mut rng, &a), pick(&mut rng, &b));
                row(&[a.as_deref(), b.as_deref()])
            }
        };
        match rng.below(4) {
            0 if !body.is_empty() => {
                let cut = rng.below(body.len());
                body.truncate(cut);
            }
            1 => body.extend(rng.bytes(4)),
            2 if !body.is_empty() => {
                let at = rng.below(body.len());
                body[at] = rng.next() as u8;
            }
            _ => {}
        }
        match m.target_frame(b'D', &body) {
            TargetAction::Fail(_) => fails += 1,
            TargetAction::Replace(b) => {
                let v = values(&b);
                assert_eq!(v.len(), 2, "{i}");
                for c in v.iter().flatten() {
                    assert!(c == b"****" || c.starts_with(b"tok_"), "{i}: {c:?}");
                }
            }
            // Unchanged only when there was no value to mask at all.
            TargetAction::Forward => assert!(only_nulls(&body), "{i}: {body:?}"),
            other => panic!("{i}: {}", describe(&other)),
        }
    }
    assert!(fails > 0);
}

/// Whether a DataRow body holds only NULLs (any negative length) and nothing else.
fn only_nulls(body: &[u8]) -> bool {
    let Some(n) = body.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])) else {
        return false;
    };
    let mut pos = 2;
    for _ in 0..n {
        match body.get(pos..pos + 4) {
            Some(l) if i32::from_be_bytes([l[0], l[1], l[2], l[3]]) < 0 => pos += 4,
            _ => return false,
        }
    }
    pos == body.len()
}

#[test]
fn fuzz_helpers_are_deterministic() {
    let (mut a, mut b) = (Rng(1), Rng(1));
    let xs: BTreeSet<u64> = (0..100).map(|_| a.next()).collect();
    let ys: BTreeSet<u64> = (0..100).map(|_| b.next()).collect();
    assert_eq!(xs, ys);
    assert_eq!(xs.len(), 100);
}

// A frame built by hand must match what the encoders produce.
#[test]
fn fixtures_match_the_wire_encoders() {
    let mut b = BytesMut::new();
    b.put_u16(1);
    b.put_i32(3);
    b.put_slice(b"abc");
    assert_eq!(row(&[Some(&b"abc"[..])]), b.to_vec());
    let f =
        RowDescription::from_frame(&Frame::new(b'T', &rd(vec![field("e", 1, 2, 3, 1)]))).unwrap();
    assert_eq!(f.fields()[0].format, 1);
}

#[tokio::test]
async fn an_error_at_commit_of_a_transaction_that_read_masked_columns_is_scrubbed() {
    let m = session();
    query(&m, "BEGIN");
    forwarded(m.target_frame(b'C', b"BEGIN\0"));
    forwarded(m.target_frame(b'Z', b"T"));
    query(&m, "SELECT email FROM customers");
    forwarded(m.target_frame(b'C', b"SELECT 0\0"));
    forwarded(m.target_frame(b'Z', b"T"));
    // A deferred constraint fails at COMMIT, naming a row the transaction read.
    query(&m, "COMMIT");
    let b = replaced(m.target_frame(b'E', &error_body(&leaky_error())));
    assert_scrubbed(&b, "22P02");
    forwarded(m.target_frame(b'Z', b"I"));
    // The next transaction starts clean.
    query(&m, "SELECT id::text::int FROM orders");
    forwarded(m.target_frame(b'E', &error_body(&leaky_error())));
    forwarded(m.target_frame(b'Z', b"I"));
}

#[tokio::test]
async fn statements_the_parser_cannot_read_are_refused_on_masked_sessions() {
    let m = session();
    let e = check(&m, "SELEC email FROM customers").unwrap_err();
    assert!(e.contains("cannot parse"), "{e}");
}

#[tokio::test]
async fn notification_payloads_are_withheld_on_masked_sessions() {
    let m = session();
    let mut body = 42i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"ch\0alice@example.com\0");
    let b = replaced(m.target_frame(b'A', &body));
    assert!(!contains(&b, b"alice"), "{b:?}");
    let mut want = vec![b'A', 0, 0, 0, 12];
    want.extend_from_slice(&42i32.to_be_bytes());
    want.extend_from_slice(b"ch\0\0");
    assert_eq!(&b[..], &want[..]);
    // An empty payload passes; a truncated one is dropped.
    let mut empty = 42i32.to_be_bytes().to_vec();
    empty.extend_from_slice(b"ch\0\0");
    forwarded(m.target_frame(b'A', &empty));
    dropped(m.target_frame(b'A', b"\0\0\0\x2ach"));
}

#[tokio::test]
async fn a_run_of_rows_is_masked_in_one_call() {
    let m = session();
    query(&m, "SELECT email, name FROM customers");
    forwarded(m.target_frame(
        b'T',
        &rd(vec![
            field("email", CUSTOMERS, 2, TEXT, 0),
            field("name", CUSTOMERS, 8, TEXT, 0),
        ]),
    ));
    let frame = |body: Vec<u8>| {
        let mut f = vec![b'D'];
        f.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        f.extend_from_slice(&body);
        f
    };
    let rows = [
        frame(text_row(&[Some("alice@example.com"), Some("Al")])),
        frame(text_row(&[None, Some("Bo")])),
        frame(text_row(&[Some("bob@example.org"), None])),
    ]
    .concat();
    let mut out = BytesMut::new();
    m.data_rows_into(&rows, &mut out).unwrap();
    assert!(
        !contains(&out, b"alice") && !contains(&out, b"bob@"),
        "{out:?}"
    );
    let want = [
        frame(text_row(&[Some("****"), Some("Al")])),
        frame(text_row(&[None, Some("Bo")])),
        frame(text_row(&[Some("****"), None])),
    ]
    .concat();
    assert_eq!(&out[..], &want[..]);
    // A run cut short, or a frame length that runs past the end: nothing is forwarded.
    for bad in [&rows[..rows.len() - 1], &rows[..3]] {
        let mut out = BytesMut::new();
        let r = m.data_rows_into(bad, &mut out);
        assert!(r.is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_stale_catalog_is_reloaded_before_the_next_result() {
    let m = session();
    m.handle.mark_stale();
    query(&m, "SELECT id FROM orders");
    assert!(matches!(
        m.target_frame(b'T', &rd(vec![field("id", ORDERS, 1, INT4, 0)])),
        TargetAction::Reload
    ));
    // The reload fails here (no target): the catalog stays stale, the pump ends the
    // session rather than mask by an old snapshot.
    assert!(m.reload().await.is_err());
    assert!(m.handle.is_stale());
}
