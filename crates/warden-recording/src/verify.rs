//! Verifying a recording: [`verify_file`].
//!
//! Verification reads the raw bytes (it never re-serialises) and names what was done to
//! a file rather than only saying "bad":
//!
//! 1. **Chain.** Each line's recorded hash must equal `SHA-256(prev || json)` with `prev`
//!    the recorded hash of the line before it. A line that does not chain in place is
//!    checked against the line holding its `seq - 1` instead:
//!    * it chains from that line → the line is intact but *misplaced* (order problem);
//!    * no line holds `seq - 1` → its predecessor is gone (*dropped*);
//!    * otherwise → [`ProblemKind::Edited`]. When the following line chains from this
//!      line's *computed* hash, it was the recorded hash that was changed.
//! 2. **Sequence.** `seq` must count up from 0 without gaps. A jump names the skipped
//!    seqs: those found later in the file are [`ProblemKind::Reordered`], those found
//!    nowhere are [`ProblemKind::Dropped`]. A seq seen before is
//!    [`ProblemKind::Duplicated`]. Edited lines take the expected slot (their `seq` is
//!    not trusted), so one edit gives one problem.
//! 3. **Shape.** Seq 0 is the `session_start` of this session; nothing follows the
//!    `session_end`; the end is there and the tail is whole when the caller says the
//!    session is complete; the final hash matches the anchor when the caller gives one.
//!
//! A plain hash chain is tamper-evident relative to an anchor: someone who rewrites the
//! whole file can recompute every hash. Pass the final hash anchored in the store as
//! [`VerifyOptions::expected_final_hash`] to close that gap.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::event::{Event, EventBody};
use crate::line::{
    chain_hash, genesis, read_line, skip_line, split_line, LineRead, Split, BAD_SEPARATOR,
    MAX_LINE_BYTES, NOT_HEX, NO_PREFIX,
};

/// At most this much JSON of lines that do not chain in place is kept for the second
/// pass; beyond it such lines are reported as edited without further analysis.
const PENDING_JSON_CAP: usize = 64 * 1024 * 1024;

/// How many seqs or lines a detail message lists before "…".
const LIST_MAX: usize = 8;

/// What the caller knows about the recording.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// The session is over (the store says it ended), so a torn tail and a missing
    /// `session_end` are problems. When false they are only reported in
    /// [`VerifyReport::torn_tail`] and [`VerifyReport::complete`] (a gateway that was
    /// killed, or a session still running).
    pub expect_complete: bool,
    /// The final hash anchored elsewhere (the store's session-end chain). A mismatch is
    /// [`ProblemKind::ChainBroken`]: lines were removed from or added to the end, or the
    /// file was rewritten with recomputed hashes.
    pub expected_final_hash: Option<String>,
}

impl VerifyOptions {
    /// Options for a session as its index row describes it: a `complete` session is held
    /// to its indexed final hash; a live or incomplete one only to its own chain.
    pub fn for_status(status: &str, final_hash: Option<&str>) -> VerifyOptions {
        let complete = status == "complete";
        VerifyOptions {
            expect_complete: complete,
            expected_final_hash: final_hash.filter(|_| complete).map(str::to_owned),
        }
    }
}

/// Kinds of problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// The hash of this line's JSON does not match its recorded hash (the event or the
    /// recorded hash was changed).
    Edited,
    /// The recorded hashes do not connect and the seqs do not explain why (or the
    /// recording belongs to another session, or the final hash is not the anchored one).
    ChainBroken,
    /// Seqs are missing; the detail names them.
    Dropped,
    /// Seqs are out of order; the detail names them.
    Reordered,
    /// A seq appears twice.
    Duplicated,
    /// A line is not `<64 hex> <event JSON>`, or the events break the session's shape.
    Malformed,
    /// The file ends with a partial line (a problem only for a complete session).
    TornTail,
    /// No `session_end` (a problem only for a complete session).
    MissingEnd,
}

impl ProblemKind {
    /// Lower-case name used in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Edited => "edited",
            ProblemKind::ChainBroken => "chain broken",
            ProblemKind::Dropped => "dropped",
            ProblemKind::Reordered => "reordered",
            ProblemKind::Duplicated => "duplicated",
            ProblemKind::Malformed => "malformed",
            ProblemKind::TornTail => "torn tail",
            ProblemKind::MissingEnd => "missing end",
        }
    }
}

impl fmt::Display for ProblemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// File line, from 1.
    pub line: usize,
    /// The seq the line claims; for a line too damaged to parse, the seq its place in
    /// the file implies (the detail then says so); `None` when neither is known.
    pub seq: Option<u64>,
    /// What kind of problem.
    pub kind: ProblemKind,
    /// Human-readable detail (names missing/misplaced seqs and other lines).
    pub detail: String,
}

impl fmt::Display for Problem {
    /// `line 7 (seq 6): edited: …`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.seq {
            Some(s) => write!(
                f,
                "line {} (seq {s}): {}: {}",
                self.line, self.kind, self.detail
            ),
            None => write!(f, "line {}: {}: {}", self.line, self.kind, self.detail),
        }
    }
}

/// The outcome of [`verify_file`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Everything found, ordered by line.
    pub problems: Vec<Problem>,
    /// Committed lines that parsed as events.
    pub events: u64,
    /// The recorded hash of the last committed line (the chain head).
    pub final_hash: Option<String>,
    /// The last committed line is a `session_end`.
    pub complete: bool,
    /// The file ends with a partial line.
    pub torn_tail: bool,
    /// Committed (newline-terminated) lines.
    pub lines: usize,
}

impl VerifyReport {
    /// No problems.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The problems of one kind.
    pub fn of_kind(&self, kind: ProblemKind) -> impl Iterator<Item = &Problem> {
        self.problems.iter().filter(move |p| p.kind == kind)
    }
}

