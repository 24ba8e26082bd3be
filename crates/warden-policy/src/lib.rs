//! Policy decisions that need no I/O: which connections and target roles an identity may
//! use ([`access`]), what a SQL statement does ([`statement`]), and whether it may run
//! ([`rules`]).
#![forbid(unsafe_code)]

pub mod access;
pub mod rules;
pub mod statement;
