//! LightSpeed's process managers: they react to the event log (and to a few jobs that are not
//! events), call PSPs and merchant endpoints, and record what happened as commands on the
//! ledger.

pub mod queue;
