//! Flush: ask the server to send what it has buffered.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// Asks the server to send what it has buffered.
    Flush,
    tags::frontend::FLUSH,
    &[Side::Frontend]
);
