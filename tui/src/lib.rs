//! `kafka`, Kafka's terminal UI: a ratatui client of the REST and WebSocket API that starts
//! an embedded server when none is named.
//!
//! State and updates live in [`app`] (pure), drawing in [`ui`], effects in [`driver`] and
//! [`net`], the terminal loop in [`terminal`].

pub mod app;
pub mod clipboard;
pub mod diff;
pub mod driver;
pub mod editor;
pub mod embedded;
pub mod highlight;
pub mod keymap;
pub mod live;
pub mod net;
pub mod terminal;
pub mod text_input;
pub mod ui;
