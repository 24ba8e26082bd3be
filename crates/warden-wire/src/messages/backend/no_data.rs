//! NoData: the described statement or portal returns no rows.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// The described statement or portal returns no rows.
    NoData,
    tags::backend::NO_DATA,
    &[Side::Backend]
);
