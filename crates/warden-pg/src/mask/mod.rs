//! Result masking in the proxy loop.
//!
//! The client side analyses each statement's lineage (which masked columns feed which
//! output column) against the connection's catalog snapshot, refuses what cannot be masked,
//! and queues what it expects back. The target side pairs each response with that queue:
//! a RowDescription becomes a per-column plan (origin from the table OID and attribute
//! number, otherwise from the lineage), DataRows and COPY rows are rewritten by that plan,
//! and errors and notices raised by statements that read masked columns lose their text.
//!
//! In the extended protocol the rows of an Execute come without a RowDescription, so the
//! gateway sends its own Describe of the portal just before each Execute (unless the
//! client just did) and swallows the answer: the plan then always matches the portal's
//! actual result formats.

pub mod catalog;
mod rewrite;
pub mod rules;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{BufMut, Bytes, BytesMut};
use warden_masking::lineage::{Clause, Lineage, OutputTaint, Outputs, RuleId, Taint};
use warden_masking::JsonPath;
use warden_wire::{Frame, Message, RowDescription};

use catalog::{Catalog, CatalogHandle, FIRST_USER_OID};
pub use rewrite::scrub_error;
use rules::MaskRules;

/// What the target will answer to a forwarded client message, in order.
enum Expect {
    Query {
        lineages: Arc<Vec<Lineage>>,
        stmt: usize,
    },
    Parse {
        touches: bool,
    },
    Bind {
        touches: bool,
    },
    DescribeStatement,
    DescribePortal {
        injected: bool,
        lineage: Option<Lineage>,
    },
    Execute {
        touches: bool,
        lineage: Option<Lineage>,
    },
    Close,
    Sync,
}

/// How one result column is treated.
#[derive(Clone, Debug)]
enum Action {
    Keep,
    /// Masked whole by this rule.
    Mask(RuleId),
    /// JSON paths inside the value.
    Json(Vec<(RuleId, JsonPath)>),
}

#[derive(Clone, Debug)]
struct ColPlan {
    action: Action,
    /// Detector rules run over the value (after `action`, unless it masked the value whole).
    scans: Vec<RuleId>,
    binary: bool,
    type_oid: u32,
}

/// The plan for the rows of one result.
#[derive(Clone, Debug, Default)]
struct Plan {
    cols: Vec<ColPlan>,
    /// Whether any column needs work (rows pass untouched otherwise).
    active: bool,
}

/// A COPY TO in progress.
enum CopyState {
    /// Rows rewritten by this plan (text format).
    Masking(Plan),
    /// A format the gateway cannot rewrite: rows are withheld and the COPY ends in an error.
    Blocked,
}

#[derive(Default)]
struct ClientState {
    /// Prepared statements by name: their lineage.
    statements: HashMap<String, Lineage>,
    /// Portals by name: their statement's lineage.
    portals: HashMap<String, Option<Lineage>>,
    /// The portal the client described last, if nothing else came since.
    described: Option<String>,
}

#[derive(Default)]
struct TargetState {
    plan: Option<Plan>,
    /// The plan for the next Execute, from the portal's Describe.
    portal_plan: Option<Plan>,
    copy: Option<CopyState>,
    /// Masked values per rule for the statement in progress.
    counts: rewrite::Counts,
    /// Where masked rows are written: one allocation shared by many rows.
    out: BytesMut,
    /// Where one masked value is built.
    scratch: String,
    /// Unknown relations already reloaded for (not reloaded again).
    reloaded_for: HashSet<u32>,
    /// Whether the transaction in progress ran a statement reading masked columns.
    tx_touched: bool,
}

