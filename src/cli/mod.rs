//! The binary's subcommands, one module per job; `main.rs` parses and dispatches.

pub(crate) mod args;
pub(crate) mod commands;
pub(crate) mod run_cmd;
