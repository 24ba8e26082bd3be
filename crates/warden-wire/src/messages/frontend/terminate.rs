//! Terminate: the client closes the session.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// The client closes the session.
    Terminate,
    tags::frontend::TERMINATE,
    &[Side::Frontend]
);