impl fmt::Display for VerifyReport {
    /// One problem per line; nothing for a clean report.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Verifies the recording at `path` of session `session_id` with default options (not
/// known to be complete, no anchor). Errors only when the file cannot be read.
pub fn verify_file(path: &Path, session_id: &str) -> io::Result<VerifyReport> {
    verify_file_with(path, session_id, &VerifyOptions::default())
}

/// Verifies the recording at `path` of session `session_id`. Errors only when the file
/// cannot be read; everything about its content is in the report.
pub fn verify_file_with(
    path: &Path,
    session_id: &str,
    options: &VerifyOptions,
) -> io::Result<VerifyReport> {
    let mut r = BufReader::with_capacity(64 * 1024, File::open(path)?);
    let mut v = Verifier::new(session_id);
    v.scan(&mut r)?;
    Ok(v.finish(options))
}

/// What an event is, as far as the shape checks care.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum What {
    Start,
    End,
    Other,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    /// No usable `<hash> ` prefix: not part of the chain.
    Garbage,
    /// Chains from the line before it.
    InPlace,
    /// Prefix not hex: content cannot be checked.
    NoHash,
    /// Did not chain in place; classified in the second pass.
    Pending,
    /// Intact, chains from the line holding `seq - 1`, which is elsewhere.
    Misplaced,
    /// Its `seq - 1` is in no line.
    Orphan,
    /// Content or recorded hash changed.
    Edited,
    /// A correctly chained first line of another session.
    WrongSession,
}

#[derive(Debug)]
struct Rec {
    line: usize,
    hash: Option<[u8; 32]>,
    /// `SHA-256(prev || json)` with the file predecessor (the one that matched, if any).
    calc: Option<[u8; 32]>,
    seq: Option<u64>,
    what: Option<What>,
    status: Status,
    /// The next line chained from `calc`, not from the recorded hash.
    next_via_calc: bool,
    /// Rarely present, boxed to keep the per-line record small (about 100 bytes).
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    start_sid: Option<String>,
    parse_error: Option<String>,
    /// Kept for lines that did not chain in place.
    json: Option<Vec<u8>>,
}

impl Rec {
    fn chain_value(&self) -> Option<[u8; 32]> {
        self.hash.or(self.calc)
    }

    fn start_sid(&self) -> Option<&str> {
        self.extra.as_ref()?.start_sid.as_deref()
    }

    fn parse_error(&self) -> Option<&str> {
        self.extra.as_ref()?.parse_error.as_deref()
    }

    fn json(&self) -> Option<&[u8]> {
        self.extra.as_ref()?.json.as_deref()
    }
}

/// Where each slot lands in the sequence analysis.
#[derive(Clone, Copy)]
enum Slot {
    Skip,
    Expected,
    Seq(u64),
}

struct Verifier<'a> {
    session_id: &'a str,
    genesis: [u8; 32],
    recs: Vec<Rec>,
    problems: Vec<Problem>,
    events: u64,
    torn: Option<(usize, usize)>,
    pending_json: usize,
}

impl<'a> Verifier<'a> {
    fn new(session_id: &'a str) -> Self {
        Verifier {
            session_id,
            genesis: genesis(session_id),
            recs: Vec::new(),
            problems: Vec::new(),
            events: 0,
            torn: None,
            pending_json: 0,
        }
    }

    fn problem(&mut self, line: usize, seq: Option<u64>, kind: ProblemKind, detail: String) {
        self.problems.push(Problem {
            line,
            seq,
            kind,
            detail,
        });
    }

    /// First pass: structure, parse, in-place chain check.
    fn scan<R: io::BufRead>(&mut self, r: &mut R) -> io::Result<()> {
        let mut buf = Vec::new();
        // The values the next line may chain from, and the line they belong to.
        let mut prev: [Option<[u8; 32]>; 2] = [Some(self.genesis), None];
        let mut prev_idx: Option<usize> = None;
        let mut line = 0usize;
        loop {
            line += 1;
            match read_line(r, &mut buf)? {
                LineRead::Eof => break,
                LineRead::Torn => {
                    self.torn = Some((line, buf.len()));
                    break;
                }
                LineRead::TooLong => {
                    let ended = skip_line(r)?;
                    self.garbage(line, format!("line is longer than {MAX_LINE_BYTES} bytes"));
                    if !ended {
                        break;
                    }
                }
                LineRead::Line => {
                    let (hash, json) = match split_line(&buf) {
                        Split::Ok(h, j) => (Some(h), j),
                        Split::BadSeparator(h, j) => {
                            self.problem(line, None, ProblemKind::Malformed, BAD_SEPARATOR.into());
                            (Some(h), j)
                        }
                        Split::NotHex(j) => (None, j),
                        Split::NoPrefix => {
                            let d = if buf.is_empty() {
                                "empty line".to_owned()
                            } else {
                                NO_PREFIX.to_owned()
                            };
                            self.garbage(line, d);
                            continue;
                        }
                    };
                    let idx = self.recs.len();
                    let rec = self.line(line, hash, json, &prev);
                    if let (Some(p), Some(1)) = (prev_idx, rec.1) {
                        self.recs[p].next_via_calc = true;
                    }
                    let rec = rec.0;
                    prev = [
                        rec.chain_value(),
                        match (rec.hash, rec.calc) {
                            (Some(h), Some(c)) if h != c => Some(c),
                            _ => None,
                        },
                    ];
                    prev_idx = Some(idx);
                    self.recs.push(rec);
                }
            }
        }
        Ok(())
    }