/// What to do with a target frame.
pub enum TargetAction {
    /// Forward unchanged.
    Forward,
    /// Forward this instead.
    Replace(Bytes),
    /// Do not forward.
    Drop,
    /// Reload the catalog (a result names a relation it does not know), then ask again.
    Reload,
    /// The frame cannot be masked: the session ends rather than forward it.
    Fail(&'static str),
}

/// One session's masking.
pub struct SessionMask {
    handle: Arc<CatalogHandle>,
    catalog: Mutex<Arc<Catalog>>,
    active: Vec<bool>,
    queue: Mutex<VecDeque<Expect>>,
    client: Mutex<ClientState>,
    target: Mutex<TargetState>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SessionMask {
    /// Masking for a session whose identity has `active` rules (at least one).
    pub fn new(handle: Arc<CatalogHandle>, catalog: Arc<Catalog>, mut active: Vec<bool>) -> Self {
        // One entry per rule, whatever the caller passed: a missing one is inactive.
        active.resize(handle.rules().rules.len(), false);
        let target = TargetState {
            counts: vec![0; active.len()],
            ..TargetState::default()
        };
        SessionMask {
            handle,
            catalog: Mutex::new(catalog),
            active,
            queue: Mutex::new(VecDeque::new()),
            client: Mutex::new(ClientState::default()),
            target: Mutex::new(target),
        }
    }

    fn rules(&self) -> &MaskRules {
        self.handle.rules()
    }

    fn is_active(&self, r: RuleId) -> bool {
        self.active.get(usize::from(r)).copied().unwrap_or(false)
    }

    fn active_taint(&self, t: &Taint) -> Taint {
        Taint(t.0.iter().copied().filter(|&r| self.is_active(r)).collect())
    }

    /// The active rules of `t` for which `pred` holds.
    fn active_where(&self, t: &Taint, pred: impl Fn(&rules::MaskRule) -> bool) -> Taint {
        Taint(
            t.0.iter()
                .copied()
                .filter(|&r| {
                    self.is_active(r) && self.rules().rules.get(usize::from(r)).is_some_and(&pred)
                })
                .collect(),
        )
    }

    /// Active rule ids for which `pred` holds.
    fn active_rules(&self, pred: impl Fn(&rules::MaskRule) -> bool) -> Vec<RuleId> {
        self.rules()
            .rules
            .iter()
            .enumerate()
            .filter(|(i, r)| self.is_active(*i as RuleId) && pred(r))
            .map(|(i, _)| i as RuleId)
            .collect()
    }

    fn touches(&self, l: &Lineage) -> bool {
        l.touches.0.iter().any(|&r| self.is_active(r))
    }

    fn names(&self, t: &Taint) -> String {
        t.0.iter()
            .filter_map(|&r| self.rules().rules.get(usize::from(r)))
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Analyses `sql` and decides whether it may run on this masked session: the
    /// statement's lineage, or why it is refused.
    pub fn check(
        &self,
        sql: &str,
        analysis: &warden_policy::statement::Analysis,
    ) -> Result<Arc<Vec<Lineage>>, String> {
        if let Some(e) = &analysis.parse_error {
            // The target's grammar may accept what the parser does not; what a statement
            // reads cannot be told without its tree.
            return Err(format!(
                "Warden cannot parse this statement ({e}), and on a connection that masks columns it runs only what it can follow"
            ));
        }
        let catalog = {
            let mut mine = lock(&self.catalog);
            // Another session may have reloaded the connection's catalog (after DDL).
            if let Some(newer) = self.handle.peek().filter(|c| c.loaded > mine.loaded) {
                *mine = newer;
            }
            mine.clone()
        };
        let lineages = catalog.lineage(sql);
        // SQL EXECUTE and FETCH return rows without origins; a protocol-level prepared
        // statement or portal can be run that way, so none may be reading masked columns.
        if analysis
            .statements
            .iter()
            .any(|s| s.kind == "EXECUTE" || s.kind == "FETCH")
        {
            let c = lock(&self.client);
            let named_touch = c
                .statements
                .iter()
                .filter(|(n, _)| !n.is_empty())
                .any(|(_, l)| self.touches(l))
                || c.portals
                    .iter()
                    .filter(|(n, _)| !n.is_empty())
                    .any(|(_, l)| l.as_ref().is_none_or(|l| self.touches(l)));
            if named_touch {
                return Err("SQL EXECUTE and FETCH return rows Warden cannot attribute, and this session has prepared statements or portals reading masked columns; execute them through the protocol instead (this connection masks columns)".into());
            }
        }
        for l in lineages.iter() {
            if let Some(why) = &l.refusal {
                return Err(format!("{why} (this connection masks columns)"));
            }
            let outputs: Vec<&OutputTaint> = match &l.outputs {
                Outputs::Known(cols) => cols.iter().collect(),
                Outputs::Unknown(o) => vec![o],
                Outputs::None => vec![],
            };
            for o in outputs {
                let strict = self.active_where(&o.taint, |x| x.strict);
                if o.derived && strict.is_tainted() {
                    return Err(format!(
                        "it computes a value from masked columns, and masking rule {} is strict; select the column itself to get its masked form",
                        self.names(&strict)
                    ));
                }
            }
            for (clause, taint) in &l.predicates {
                let refused = self.active_where(taint, |x| x.refuse_in.contains(clause));
                if refused.is_tainted() {
                    let where_ = match clause {
                        Clause::Where => "WHERE/HAVING",
                        Clause::Join => "a JOIN condition",
                        Clause::GroupBy => "GROUP BY/DISTINCT ON",
                        Clause::OrderBy => "ORDER BY/PARTITION BY",
                    };
                    return Err(format!(
                        "it uses a masked column in {where_}, which masking rule {} refuses (a filter or sort on a masked value reveals it)",
                        self.names(&refused)
                    ));
                }
            }
        }
        Ok(lineages)
    }

    /// The lineage of `sql`, without deciding anything (a held statement being released
    /// was checked when it arrived).
    pub fn lineage(&self, sql: &str) -> Arc<Vec<Lineage>> {
        lock(&self.catalog).clone().lineage(sql)
    }

    /// A simple Query is forwarded.
    pub fn query_sent(&self, lineages: Arc<Vec<Lineage>>) {
        lock(&self.client).described = None;
        lock(&self.queue).push_back(Expect::Query { lineages, stmt: 0 });
    }

    /// A Parse is forwarded.
    pub fn parse_sent(&self, name: &str, lineages: &[Lineage]) {
        let lineage = lineages.first().cloned().unwrap_or_else(unknown_lineage);
        let touches = self.touches(&lineage);
        let mut c = lock(&self.client);
        c.described = None;
        c.statements.insert(name.to_owned(), lineage);
        drop(c);
        lock(&self.queue).push_back(Expect::Parse { touches });
    }

    /// A Bind is forwarded.
    pub fn bind_sent(&self, body: &[u8]) {
        let (portal, rest) = cstr_split(body);
        let (stmt, _) = cstr_split(rest);
        let mut c = lock(&self.client);
        c.described = None;
        let lineage = c.statements.get(stmt).cloned();
        let touches = lineage.as_ref().is_none_or(|l| self.touches(l));
        c.portals.insert(portal.to_owned(), lineage);
        drop(c);
        lock(&self.queue).push_back(Expect::Bind { touches });
    }

    /// A Describe is forwarded.
    pub fn describe_sent(&self, body: &[u8]) {
        let kind = body.first().copied().unwrap_or(0);
        let (name, _) = cstr_split(body.get(1..).unwrap_or(&[]));
        let mut c = lock(&self.client);
        if kind == b'P' {
            let lineage = c.portals.get(name).cloned().flatten();
            c.described = Some(name.to_owned());
            drop(c);
            lock(&self.queue).push_back(Expect::DescribePortal {
                injected: false,
                lineage,
            });
        } else {
            c.described = None;
            drop(c);
            lock(&self.queue).push_back(Expect::DescribeStatement);
        }
    }

    /// An Execute is about to be forwarded: returns the Describe to send before it, unless
    /// the client just described this portal itself.
    pub fn execute_sent(&self, portal: &str) -> Option<Bytes> {
        let mut c = lock(&self.client);
        let described = c.described.take().is_some_and(|p| p == portal);
        let lineage = c.portals.get(portal).cloned().flatten();
        drop(c);
        let touches = lineage.as_ref().is_none_or(|l| self.touches(l));
        let lineage_for_copy = lineage.clone();
        let mut q = lock(&self.queue);
        let inject = if described {
            None
        } else {
            q.push_back(Expect::DescribePortal {
                injected: true,
                lineage,
            });
            let mut b = BytesMut::with_capacity(portal.len() + 7);
            b.put_u8(b'D');
            b.put_i32((portal.len() + 6) as i32);
            b.put_u8(b'P');
            b.put_slice(portal.as_bytes());
            b.put_u8(0);
            Some(b.freeze())
        };
        q.push_back(Expect::Execute {
            touches,
            lineage: lineage_for_copy,
        });
        inject
    }

    /// A Close is forwarded.
    pub fn close_sent(&self, body: &[u8]) {
        let kind = body.first().copied().unwrap_or(0);
        let (name, _) = cstr_split(body.get(1..).unwrap_or(&[]));
        let mut c = lock(&self.client);
        c.described = None;
        if kind == b'S' {
            c.statements.remove(name);
        } else {
            c.portals.remove(name);
        }
        drop(c);
        lock(&self.queue).push_back(Expect::Close);
    }

    /// A Sync is forwarded (the client's or the gateway's own).
    pub fn sync_sent(&self) {
        let mut c = lock(&self.client);
        c.described = None;
        // Unnamed portals die at the end of a transaction; named ones are closed explicitly.
        c.portals.remove("");
        drop(c);
        lock(&self.queue).push_back(Expect::Sync);
    }

    /// Masked values per rule name since the last call (for the recording).
    pub fn take_counts(&self) -> Vec<(String, u64)> {
        let mut t = lock(&self.target);
        let mut out = Vec::new();
        for (r, n) in t.counts.iter_mut().enumerate() {
            if *n > 0 {
                if let Some(x) = self.rules().rules.get(r) {
                    out.push((x.name.clone(), *n));
                }
                *n = 0;
            }
        }
        out
    }

    /// Reloads the catalog for this session (a result named an unknown relation).
    pub async fn reload(&self) -> Result<(), String> {
        let since = lock(&self.catalog).loaded;
        let fresh = if self.handle.is_stale() {
            self.handle.reload_since(std::time::Instant::now()).await?
        } else {
            self.handle
                .reload_since(since + std::time::Duration::from_micros(1))
                .await?
        };
        *lock(&self.catalog) = fresh;
        Ok(())
    }

    /// Handles one target frame.
    pub fn target_frame(&self, tag: u8, body: &[u8]) -> TargetAction {
        if tag == b'D' {
            return self.data_row(body);
        }
        let mut q = lock(&self.queue);
        let mut t = lock(&self.target);
        match tag {
            b'1' => pop_if(&mut q, |e| matches!(e, Expect::Parse { .. })),
            b'2' => pop_if(&mut q, |e| matches!(e, Expect::Bind { .. })),
            b'3' => pop_if(&mut q, |e| matches!(e, Expect::Close)),
            b'T' => {
                let Ok(rd) = RowDescription::from_frame(&Frame::new(tag, body)) else {
                    // Unreadable: nothing can be attributed; rows are masked blind. It still
                    // answers a Describe, and the gateway's own Describe is not forwarded.
                    t.plan = None;
                    return end_describe(&mut q, &mut t, None).unwrap_or(TargetAction::Forward);
                };
                if self.handle.is_stale() {
                    // A session committed DDL on this connection: asked again once the
                    // catalog is reloaded.
                    return TargetAction::Reload;
                }
                let catalog = lock(&self.catalog).clone();
                if let Some(f) = rd.fields().iter().find(|f| {
                    f.has_origin()
                        && f.table_oid >= FIRST_USER_OID
                        && !catalog.knows(f.table_oid)
                        && !t.reloaded_for.contains(&f.table_oid)
                }) {
                    t.reloaded_for.insert(f.table_oid);
                    return TargetAction::Reload;
                }
                let lineage = match q.front() {
                    // A statement's description: its rows come through a portal, planned then.
                    Some(Expect::DescribeStatement) => {
                        return end_describe(&mut q, &mut t, None).unwrap_or(TargetAction::Forward)
                    }
                    Some(Expect::Query { lineages, stmt }) => lineages.get(*stmt).cloned(),
                    Some(Expect::DescribePortal { lineage, .. }) => lineage.clone(),
                    _ => None,
                };
                let plan = self.plan(&rd, lineage.as_ref(), &catalog);
                if let Some(Expect::DescribePortal { .. }) = q.front() {
                    return end_describe(&mut q, &mut t, Some(plan))
                        .unwrap_or(TargetAction::Forward);
                }
                t.plan = Some(plan);
                TargetAction::Forward
            }
            b'n' => end_describe(&mut q, &mut t, None).unwrap_or(TargetAction::Forward),
            b'H' => {
                let lineage = match q.front() {
                    Some(Expect::Query { lineages, stmt }) => lineages.get(*stmt).cloned(),
                    Some(Expect::Execute { lineage, .. }) => lineage.clone(),
                    _ => None,
                };
                let binary = body.first().copied().unwrap_or(1) != 0;
                let plan = self.copy_plan(lineage.as_ref(), body);
                t.copy = match plan {
                    Some(p) if p.active && !binary => Some(CopyState::Masking(p)),
                    Some(p) if !p.active => None,
                    _ => Some(CopyState::Blocked),
                };
                TargetAction::Forward
            }
            b'd' => match &mut *t {
                TargetState {
                    copy: Some(CopyState::Masking(p)),
                    counts,
                    ..
                } => match rewrite::copy_text_row(body, p, self.rules(), counts) {
                    Some(b) => TargetAction::Replace(b),
                    None => TargetAction::Forward,
                },
                TargetState {
                    copy: Some(CopyState::Blocked),
                    ..
                } => TargetAction::Drop,
                _ => TargetAction::Forward,
            },
            b'c' => match &t.copy {
                Some(CopyState::Blocked) => TargetAction::Drop,
                _ => TargetAction::Forward,
            },
            b'C' | b'I' | b's' => {
                t.tx_touched |= self.front_touches(&q);
                t.plan = None;
                let blocked = matches!(t.copy.take(), Some(CopyState::Blocked));
                match q.front_mut() {
                    Some(Expect::Query { stmt, .. }) => *stmt += 1,
                    Some(Expect::Execute { .. }) => {
                        q.pop_front();
                        t.portal_plan = None;
                    }
                    _ => {}
                }
                if blocked {
                    return TargetAction::Replace(
                        warden_wire::ErrorResponse::new(
                            warden_wire::Severity::Error,
                            "42501",
                            "Warden withheld this COPY: it returns masked columns in a format the gateway cannot mask (use the default text format)",
                        )
                        .encode(),
                    );
                }
                TargetAction::Forward
            }
            b'E' | b'N' => {
                // A deferred constraint or trigger can raise, at COMMIT, an error about rows
                // an earlier statement of the transaction read: the whole transaction counts.
                let touches = self.front_touches(&q) || t.tx_touched;
                t.tx_touched |= touches;
                if tag == b'E' {
                    t.plan = None;
                    t.portal_plan = None;
                    t.copy = None;
                    // After an error in an extended-protocol message the target skips to
                    // Sync, ignoring a simple Query sent before it too: so do the
                    // expectations.
                    if !matches!(q.front(), Some(Expect::Query { .. })) {
                        while q.front().is_some_and(|e| !matches!(e, Expect::Sync)) {
                            q.pop_front();
                        }
                    }
                }
                if touches {
                    return match scrub_error(tag, body) {
                        Some(b) => TargetAction::Replace(b),
                        // Unreadable, so its text cannot be withheld field by field: nothing
                        // of it is forwarded.
                        None if tag == b'E' => TargetAction::Replace(
                            warden_wire::ErrorResponse::new(
                                warden_wire::Severity::Error,
                                "XX000",
                                "Warden withheld an error it could not read, raised by a statement that reads masked columns",
                            )
                            .encode(),
                        ),
                        None => TargetAction::Drop,
                    };
                }
                TargetAction::Forward
            }
            b'A' => {
                // A trigger or another session can put any value in a payload, and nothing
                // tells where it came from: on a masked session payloads are withheld, the
                // notification itself (process, channel) still arrives.
                let Some(channel_end) = body
                    .get(4..)
                    .and_then(|rest| rest.iter().position(|&b| b == 0))
                else {
                    return TargetAction::Drop;
                };
                if body.len() == 4 + channel_end + 2 {
                    return TargetAction::Forward;
                }
                let mut b = BytesMut::with_capacity(4 + channel_end + 7);
                b.put_u8(b'A');
                b.put_i32((4 + 4 + channel_end + 2) as i32);
                b.put_slice(&body[..4 + channel_end + 1]);
                b.put_u8(0);
                TargetAction::Replace(b.freeze())
            }
            b'Z' => {
                if body.first() == Some(&b'I') {
                    t.tx_touched = false;
                }
                t.plan = None;
                t.portal_plan = None;
                t.copy = None;
                while let Some(e) = q.pop_front() {
                    if matches!(e, Expect::Sync | Expect::Query { .. }) {
                        break;
                    }
                }
                TargetAction::Forward
            }
            _ => TargetAction::Forward,
        }
    }

    /// A run of whole DataRow frames (headers included), each written to the end of `out`
    /// masked, or as it was when its plan leaves it unchanged.
    pub fn data_rows_into(&self, frames: &[u8], out: &mut BytesMut) -> Result<(), &'static str> {
        let mut rest = frames;
        let mut t = None;
        while !rest.is_empty() {
            let len = rest
                .get(1..5)
                .map(|l| i32::from_be_bytes([l[0], l[1], l[2], l[3]]))
                .and_then(|l| usize::try_from(l).ok())
                .filter(|&l| l >= 4 && l < rest.len())
                .ok_or("a DataRow that does not match its layout")?
                + 1;
            let (frame, next) = rest.split_at(len);
            rest = next;
            let body = &frame[5..];
            let t = t.get_or_insert_with(|| self.row_plan(body));
            let TargetState {
                plan,
                counts,
                scratch,
                ..
            } = &mut **t;
            let changed = match plan.as_ref().filter(|p| p.active) {
                Some(plan) => rewrite::data_row(body, plan, self.rules(), counts, out, scratch)
                    .map_err(|m| m.0)?,
                None => false,
            };
            if !changed {
                out.extend_from_slice(frame);
            }
        }
        Ok(())
    }

    /// The target state with the plan for a DataRow in force. The hot path: the queue is
    /// locked only when no plan is.
    fn row_plan(&self, body: &[u8]) -> MutexGuard<'_, TargetState> {
        let mut t = lock(&self.target);
        if t.plan.is_none() {
            // Only the target pump takes both locks, so their order cannot deadlock.
            let q = lock(&self.queue);
            if matches!(q.front(), Some(Expect::Execute { .. })) {
                t.plan = t.portal_plan.take();
            }
        }
        if t.plan.is_none() {
            // Rows nobody described: every value is withheld.
            t.plan = Some(self.blind_plan(body));
        }
        t
    }

