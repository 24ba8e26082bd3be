//! BindComplete: a Bind succeeded.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// A Bind succeeded.
    BindComplete,
    tags::backend::BIND_COMPLETE,
    &[Side::Backend]
);