    fn garbage(&mut self, line: usize, detail: String) {
        self.recs.push(Rec {
            line,
            hash: None,
            calc: None,
            seq: None,
            what: None,
            status: Status::Garbage,
            next_via_calc: false,
            extra: None,
        });
        self.problem(line, None, ProblemKind::Malformed, detail);
    }

    /// Builds the record of a line with a prefix; also returns which `prev` candidate it
    /// chained from.
    fn line(
        &mut self,
        line: usize,
        hash: Option<[u8; 32]>,
        json: &[u8],
        prev: &[Option<[u8; 32]>; 2],
    ) -> (Rec, Option<usize>) {
        let mut matched = None;
        let mut calc = None;
        for (i, p) in prev.iter().enumerate() {
            let Some(p) = p else { continue };
            let c = chain_hash(p, json);
            if calc.is_none() {
                calc = Some(c);
            }
            if hash == Some(c) {
                calc = Some(c);
                matched = Some(i);
                break;
            }
        }

        let parsed: Result<Event, String> = match std::str::from_utf8(json) {
            Err(_) => Err("not valid UTF-8".to_owned()),
            Ok(_) => serde_json::from_slice::<Event>(json).map_err(|e| e.to_string()),
        };
        let (seq, what, start_sid, parse_error) = match parsed {
            Ok(ev) => {
                self.events += 1;
                let (what, sid) = match ev.body {
                    EventBody::SessionStart(s) => (What::Start, Some(s.session_id)),
                    EventBody::SessionEnd(_) => (What::End, None),
                    _ => (What::Other, None),
                };
                (Some(ev.seq), Some(what), sid, None)
            }
            Err(e) => (None, None, None, Some(e)),
        };

        let status = if hash.is_none() {
            let mut d = NOT_HEX.to_owned();
            if let Some(e) = &parse_error {
                d.push_str(&format!("; the JSON is not an event either: {e}"));
            }
            self.problem(line, seq, ProblemKind::Malformed, d);
            Status::NoHash
        } else if matched.is_some() {
            if let Some(e) = &parse_error {
                self.problem(
                    line,
                    None,
                    ProblemKind::Malformed,
                    format!("the hash matches but the JSON is not an event: {e}"),
                );
            }
            Status::InPlace
        } else {
            Status::Pending
        };
        let json =
            if status == Status::Pending && self.pending_json + json.len() <= PENDING_JSON_CAP {
                self.pending_json += json.len();
                Some(json.to_vec())
            } else {
                None
            };
        (
            Rec {
                line,
                hash,
                calc,
                seq,
                what,
                status,
                next_via_calc: false,
                extra: if start_sid.is_some() || parse_error.is_some() || json.is_some() {
                    Some(Box::new(Extra {
                        start_sid,
                        parse_error,
                        json,
                    }))
                } else {
                    None
                },
            },
            matched,
        )
    }

    /// Second pass over lines that did not chain in place.
    fn classify(&mut self) {
        let mut seq_first: HashMap<u64, usize> = HashMap::new();
        for (i, r) in self.recs.iter().enumerate() {
            if let Some(s) = r.seq {
                seq_first.entry(s).or_insert(i);
            }
        }
        for i in 0..self.recs.len() {
            if self.recs[i].status != Status::Pending {
                continue;
            }
            let status = self.classify_one(i, &seq_first);
            self.recs[i].status = status;
        }
    }

    fn classify_one(&self, i: usize, seq_first: &HashMap<u64, usize>) -> Status {
        let r = &self.recs[i];
        let (Some(json), Some(hash), Some(s)) = (r.json(), r.hash, r.seq) else {
            return Status::Edited;
        };
        if s == 0 && r.what == Some(What::Start) {
            if let Some(sid) = r.start_sid() {
                if sid != self.session_id && chain_hash(&genesis(sid), json) == hash {
                    return Status::WrongSession;
                }
            }
        }
        let pred = if s == 0 {
            Some(self.genesis)
        } else {
            seq_first
                .get(&(s - 1))
                .and_then(|&p| self.recs[p].chain_value())
        };
        if let Some(p) = pred {
            if chain_hash(&p, json) == hash {
                return Status::Misplaced;
            }
        }
        if s > 0 && !seq_first.contains_key(&(s - 1)) {
            // Its predecessor is nowhere: dropped, unless the seq itself is implausible
            // (the next line counts on from somewhere lower: the seq was edited).
            let next_seq = self.recs[i + 1..]
                .iter()
                .find(|n| n.status != Status::Garbage)
                .and_then(|n| n.seq);
            if next_seq.is_none_or(|n| n > s) {
                return Status::Orphan;
            }
        }
        Status::Edited
    }

    fn slot(r: &Rec) -> Slot {
        match (&r.status, r.seq) {
            (Status::Garbage, _) => Slot::Skip,
            (Status::Edited, _) | (_, None) => Slot::Expected,
            (_, Some(s)) => Slot::Seq(s),
        }
    }

    /// Reports edited lines and other-session starts.
    fn report_chain(&mut self) {
        let mut found = Vec::new();
        for r in &self.recs {
            match &r.status {
                Status::Edited => {
                    let detail = if r.next_via_calc {
                        "the recorded hash was changed (the event itself is intact: the next \
                         line follows from its real hash)"
                            .to_owned()
                    } else if r.json().is_none() && r.hash.is_some() && r.seq.is_some() {
                        "the hash does not match the line's content (not analysed further: \
                         too many changed lines)"
                            .to_owned()
                    } else if let Some(e) = r.parse_error() {
                        format!(
                            "the hash does not match the line's content, which no longer \
                             parses as an event ({e})"
                        )
                    } else {
                        "the hash does not match the line's content: the event was changed \
                         (or the line before it was replaced)"
                            .to_owned()
                    };
                    found.push((r.line, r.seq, ProblemKind::Edited, detail));
                }
                Status::WrongSession => found.push((
                    r.line,
                    r.seq,
                    ProblemKind::ChainBroken,
                    format!(
                        "this is a recording of session {}, not of session {}",
                        r.start_sid().unwrap_or("?"),
                        self.session_id
                    ),
                )),
                _ => {}
            }
        }
        for (line, seq, kind, detail) in found {
            self.problem(line, seq, kind, detail);
        }
    }