    /// A DataRow through [`SessionMask::target_frame`].
    fn data_row(&self, body: &[u8]) -> TargetAction {
        let mut t = self.row_plan(body);
        let TargetState {
            plan,
            counts,
            out,
            scratch,
            ..
        } = &mut *t;
        let Some(plan) = plan.as_ref().filter(|p| p.active) else {
            return TargetAction::Forward;
        };
        if out.capacity() - out.len() < body.len() + 64 {
            *out = BytesMut::with_capacity((64 * 1024).max(2 * body.len() + 64));
        }
        match rewrite::data_row(body, plan, self.rules(), counts, out, scratch) {
            Ok(true) => TargetAction::Replace(out.split().freeze()),
            Ok(false) => TargetAction::Forward,
            Err(rewrite::Malformed(why)) => TargetAction::Fail(why),
        }
    }

    /// Whether the statement the target is answering reads masked columns.
    fn front_touches(&self, q: &VecDeque<Expect>) -> bool {
        match q.front() {
            Some(Expect::Query { lineages, .. }) => {
                lineages.iter().any(|l| self.touches(l)) || lineages.is_empty()
            }
            Some(
                Expect::Parse { touches }
                | Expect::Bind { touches }
                | Expect::Execute { touches, .. },
            ) => *touches,
            Some(Expect::DescribePortal { lineage, .. }) => {
                lineage.as_ref().is_none_or(|l| self.touches(l))
            }
            _ => false,
        }
    }

