//! Kafka's wire vocabulary, shared by the server and every client.
//!
//! `rest` holds the bodies of the HTTP endpoints and `ws` the WebSocket frames in both
//! directions. The shapes follow the original product brief field by field, so a client
//! written for the original keeps working; additions are optional fields or new variants.

pub mod rest;
pub mod ws;