    /// Sequence analysis: gaps (dropped or reordered) and duplicates.
    fn report_sequence(&mut self) -> bool {
        let slots: Vec<Slot> = self.recs.iter().map(Self::slot).collect();
        let mut present: Vec<u64> = Vec::new();
        let mut line_of: HashMap<u64, usize> = HashMap::new();
        for (r, slot) in self.recs.iter().zip(&slots) {
            if let Slot::Seq(s) = *slot {
                present.push(s);
                line_of.entry(s).or_insert(r.line);
            }
        }
        present.sort_unstable();
        present.dedup();

        let mut found = Vec::new();
        let mut seen: HashMap<u64, usize> = HashMap::new();
        let mut deferred: HashSet<u64> = HashSet::new();
        let mut max_seen: Option<u64> = None;
        let mut implied: Vec<(usize, u64)> = Vec::new();
        for (r, slot) in self.recs.iter().zip(&slots) {
            let expected = max_seen.map_or(0, |m| m.saturating_add(1));
            let s = match *slot {
                Slot::Skip => continue,
                Slot::Expected => {
                    if r.seq.is_none() {
                        implied.push((r.line, expected));
                    }
                    expected
                }
                Slot::Seq(s) => s,
            };
            if s > expected {
                let lo = present.partition_point(|&x| x < expected);
                let hi = present.partition_point(|&x| x < s);
                let later = &present[lo..hi];
                if !later.is_empty() {
                    let mut list: Vec<String> = later
                        .iter()
                        .take(LIST_MAX)
                        .map(|x| format!("{x} (line {})", line_of[x]))
                        .collect();
                    if later.len() > LIST_MAX {
                        list.push(format!("… {} more", later.len() - LIST_MAX));
                    }
                    found.push((
                        r.line,
                        Some(s),
                        ProblemKind::Reordered,
                        format!(
                            "seq {s} comes before {} {}, which follow{} later in the file",
                            plural(later.len(), "seq", "seqs"),
                            list.join(", "),
                            if later.len() == 1 { "s" } else { "" }
                        ),
                    ));
                    deferred.extend(later.iter().copied());
                }
                let missing = complement(expected, s, later);
                if !missing.is_empty() {
                    let n: u64 = missing.iter().map(|(a, b)| b - a + 1).sum();
                    found.push((
                        r.line,
                        Some(s),
                        ProblemKind::Dropped,
                        format!(
                            "{} {} {} missing (no line holds {})",
                            plural(n as usize, "seq", "seqs"),
                            ranges(&missing),
                            if n == 1 { "is" } else { "are" },
                            if n == 1 { "it" } else { "them" },
                        ),
                    ));
                }
            } else if s < expected {
                if let Some(&first) = seen.get(&s) {
                    found.push((
                        r.line,
                        Some(s),
                        ProblemKind::Duplicated,
                        format!("seq {s} already appeared at line {first}"),
                    ));
                } else if !deferred.remove(&s) {
                    found.push((
                        r.line,
                        Some(s),
                        ProblemKind::Reordered,
                        format!("seq {s} comes after seq {}", expected - 1),
                    ));
                }
            }
            seen.entry(s).or_insert(r.line);
            max_seen = Some(max_seen.map_or(s, |m| m.max(s)));
        }
        // Lines too damaged to parse get the seq their place implies.
        for (line, seq) in implied {
            for p in self.problems.iter_mut().filter(|p| p.line == line) {
                if p.seq.is_none() {
                    p.seq = Some(seq);
                    p.detail.push_str(" (its place implies this seq)");
                }
            }
        }
        let any = !found.is_empty();
        for (line, seq, kind, detail) in found {
            self.problem(line, seq, kind, detail);
        }
        any
    }

    /// Misplaced or orphaned lines that the sequence analysis did not explain.
    fn report_unexplained(&mut self, explained: bool) {
        if explained {
            return;
        }
        let found: Vec<(usize, Option<u64>)> = self
            .recs
            .iter()
            .filter(|r| matches!(r.status, Status::Misplaced | Status::Orphan))
            .map(|r| (r.line, r.seq))
            .collect();
        for (line, seq) in found {
            self.problem(
                line,
                seq,
                ProblemKind::ChainBroken,
                "the recorded hash does not follow from the line before it".to_owned(),
            );
        }
    }

