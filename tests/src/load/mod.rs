//! `kafka-load`: load, memory and soak measurements of a server that speaks the brief,
//! through its public protocol only (REST and `/ws`), and `compare`: the same scenarios on
//! two servers (Kafka and the original) side by side, interleaved, with one client.
//!
//! Every loop here is bounded by a count or a deadline, and every address is loopback.

pub mod actions;
pub mod agent;
pub mod api;
pub mod compare;
pub mod echo;
pub mod fake;
pub mod login;
pub mod memory;
pub mod payload;
pub mod report;
pub mod soak;
pub mod stats;
pub mod target;
pub mod ws;
