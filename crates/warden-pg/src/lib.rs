//! Warden's PostgreSQL front door: the listener, the startup and authentication phase, and
//! the session engine that proxies the wire protocol between a client and its target.
//!
//! Data flows one way: [`session`] negotiates TLS and reads the token (listener), asks
//! `warden-identity` who the caller is (identity), asks `warden-policy` whether it may open
//! the connection and as which role (policy), logs in to the target with Warden's credential
//! ([`backend`], credentials), then hands both sockets to [`proxy`], which inspects statements
//! on their way through.
#![forbid(unsafe_code)]

pub mod backend;
pub mod cancel;
pub mod error;
pub mod hold;
mod io;
pub mod mask;
pub mod proxy;
pub mod record;
pub mod registry;
pub mod runtime;
pub mod session;
pub mod stream;
pub mod tls;

pub use runtime::{Runtime, RuntimeError};
pub use session::{serve, SessionThreads};
