//! ParseComplete: a Parse succeeded.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// A Parse succeeded.
    ParseComplete,
    tags::backend::PARSE_COMPLETE,
    &[Side::Backend]
);
