//! Policy decisions that need no I/O: which connections and target roles an identity may
//! use ([`access`]), and what a SQL statement does ([`statement`]).
#![forbid(unsafe_code)]

pub mod access;
pub mod statement;
