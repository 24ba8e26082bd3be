//! Masking of sensitive values before they reach the AI model, in-process and failing closed.
//!
//! - [`detect`] finds sensitive values (emails, payment cards, SSNs, keys, ...) inside text.
//! - [`strategy`] turns one value into its masked form (redaction, partial, keyed hash, ...).
//! - [`scan`] runs a set of detector rules over a text value and masks every match once.
//! - [`json`] masks the values at JSON paths inside a json/jsonb column value.
//! - [`lineage`] says which masked columns feed each output column of a statement, from its
//!   parse tree, and when a statement would move masked values where they cannot be masked.
//!
//! Nothing here does I/O; the proxy decides which columns get which rules.
#![forbid(unsafe_code)]

pub mod detect;
pub mod json;
pub mod lineage;
pub mod scan;
pub mod strategy;

pub use detect::{CustomDetector, DetectError, Detector};
pub use json::{JsonMaskError, JsonMasker, JsonPath};
pub use scan::{Rule, Scanner};
pub use strategy::{MaskKey, MaskKeyError, Masked, Strategy};
