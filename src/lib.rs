//! mcp-gateway: a Model Context Protocol gateway on Cloudflare Pingora.
//!
//! Clients speak MCP streamable HTTP (JSON-RPC over POST, SSE streams over GET) to the
//! gateway; the gateway checks each request (DNS-rebinding guard, media types, size, JSON-RPC
//! shape), forwards it to the configured upstream MCP server over pooled connections, and
//! streams the answer back. See `docs/architecture.md` for the module map and phase chart.
//!
//! The dependency rule: only [`proxy`] touches Pingora's `Session`; every other module takes
//! plain inputs and returns plain outputs or an [`error::Reject`].

#![forbid(unsafe_code)]

pub mod admin;
pub mod approval;
pub mod approvals_cmd;
pub mod audit;
pub mod auth;
pub mod caps;
pub mod cli;
pub mod config;
pub mod decision;
pub mod digest;
pub mod endpoints;
pub mod error;
pub mod guard;
pub mod http_client;
pub mod identity;
pub mod mcp;
pub mod metrics;
pub mod policy;
pub mod policy_cmd;
pub mod proxy;
pub mod quota;
pub mod registry;
pub mod rundir;
pub mod server;
pub mod session;
pub mod state;
pub mod store;
pub mod tools_cmd;
pub mod trace;
pub mod upstreams;
pub mod vault;
pub mod vserver;
