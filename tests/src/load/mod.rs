//! `kafka-load`: load, memory and soak measurements of a Kafka server through its public
//! protocol only (REST and `/ws`), plus the report that compares them with the original.
//!
//! Every loop here is bounded by a count or a deadline, and every address is loopback.

pub mod actions;
pub mod agent;
pub mod api;
pub mod echo;
pub mod login;
pub mod memory;
pub mod payload;
pub mod report;
pub mod soak;
pub mod stats;
pub mod target;
pub mod ws;
