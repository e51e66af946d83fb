//! The audit trail: one tamper-evident record for every MCP request and every admin write,
//! who asked for what on whose behalf and how it ended (docs/audit.md).
//!
//! - A record is one JSON line. The proxy's `logging` phase hands the writer a request's
//!   [`Facts`] (names, references); the writer thread writes the line from them
//!   ([`Facts::write`]): canonical arguments, redaction ([`redact`]), digests, the call's
//!   outcome. An admin write is an [`AdminRecord`].
//! - [`Audit`] is the handle: a bounded queue to ONE writer thread that owns the file. The
//!   writer chains each record to the previous one ([`chain`]: `prev` and `hash`), rotates
//!   by size, and fsyncs every batch; [`Audit::close`] (and dropping the handle) drains the
//!   queue, writes, fsyncs and joins, so a graceful shutdown loses nothing.
//! - [`Recent`]: the last records written, kept in memory for the admin status page.
//! - [`cli`]: `mcp-gateway audit verify` and `audit query`.
//!
//! Nothing from a request's headers is recorded, and no upstream credential ever is: the
//! record has no field a credential could land in except the client's own arguments, which
//! redaction rules cover.

mod chain;
pub mod cli;
mod recent;
mod record;
mod redact;
mod writer;

pub use chain::{verify, Break, Verified, GENESIS};
pub use recent::Recent;
pub use record::{request_id, AdminRecord, Facts, Principal, Round, MAX_ARGUMENT_BYTES};
pub use redact::redact;
pub use writer::Audit;
