//! PortalSuspended: an Execute stopped at its row limit; the portal can be resumed.

use crate::messages::{empty_message, Side};
use crate::tags;

empty_message!(
    /// An Execute stopped at its row limit; the portal can be resumed.
    PortalSuspended,
    tags::backend::PORTAL_SUSPENDED,
    &[Side::Backend]
);
