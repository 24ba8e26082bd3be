//! CopyDone: end of COPY data, sent by either side.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// The sender has no more COPY data.
    CopyDone,
    tags::frontend::COPY_DONE,
    &[Side::Frontend, Side::Backend]
);
