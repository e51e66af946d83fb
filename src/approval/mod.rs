//! Human approval bound to the exact call: a `tools/call` an `approvals` rule (or a virtual
//! server's `require_approval: destructive`) covers does not reach its upstream until a
//! person has approved that very call, and then exactly once.
//!
//! The flow, without client elicitation (any MCP client works):
//! 1. The first call is refused with an approval id, the approver-facing URL and a
//!    `retryAfter` hint ([`crate::error::Reject::ApprovalRequired`]); a pending
//!    [`Approval`] is stored under the call's [`Binding`].
//! 2. An approver approves or denies it through the admin API (`/admin/approvals`) or
//!    `mcp-gateway approvals`.
//! 3. The identical retry consumes the approval and goes upstream; the next identical call
//!    needs a new approval. Retries before the decision get the same id; after a denial,
//!    [`crate::error::Reject::ApprovalDenied`] until it expires.
//!
//! The binding ([`binding`]) covers the caller, the virtual server (or the route's
//! upstream), `upstream.tool`, the canonical arguments of the bytes the upstream will run
//! and the configuration version: any other argument, caller or tool is a new request, and
//! a reload that changes the rules voids outstanding approvals.
//!
//! Layout: `binding` (canonical arguments, the digest), `record` (the [`Approval`]),
//! `store` (the [`ApprovalStore`] trait), `memory` and `redis` (its two backends), `clock`
//! (expiry time tests can move), `gate` (the decision step and the admin operations, on
//! [`Approvals`]). Docs: `docs/approvals.md`.

mod binding;
mod clock;
mod gate;
mod memory;
mod record;
mod redis;
mod store;

pub use binding::{bind, canonical_arguments, canonical_value, Binding, CallIdentity};
pub use clock::{rfc3339, Clock};
pub use gate::{may_be_destructive, Approvals, MAX_LIST};
pub use memory::MemoryApprovals;
pub use record::{valid_id, Approval, State, Verdict, MAX_PREVIEW_BYTES};
pub use redis::RedisApprovals;
pub use store::{ApprovalStore, DecideError, StoreError};
