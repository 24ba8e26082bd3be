//! EmptyQueryResponse: the query string was empty (sent instead of CommandComplete).

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// The query string was empty (sent instead of CommandComplete).
    EmptyQueryResponse,
    tags::backend::EMPTY_QUERY_RESPONSE,
    &[Side::Backend]
);
