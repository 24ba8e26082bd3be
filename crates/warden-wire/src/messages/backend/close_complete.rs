//! CloseComplete: a Close succeeded.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// A Close succeeded.
    CloseComplete,
    tags::backend::CLOSE_COMPLETE,
    &[Side::Backend]
);
