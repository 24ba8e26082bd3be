//! Approvals: statements held for review, time-bound access requests, and the webhooks
//! that tell people about them.
#![forbid(unsafe_code)]

pub mod hub;
pub mod webhook;