    /// The plan for a RowDescription, from column origins and the statement's lineage.
    fn plan(&self, rd: &RowDescription, lineage: Option<&Lineage>, catalog: &Catalog) -> Plan {
        let fields = rd.fields();
        let rules = self.rules();
        let everywhere = self.active_rules(|r| r.scans_everything());
        let all_scans = self.active_rules(|r| r.scanner.is_some());
        // A statement the analysis could not read: every expression column is suspect.
        let fallback = OutputTaint {
            taint: Taint(
                rules
                    .rules
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| r.is_column_rule() || !r.json.is_empty())
                    .map(|(i, _)| i as RuleId)
                    .collect(),
            ),
            derived: true,
        };
        let per_col = |i: usize| -> OutputTaint {
            match lineage.map(|l| &l.outputs) {
                Some(Outputs::Known(cols)) if cols.len() == fields.len() => cols[i].clone(),
                Some(Outputs::Known(cols)) => {
                    let mut all = OutputTaint {
                        taint: Taint::none(),
                        derived: true,
                    };
                    for c in cols {
                        all.taint.extend(&c.taint);
                    }
                    all
                }
                Some(Outputs::Unknown(o)) => o.clone(),
                Some(Outputs::None) => OutputTaint::default(),
                None => fallback.clone(),
            }
        };
        let mut plan = Plan::default();
        for (i, f) in fields.iter().enumerate() {
            let lin = per_col(i);
            let mut taint = Taint::none();
            let origin = f.has_origin();
            if origin {
                if let Some(t) = catalog.origin(f.table_oid, f.column_attr) {
                    taint.extend(t);
                }
                // Through the lineage only what is derived: a plain column's own origin is
                // exact, and a wrong count must not spill one column's rules onto another.
                if lin.derived {
                    taint.extend(&lin.taint);
                }
            } else {
                taint.extend(&lin.taint);
            }
            let taint = self.active_taint(&taint);
            let column_rule = taint
                .0
                .iter()
                .copied()
                .find(|&r| rules.rules[usize::from(r)].is_column_rule());
            let json_rules: Vec<RuleId> = taint
                .0
                .iter()
                .copied()
                .filter(|&r| !rules.rules[usize::from(r)].json.is_empty())
                .collect();
            let action = if let Some(r) = column_rule {
                Action::Mask(r)
            } else if !json_rules.is_empty() {
                let paths: Vec<(RuleId, JsonPath)> = if origin && !lin.derived {
                    catalog
                        .json_paths(f.table_oid, f.column_attr)
                        .iter()
                        .filter(|(r, _)| self.is_active(*r))
                        .cloned()
                        .collect()
                } else {
                    Vec::new()
                };
                if paths.is_empty() {
                    // A value extracted or computed from a masked document: masked whole.
                    Action::Mask(json_rules[0])
                } else {
                    Action::Json(paths)
                }
            } else {
                Action::Keep
            };
            let mut scans = everywhere.clone();
            if origin {
                scans.extend(
                    catalog
                        .scans(f.table_oid, f.column_attr)
                        .iter()
                        .copied()
                        .filter(|&r| self.is_active(r)),
                );
            } else {
                // An expression may carry any column's content.
                scans.clone_from(&all_scans);
            }
            scans.sort_unstable();
            scans.dedup();
            if matches!(action, Action::Mask(_)) {
                scans.clear();
            }
            plan.active |= !matches!(action, Action::Keep) || !scans.is_empty();
            plan.cols.push(ColPlan {
                action,
                scans,
                binary: f.format == 1,
                type_oid: f.type_oid,
            });
        }
        plan
    }

