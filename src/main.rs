//! The `lightspeed` binary: configuration and subcommands; wiring only.

fn main() {}