    /// Session shape: start first, nothing after the end (by seq, so a reordered end is
    /// not also "followed" by events). Returns whether the session is complete: the
    /// event with the highest seq is a `session_end`.
    fn report_shape(&mut self) -> bool {
        let trusted = |r: &&Rec| {
            r.seq.is_some()
                && !matches!(
                    r.status,
                    Status::Garbage | Status::Edited | Status::WrongSession
                )
        };
        let mut found = Vec::new();
        for r in self.recs.iter().filter(trusted) {
            match (r.what, r.seq) {
                (Some(What::Start), Some(s)) if s != 0 => {
                    found.push((r.line, r.seq, format!("session_start at seq {s}")))
                }
                (Some(What::Start), _) => {
                    if let Some(sid) = r.start_sid().filter(|s| *s != self.session_id) {
                        found.push((
                            r.line,
                            r.seq,
                            format!(
                                "the session_start names session {sid}, the recording is of {}",
                                self.session_id
                            ),
                        ));
                    }
                }
                (Some(_), Some(0)) => {
                    found.push((r.line, r.seq, "seq 0 is not a session_start".to_owned()))
                }
                _ => {}
            }
        }
        let end = self
            .recs
            .iter()
            .filter(trusted)
            .find(|r| r.what == Some(What::End))
            .map(|r| (r.line, r.seq.unwrap_or(0)));
        if let Some((end_line, end_seq)) = end {
            if let Some(r) = self
                .recs
                .iter()
                .filter(trusted)
                .find(|r| r.seq.is_some_and(|s| s > end_seq))
            {
                found.push((
                    r.line,
                    r.seq,
                    format!("event after the session_end (seq {end_seq}, line {end_line})"),
                ));
            }
        }
        let highest = self
            .recs
            .iter()
            .filter(trusted)
            .max_by_key(|r| (r.seq, std::cmp::Reverse(r.line)));
        let last = self
            .recs
            .iter()
            .rev()
            .find(|r| !matches!(r.status, Status::Garbage));
        let complete = highest.is_some_and(|r| r.what == Some(What::End))
            || last.is_some_and(|r| r.status == Status::Edited && r.what == Some(What::End));
        for (line, seq, detail) in found {
            self.problem(line, seq, ProblemKind::Malformed, detail);
        }
        complete
    }

    fn finish(mut self, options: &VerifyOptions) -> VerifyReport {
        self.classify();
        self.report_chain();
        let explained = self.report_sequence();
        self.report_unexplained(explained);
        let complete = self.report_shape();

        let last = self
            .recs
            .iter()
            .rev()
            .find(|r| !matches!(r.status, Status::Garbage));
        let final_hash = last.and_then(|r| r.hash).map(hex::encode);
        let last_line = self.recs.last().map(|r| r.line);
        let last_seq = last.and_then(|r| r.seq);
        let torn = self.torn;

        if self.recs.is_empty() {
            self.problem(
                1,
                None,
                ProblemKind::Malformed,
                "empty recording: no session_start".to_owned(),
            );
        }
        if let (Some((line, bytes)), true) = (torn, options.expect_complete) {
            self.problem(
                line,
                None,
                ProblemKind::TornTail,
                format!(
                    "the file ends with a partial line ({bytes} bytes without a newline) \
                     although the session is complete"
                ),
            );
        }
        if options.expect_complete && !complete {
            let detail = match last_seq {
                Some(s) => format!("no session_end: the recording stops after seq {s}"),
                None => "no session_end".to_owned(),
            };
            self.problem(
                last_line.unwrap_or(1),
                last_seq,
                ProblemKind::MissingEnd,
                detail,
            );
        }
        if let Some(expected) = &options.expected_final_hash {
            if final_hash.as_deref() != Some(expected.as_str()) {
                let at = self
                    .recs
                    .iter()
                    .find(|r| r.hash.map(hex::encode).as_deref() == Some(expected.as_str()));
                let detail = match at {
                    Some(r) => format!(
                        "the anchored final hash is that of line {}{}: the lines after it \
                         were added later",
                        r.line,
                        r.seq.map(|s| format!(" (seq {s})")).unwrap_or_default()
                    ),
                    None => format!(
                        "no line has the anchored final hash {expected}: the end of the \
                         recording was removed or the file was rewritten"
                    ),
                };
                self.problem(
                    last_line.unwrap_or(1),
                    last_seq,
                    ProblemKind::ChainBroken,
                    detail,
                );
            }
        }

        self.problems.sort_by_key(|p| p.line);
        VerifyReport {
            problems: self.problems,
            events: self.events,
            final_hash,
            complete,
            torn_tail: torn.is_some(),
            lines: last_line.unwrap_or(0),
        }
    }
}

fn plural<'s>(n: usize, one: &'s str, many: &'s str) -> &'s str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// The ranges of `[lo, hi)` not in `present` (sorted, all within `[lo, hi)`).
fn complement(lo: u64, hi: u64, present: &[u64]) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut next = lo;
    for &p in present {
        if p > next {
            out.push((next, p - 1));
        }
        next = p + 1;
    }
    if next < hi {
        out.push((next, hi - 1));
    }
    out
}