    /// The plan for COPY TO rows: the lineage's columns (COPY has no RowDescription).
    fn copy_plan(&self, lineage: Option<&Lineage>, body: &[u8]) -> Option<Plan> {
        let width = body
            .get(1..3)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)?;
        let cols = match lineage.map(|l| &l.outputs) {
            Some(Outputs::Known(cols)) if cols.len() == width => cols.clone(),
            Some(Outputs::Unknown(o)) => vec![o.clone(); width],
            _ => return None,
        };
        let all_scans = self.active_rules(|r| r.scanner.is_some());
        let mut plan = Plan::default();
        for c in cols {
            let taint = self.active_taint(&c.taint);
            // Whole values: a COPY row carries no origin to find JSON paths by.
            let action = taint.0.first().map_or(Action::Keep, |&r| Action::Mask(r));
            let scans = if matches!(action, Action::Keep) {
                all_scans.clone()
            } else {
                Vec::new()
            };
            plan.active |= !matches!(action, Action::Keep) || !scans.is_empty();
            plan.cols.push(ColPlan {
                action,
                scans,
                binary: false,
                type_oid: 25,
            });
        }
        Some(plan)
    }

    /// A plan masking every column of a row nobody described.
    fn blind_plan(&self, body: &[u8]) -> Plan {
        let width = body
            .get(0..2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
            .unwrap_or(0);
        let rule = (0..self.active.len())
            .find(|&i| self.active[i])
            .unwrap_or(0) as RuleId;
        Plan {
            cols: vec![
                ColPlan {
                    action: Action::Mask(rule),
                    scans: Vec::new(),
                    binary: true,
                    type_oid: 0,
                };
                width
            ],
            active: true,
        }
    }
}

