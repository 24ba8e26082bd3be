//! Sync: end of an extended-query batch; the server answers with ReadyForQuery.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// End of an extended-query batch; the server answers with ReadyForQuery.
    Sync,
    tags::frontend::SYNC,
    &[Side::Frontend]
);
