//! Holding statements for review: which prepared statements and portals need a review,
//! the per-session signal a cancel request uses to withdraw one, and the wait itself.
//!
//! A simple Query under a `review` rule is held whole. In the extended protocol the Parse
//! and Bind go through (preparing a statement changes nothing) and the Execute is held, so
//! the approver sees the Bind parameters and the exact (text, parameters) pair is what the
//! approval is bound to.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use warden_approvals::hub::{Hub, ReviewSpec};
use warden_wire::{Bind, Frame, Message, WireError};

use crate::record::{binary_text, param_types, value_text};

/// A connection's review settings: the hub and, by rule index, each review rule's spec.
pub struct Reviews {
    /// The gateway's approvals hub.
    pub hub: Arc<Hub>,
    /// `Some` for the connection's review rules, by rule index.
    pub specs: Vec<Option<ReviewSpec>>,
}

/// Lets a CancelRequest withdraw the review a session is waiting on.
#[derive(Debug, Default)]
pub struct HoldSignal {
    holding: AtomicBool,
    cancel: Notify,
}

impl HoldSignal {
    /// True while a statement is held.
    pub fn holding(&self) -> bool {
        self.holding.load(Ordering::Acquire)
    }

    /// Withdraws the held statement's review; false when nothing is held.
    pub fn cancel(&self) -> bool {
        if self.holding() {
            // Wakes only a registered waiter: no permit is left behind for a later hold.
            self.cancel.notify_waiters();
            true
        } else {
            false
        }
    }

    pub(crate) fn begin(&self) {
        self.holding.store(true, Ordering::Release);
    }

    pub(crate) fn end(&self) {
        self.holding.store(false, Ordering::Release);
    }

    /// Register before [`begin`](Self::begin) (`enable` the future) so no cancel is lost.
    pub(crate) fn notified(&self) -> tokio::sync::futures::Notified<'_> {
        self.cancel.notified()
    }
}

/// What a held statement shows approvers and records.
#[derive(Clone, Debug)]
pub struct Held {
    /// The deciding review rule.
    pub rule: usize,
    /// The rule's message.
    pub message: String,
    /// The statement as recorded (redacted where it may hold a secret).
    pub sql: String,
    /// Whether it was redacted (its parameters then are too).
    pub secret: bool,
    /// Riskiest class.
    pub class: &'static str,
    /// Bind parameters (extended protocol).
    pub params: Vec<Option<String>>,
    /// Extended protocol (held at Execute).
    pub extended: bool,
    /// Refused at once, without a review (a guardrail): SQLSTATE and message.
    pub refuse: Option<(&'static str, String)>,
}

#[derive(Clone)]
struct Prepared {
    held: Held,
    types: Arc<[u32]>,
}

/// Tracks prepared statements and portals that need a review, for the extended protocol.
#[derive(Default)]
pub struct ReviewTracker {
    statements: HashMap<String, Prepared>,
    portals: HashMap<String, Held>,
}

const REDACTED: &str = "<redacted>";

impl ReviewTracker {
    /// A Parse: `held` when its text needs a review, else `None` (forgets an older
    /// statement of the same name).
    pub fn parse(&mut self, name: &str, body: &[u8], held: Option<Held>) {
        match held {
            Some(held) => {
                self.statements.insert(
                    name.to_owned(),
                    Prepared {
                        held,
                        types: param_types(body).into(),
                    },
                );
            }
            None => {
                self.statements.remove(name);
            }
        }
    }

    /// A Bind: a portal of a reviewed statement remembers its parameters. A Bind that
    /// cannot be read is an error: it might bind a reviewed statement unseen.
    pub fn bind(&mut self, body: &[u8]) -> Result<(), WireError> {
        let frame = Frame::new(b'B', body);
        let b = Bind::from_frame(&frame)?;
        let Some(p) = self.statements.get(b.statement()) else {
            self.portals.remove(b.portal());
            return Ok(());
        };
        let mut held = p.held.clone();
        held.params = b
            .params()
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_ref().map(|v| {
                    if held.secret {
                        REDACTED.to_owned()
                    } else if b.param_format(i) == 1 {
                        binary_text(v, p.types.get(i).copied().unwrap_or(0))
                    } else {
                        value_text(v, false)
                    }
                })
            })
            .collect();
        self.portals.insert(b.portal().to_owned(), held);
        Ok(())
    }

    /// A Close of a statement (`b'S'`) or portal (`b'P'`).
    pub fn close(&mut self, kind: u8, name: &str) {
        match kind {
            b'S' => {
                self.statements.remove(name);
            }
            _ => {
                self.portals.remove(name);
            }
        }
    }

    /// An Execute: the review it needs, if any.
    pub fn execute(&self, portal: &str) -> Option<Held> {
        self.portals.get(portal).cloned()
    }

    /// Whether anything is tracked (skips Bind/Execute work otherwise).
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty() && self.portals.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn held() -> Held {
        Held {
            rule: 0,
            message: "m".into(),
            sql: "UPDATE t SET v = $1".into(),
            secret: false,
            class: "destructive",
            params: Vec::new(),
            extended: true,
            refuse: None,
        }
    }

    fn bind_body(portal: &str, stmt: &str, params: &[Option<&[u8]>]) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_slice(portal.as_bytes());
        b.put_u8(0);
        b.put_slice(stmt.as_bytes());
        b.put_u8(0);
        b.put_i16(0);
        b.put_i16(params.len() as i16);
        for p in params {
            match p {
                Some(v) => {
                    b.put_i32(v.len() as i32);
                    b.put_slice(v);
                }
                None => b.put_i32(-1),
            }
        }
        b.put_i16(0);
        b
    }

    #[test]
    fn portals_of_reviewed_statements_carry_their_parameters() {
        let mut t = ReviewTracker::default();
        t.parse("s1", b"s1\0UPDATE t SET v = $1\0\0\0", Some(held()));
        t.bind(&bind_body("p1", "s1", &[Some(b"x'y"), None]))
            .unwrap();
        let h = t.execute("p1").expect("held");
        assert_eq!(h.params, vec![Some("x'y".to_owned()), None]);
        // Another statement bound to the same portal is not held.
        t.parse("s2", b"s2\0SELECT 1\0\0\0", None);
        t.bind(&bind_body("p1", "s2", &[])).unwrap();
        assert!(t.execute("p1").is_none());
        // Re-parsing the name with a harmless text forgets the review.
        t.parse("s1", b"s1\0SELECT 2\0\0\0", None);
        t.bind(&bind_body("", "s1", &[])).unwrap();
        assert!(t.execute("").is_none());
        assert!(t.is_empty());
    }

    #[test]
    fn a_malformed_bind_is_an_error_and_changes_nothing() {
        let mut t = ReviewTracker::default();
        t.parse("", b"\0DROP TABLE t\0\0\0", Some(held()));
        t.bind(&bind_body("", "", &[])).unwrap();
        assert!(t.execute("").is_some());
        assert!(t.bind(b"\0").is_err());
        assert!(t.execute("").is_some());
        t.close(b'P', "");
        assert!(t.execute("").is_none());
    }

    #[test]
    fn cancel_only_signals_while_holding() {
        let s = HoldSignal::default();
        assert!(!s.cancel());
        s.begin();
        assert!(s.cancel());
        s.end();
        assert!(!s.holding());
    }
}