/// `5`, `5–7`, `5, 9–12`, capped.
fn ranges(r: &[(u64, u64)]) -> String {
    let mut parts: Vec<String> = r
        .iter()
        .take(LIST_MAX)
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}–{b}")
            }
        })
        .collect();
    if r.len() > LIST_MAX {
        parts.push(format!("… {} more ranges", r.len() - LIST_MAX));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use std::path::PathBuf;

    fn write_lines(dir: &Path, lines: &[Vec<u8>]) -> PathBuf {
        let p = dir.join("t.wrec");
        std::fs::write(&p, lines.concat()).unwrap();
        p
    }

    fn verify_lines(lines: &[Vec<u8>]) -> VerifyReport {
        let dir = tempfile::tempdir().unwrap();
        let p = write_lines(dir.path(), lines);
        verify_file(&p, SID).unwrap()
    }

    fn kinds(r: &VerifyReport) -> Vec<ProblemKind> {
        r.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn untouched_file_is_clean() {
        let dir = tempfile::tempdir().unwrap();
        let (path, events, fin) = write_sample(dir.path(), SID);
        let opts = VerifyOptions {
            expect_complete: true,
            expected_final_hash: Some(fin.clone()),
        };
        let r = verify_file_with(&path, SID, &opts).unwrap();
        assert!(r.is_clean(), "{r}");
        assert_eq!(r.to_string(), "");
        assert_eq!(r.events, events.len() as u64);
        assert_eq!(r.lines, events.len());
        assert_eq!(r.final_hash.as_deref(), Some(fin.as_str()));
        assert!(r.complete);
        assert!(!r.torn_tail);
    }

    #[test]
    fn flipped_byte_is_edited_at_that_line() {
        let mut lines = sample_lines(SID);
        // Line 5 (seq 4) is the DROP TABLE statement; flip one byte of its SQL.
        let l = &mut lines[4];
        let pos = l.windows(4).position(|w| w == b"DROP").unwrap();
        l[pos] ^= 0x20; // 'D' -> 'd'
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Edited], "{r}");
        let p = &r.problems[0];
        assert_eq!((p.line, p.seq), (5, Some(4)));
        assert!(r.to_string().starts_with("line 5 (seq 4): edited: "), "{r}");
    }

    #[test]
    fn flipped_byte_in_every_position_of_a_line_is_detected() {
        let lines = sample_lines(SID);
        let target = 3; // line 4, seq 3
        for i in 0..lines[target].len() - 1 {
            let mut t = lines.clone();
            t[target][i] ^= 0x01;
            let r = verify_lines(&t);
            assert!(!r.is_clean(), "byte {i} flipped went unnoticed");
            // Only line 4 is blamed, whatever the byte.
            assert!(r.problems.iter().all(|p| p.line == 4), "byte {i}: {r}");
            if i > 64 {
                // Inside the JSON: named as an edit.
                assert!(
                    r.problems.iter().any(|p| p.kind == ProblemKind::Edited),
                    "byte {i}: {r}"
                );
            }
        }
    }

    #[test]
    fn deleted_line_is_dropped_naming_the_seq() {
        let mut lines = sample_lines(SID);
        lines.remove(4); // seq 4
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Dropped], "{r}");
        let p = &r.problems[0];
        assert_eq!((p.line, p.seq), (5, Some(5)));
        assert!(p.detail.contains("seq 4 is missing"), "{}", p.detail);

        // Two adjacent lines.
        let mut lines = sample_lines(SID);
        lines.drain(4..6);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Dropped], "{r}");
        assert!(r.problems[0].detail.contains("seqs 4–5 are missing"), "{r}");

        // The first line.
        let mut lines = sample_lines(SID);
        lines.remove(0);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Dropped], "{r}");
        assert!(r.problems[0].detail.contains("seq 0 is missing"), "{r}");
    }

    #[test]
    fn swapped_lines_are_reordered() {
        let mut lines = sample_lines(SID);
        lines.swap(4, 5); // seqs 4 and 5
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Reordered], "{r}");
        let p = &r.problems[0];
        assert_eq!((p.line, p.seq), (5, Some(5)));
        assert!(p.detail.contains("before seq 4 (line 6)"), "{}", p.detail);

        // A line moved much later.
        let mut lines = sample_lines(SID);
        let l = lines.remove(2);
        lines.insert(8, l);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Reordered], "{r}");
        // A line moved much earlier.
        let mut lines = sample_lines(SID);
        let l = lines.remove(8);
        lines.insert(2, l);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Reordered], "{r}");
        // The end swapped with the event before it: still complete, nothing "after" it.
        let mut lines = sample_lines(SID);
        let n = lines.len();
        lines.swap(n - 2, n - 1);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Reordered], "{r}");
        assert!(r.complete);
    }

    #[test]
    fn every_single_tampering_is_named() {
        let good = sample_lines(SID);
        let n = good.len();
        for i in 0..n - 1 {
            // Deleting any line but the last: one Dropped naming its seq.
            let mut t = good.clone();
            t.remove(i);
            let r = verify_lines(&t);
            assert_eq!(kinds(&r), vec![ProblemKind::Dropped], "delete {i}: {r}");
            assert_eq!(r.problems[0].line, i + 1);
            assert!(
                r.problems[0]
                    .detail
                    .contains(&format!("seq {i} is missing")),
                "{r}"
            );
            // Swapping any two adjacent lines: one Reordered.
            let mut t = good.clone();
            t.swap(i, i + 1);
            let r = verify_lines(&t);
            assert_eq!(kinds(&r), vec![ProblemKind::Reordered], "swap {i}: {r}");
            assert_eq!(
                (r.problems[0].line, r.problems[0].seq),
                (i + 1, Some(i as u64 + 1))
            );
        }
        for i in 0..n {
            // A byte inside any line's JSON: one Edited at that line.
            for pos in [70, good[i].len() / 2, good[i].len() - 3] {
                let mut t = good.clone();
                t[i][pos] ^= 0x04;
                let r = verify_lines(&t);
                assert_eq!(kinds(&r), vec![ProblemKind::Edited], "flip {i}/{pos}: {r}");
                assert_eq!(
                    (r.problems[0].line, r.problems[0].seq),
                    (i + 1, Some(i as u64))
                );
            }
        }
    }

    /// xorshift64*, to avoid a dependency.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    #[test]
    fn random_tampering_never_panics_and_never_verifies_against_the_anchor() {
        let dir = tempfile::tempdir().unwrap();
        let (_, _, fin) = write_sample(dir.path(), SID);
        let good = sample_lines(SID);
        let original = good.concat();
        let opts = VerifyOptions {
            expect_complete: true,
            expected_final_hash: Some(fin),
        };
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let p = dir.path().join("fuzz.wrec");
        for _ in 0..3000 {
            let mut lines = good.clone();
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(lines.len());
                match rng.below(7) {
                    0 if !lines.is_empty() => {
                        lines.remove(i);
                    }
                    1 if lines.len() > 1 => {
                        let j = rng.below(lines.len());
                        lines.swap(i, j);
                    }
                    2 if !lines.is_empty() => {
                        let l = lines[i].clone();
                        lines.insert(rng.below(lines.len() + 1), l);
                    }
                    3 if !lines.is_empty() && !lines[i].is_empty() => {
                        let pos = rng.below(lines[i].len());
                        lines[i][pos] = rng.next() as u8;
                    }
                    4 if !lines.is_empty() => {
                        let cut = rng.below(lines[i].len());
                        lines[i].truncate(cut);
                    }
                    5 => {
                        let junk: Vec<u8> = (0..rng.below(80)).map(|_| rng.next() as u8).collect();
                        lines.insert(rng.below(lines.len() + 1), junk);
                    }
                    _ => lines.truncate(i),
                }
            }
            let bytes = lines.concat();
            std::fs::write(&p, &bytes).unwrap();
            let r = verify_file_with(&p, SID, &opts).unwrap();
            let _ = r.to_string();
            assert_eq!(r.is_clean(), bytes == original, "{r}");
            let _ = crate::reader::read_file(&p);
        }
    }

    #[test]
    fn duplicated_line() {
        let mut lines = sample_lines(SID);
        let l = lines[3].clone();
        lines.insert(4, l);
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Duplicated], "{r}");
        assert_eq!((r.problems[0].line, r.problems[0].seq), (5, Some(3)));
    }

    #[test]
    fn altered_recorded_hash() {
        let mut lines = sample_lines(SID);
        lines[2][0] = if lines[2][0] == b'0' { b'1' } else { b'0' };
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Edited], "{r}");
        assert_eq!(r.problems[0].line, 3);
        assert!(r.problems[0].detail.contains("recorded hash was changed"));
        // Not hex at all: malformed, and the chain goes on.
        let mut lines = sample_lines(SID);
        lines[2][0] = b'x';
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Malformed], "{r}");
    }

    #[test]
    fn edited_seq_is_one_edit_not_a_cascade() {
        let mut lines = sample_lines(SID);
        let s = String::from_utf8(lines[4].clone()).unwrap();
        lines[4] = s.replacen("\"seq\":4", "\"seq\":40", 1).into_bytes();
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Edited], "{r}");
        let mut lines = sample_lines(SID);
        let s = String::from_utf8(lines[4].clone()).unwrap();
        lines[4] = s.replacen("\"seq\":4", "\"seq\":6", 1).into_bytes();
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Edited], "{r}");
    }

    #[test]
    fn rewritten_file_needs_the_anchor() {
        // Truncating the end leaves a valid chain; only the anchor tells.
        let dir = tempfile::tempdir().unwrap();
        let (path, _, fin) = write_sample(dir.path(), SID);
        let lines = sample_lines(SID);
        std::fs::write(&path, lines[..lines.len() - 2].concat()).unwrap();
        let r = verify_file(&path, SID).unwrap();
        assert!(r.is_clean(), "{r}");
        assert!(!r.complete);
        let opts = VerifyOptions {
            expect_complete: true,
            expected_final_hash: Some(fin),
        };
        let r = verify_file_with(&path, SID, &opts).unwrap();
        assert_eq!(
            kinds(&r),
            vec![ProblemKind::MissingEnd, ProblemKind::ChainBroken],
            "{r}"
        );
        // Lines appended after the anchored end.
        let anchor = String::from_utf8(lines[5][..64].to_vec()).unwrap();
        std::fs::write(&path, lines.concat()).unwrap();
        let opts = VerifyOptions {
            expect_complete: false,
            expected_final_hash: Some(anchor),
        };
        let r = verify_file_with(&path, SID, &opts).unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::ChainBroken], "{r}");
        assert!(r.problems[0].detail.contains("line 6 (seq 5)"), "{r}");
    }

    #[test]
    fn wrong_session_id() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _, _) = write_sample(dir.path(), SID);
        let r = verify_file(&path, "other-session").unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::ChainBroken], "{r}");
        assert!(r.problems[0].detail.contains(SID));
    }

    #[test]
    fn torn_tail_after_kill() {
        let lines = sample_lines(SID);
        let mut bytes = lines[..6].concat();
        bytes.extend_from_slice(&lines[6][..lines[6].len() / 2]);
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("t.wrec");
        std::fs::write(&p, &bytes).unwrap();
        let r = verify_file(&p, SID).unwrap();
        assert!(r.is_clean(), "{r}");
        assert!(r.torn_tail);
        assert!(!r.complete);
        assert_eq!(r.events, 6);
        assert_eq!(
            r.final_hash.as_deref(),
            std::str::from_utf8(&lines[5][..64]).ok()
        );
        // Told the session is complete: torn tail and missing end, still nothing else.
        let opts = VerifyOptions {
            expect_complete: true,
            ..Default::default()
        };
        let r = verify_file_with(&p, SID, &opts).unwrap();
        assert_eq!(
            kinds(&r),
            vec![ProblemKind::MissingEnd, ProblemKind::TornTail],
            "{r}"
        );
        assert!(r.problems.iter().all(|p| p.line >= 6));
    }

    #[test]
    fn hostile_inputs_never_panic() {
        let good = sample_lines(SID);
        let h = "a".repeat(64);
        let mut cases: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"\n".to_vec(),
            b"\n\n\n".to_vec(),
            b"garbage\n".to_vec(),
            b"\xff\xfe\xfd\n".to_vec(),
            vec![0u8; 5000],
            format!("{h} {{\"seq\":\"x\"}}\n").into_bytes(),
            format!("{h} {{\"seq\":18446744073709551615,\"at_us\":0,\"type\":\"notice\",\"kind\":\"\",\"message\":\"\"}}\n").into_bytes(),
            [format!("{h} ").as_bytes(), b"\xff\n"].concat(),
            format!("{} {{}}\n", "z".repeat(64)).into_bytes(),
        ];
        let mut b = good[0].clone();
        b.extend_from_slice(format!("{h} ").as_bytes());
        b.extend(std::iter::repeat_n(b'{', 50_000));
        b.push(b'\n');
        cases.push(b);
        // Every line of a good file replaced, in turn, by garbage.
        for i in 0..good.len() {
            let mut t = good.clone();
            t[i] = b"not a line\n".to_vec();
            cases.push(t.concat());
        }
        // Every line, in turn, truncated to its prefix and newline.
        for i in 0..good.len() {
            let mut t = good.clone();
            t[i] = [&good[i][..65], b"\n"].concat();
            cases.push(t.concat());
        }
        // Reversed file; the same line many times; huge seqs.
        cases.push(good.iter().rev().cloned().collect::<Vec<_>>().concat());
        cases.push(
            std::iter::repeat_n(good[1].clone(), 50)
                .collect::<Vec<_>>()
                .concat(),
        );
        for case in cases {
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("h.wrec");
            std::fs::write(&p, &case).unwrap();
            let opts = VerifyOptions {
                expect_complete: true,
                expected_final_hash: Some("nothex".into()),
            };
            let r = verify_file_with(&p, SID, &opts).unwrap();
            assert!(!r.is_clean());
            let _ = r.to_string();
        }
    }

    #[test]
    fn garbage_line_replacing_an_event() {
        let mut lines = sample_lines(SID);
        lines[4] = b"junk\n".to_vec();
        let r = verify_lines(&lines);
        assert_eq!(
            kinds(&r),
            vec![ProblemKind::Malformed, ProblemKind::Dropped],
            "{r}"
        );
        // Garbage inserted between intact lines: only malformed.
        let mut lines = sample_lines(SID);
        lines.insert(4, b"junk\n".to_vec());
        let r = verify_lines(&lines);
        assert_eq!(kinds(&r), vec![ProblemKind::Malformed], "{r}");
    }

    #[test]
    fn huge_line_is_malformed_and_scanning_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.wrec");
        let good = sample_lines(SID);
        let mut f = File::create(&p).unwrap();
        use std::io::Write;
        f.write_all(&good[0]).unwrap();
        let chunk = vec![b'7'; 1024 * 1024];
        for _ in 0..70 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
        for l in &good[1..] {
            f.write_all(l).unwrap();
        }
        drop(f);
        let r = verify_file(&p, SID).unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::Malformed], "{r}");
        assert_eq!(r.problems[0].line, 2);
        assert!(r.complete);

        // Sparse 70 MiB of NULs, no newline.
        let p = dir.path().join("sparse.wrec");
        File::create(&p).unwrap().set_len(70 * 1024 * 1024).unwrap();
        let r = verify_file(&p, SID).unwrap();
        assert_eq!(kinds(&r), vec![ProblemKind::Malformed], "{r}");
    }

    #[test]
    fn event_after_end_and_start_not_first() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::writer::SessionWriter::create(dir.path(), SID).unwrap();
        w.push(1, EventBody::Notice(Default::default()));
        w.push(
            2,
            EventBody::SessionStart(crate::event::SessionStart {
                session_id: SID.into(),
                ..Default::default()
            }),
        );
        w.push(3, EventBody::SessionEnd(Default::default()));
        let path = w.path().to_owned();
        let _ = w.finish(4, Default::default()).unwrap();
        let r = verify_file(&path, SID).unwrap();
        assert_eq!(
            kinds(&r),
            vec![
                ProblemKind::Malformed,
                ProblemKind::Malformed,
                ProblemKind::Malformed
            ],
            "{r}"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(complement(4, 5, &[]), vec![(4, 4)]);
        assert_eq!(complement(4, 10, &[5, 6, 9]), vec![(4, 4), (7, 8)]);
        assert_eq!(complement(4, 7, &[4, 5, 6]), vec![]);
        assert_eq!(ranges(&[(1, 1), (3, 5)]), "1, 3–5");
        let p = Problem {
            line: 7,
            seq: Some(6),
            kind: ProblemKind::Edited,
            detail: "x".into(),
        };
        assert_eq!(p.to_string(), "line 7 (seq 6): edited: x");
    }

    /// Throughput of verify and read. Run with
    /// `cargo test -p warden-recording --release -- --ignored --nocapture bench_`.
    #[test]
    #[ignore = "micro-benchmark; run in release with --ignored --nocapture"]
    fn bench_verify_and_read() {
        use std::time::Instant;
        const N: usize = 200_000;
        let dir = tempfile::tempdir().unwrap();
        let mut w = crate::writer::SessionWriter::create(dir.path(), SID).unwrap();
        let bodies = sample_bodies(SID);
        w.push(T0, bodies[0].1.clone());
        for i in 1..N {
            w.push(T0 + i as i64, bodies[1 + i % 9].1.clone());
            if i % 64 == 0 {
                w.flush().unwrap();
            }
        }
        let path = w.path().to_owned();
        w.finish(T0 + N as i64, Default::default()).unwrap();
        let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
        let t = Instant::now();
        let r = verify_file(&path, SID).unwrap();
        let v = t.elapsed();
        assert!(r.is_clean(), "{r}");
        let t = Instant::now();
        let rec = crate::reader::read_file(&path).unwrap();
        let rd = t.elapsed();
        assert_eq!(rec.events.len(), N + 1);
        println!(
            "verify: {} events, {mb:.1} MB in {:.0} ms ({:.0} ns/event); read: {:.0} ms; \
             {} bytes of verifier state per line",
            N + 1,
            v.as_secs_f64() * 1e3,
            v.as_nanos() as f64 / N as f64,
            rd.as_secs_f64() * 1e3,
            std::mem::size_of::<Rec>()
        );
    }
}
