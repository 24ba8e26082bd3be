//! Just-in-time target credentials: a PostgreSQL role per session, created with a
//! pre-hashed SCRAM verifier, renewed while the session lives, dropped when it ends, and
//! swept if Warden dies before it can drop it.
#![forbid(unsafe_code)]

pub mod jit;
pub mod scram;
pub mod sql;

pub use jit::{JitError, JitLease, JitManager, JitSettings, SessionInfo};
pub use scram::{ScramError, ScramKey};