/// Ends the Describe at the front of the queue, if one is there: a portal's plan (`None`:
/// no rows, or an unreadable answer) is kept for its Execute, and the answer to the
/// gateway's own Describe is not forwarded.
fn end_describe(
    q: &mut VecDeque<Expect>,
    t: &mut TargetState,
    plan: Option<Plan>,
) -> Option<TargetAction> {
    match q.front() {
        Some(Expect::DescribeStatement) => {
            q.pop_front();
            Some(TargetAction::Forward)
        }
        Some(Expect::DescribePortal { injected, .. }) => {
            let injected = *injected;
            q.pop_front();
            t.portal_plan = plan;
            Some(if injected {
                TargetAction::Drop
            } else {
                TargetAction::Forward
            })
        }
        _ => None,
    }
}

fn pop_if(q: &mut VecDeque<Expect>, f: impl Fn(&Expect) -> bool) -> TargetAction {
    if q.front().is_some_and(f) {
        q.pop_front();
    }
    TargetAction::Forward
}

fn unknown_lineage() -> Lineage {
    Lineage {
        outputs: Outputs::Unknown(OutputTaint::default()),
        predicates: Vec::new(),
        touches: Taint::none(),
        refusal: None,
    }
}

/// Splits the NUL-terminated string at the start of `b` from the rest.
fn cstr_split(b: &[u8]) -> (&str, &[u8]) {
    match b.iter().position(|&c| c == 0) {
        Some(end) => (
            std::str::from_utf8(&b[..end]).unwrap_or("\u{fffd}"),
            &b[end + 1..],
        ),
        None => ("\u{fffd}", &[]),
    }
}

/// Masking is compiled per connection; sessions share it.
pub struct ConnectionMasking {
    /// Catalog and rules.
    pub handle: Arc<CatalogHandle>,
}

impl ConnectionMasking {
    /// Masking for a session of `identity`, or `None` when every rule exempts it.
    pub async fn for_session(
        &self,
        identity: &warden_types::Identity,
    ) -> Result<Option<SessionMask>, String> {
        let active = self.handle.rules().active_for(identity);
        if !active.iter().any(|&a| a) {
            return Ok(None);
        }
        let catalog = self.handle.get().await?;
        Ok(Some(SessionMask::new(self.handle.clone(), catalog, active)))
    }
}

#[cfg(test)]
mod tests;
