//! [`Target`]: what one request is, once it is known where it goes. Plain routes and virtual
//! servers both produce one; [`super::decide`] takes it, and the proxy phases after
//! `request_filter` read it instead of flat per-request fields.

use std::sync::Arc;

use crate::config::VirtualServer;
use crate::digest::Digest;
use crate::registry::catalog::{Catalog, Entry};
use crate::upstreams::UpstreamRt;

/// Where a request goes and what it asks there.
#[derive(Debug)]
pub struct Target {
    /// The upstream, resolved once (from the route, or the tool's catalog entry).
    pub upstream: Arc<UpstreamRt>,
    /// What kind of exchange it is with the upstream.
    pub exchange: Exchange,
    /// The tool, when a virtual server routed a `tools/call` by its exposed name.
    pub tool: Option<ToolTarget>,
    /// Whose MCP session the upstream sees.
    pub session: SessionBinding,
    /// The prompt or resource, when a virtual server routed a `prompts/get` or
    /// `resources/read` by its exposed name or URI.
    pub item: Option<ItemTarget>,
}

/// A `prompts/get` or `resources/read` a virtual server routed by exposed name or URI.
/// Decision steps 1-3 apply (visibility, availability, the rename); policy, approval and
/// quota are about tool calls and do not.
#[derive(Debug)]
pub struct ItemTarget {
    /// The virtual server the request came through.
    pub server: Arc<VirtualServer>,
    /// The caller's principal class on this virtual server.
    pub class: u64,
    pub kind: crate::registry::items::Kind,
    /// The upstream's name, its own name or URI, and the one the client sent.
    pub upstream_name: String,
    pub own: String,
    pub exposed: String,
    /// Where `params.name` / `params.uri` sits in the client's body.
    pub span: std::ops::Range<usize>,
    /// The owning upstream is down.
    pub unavailable: bool,
    /// The client spoke 2026-07-28 (its envelope is taken out where the gateway
    /// translates, as for a tool call).
    pub modern_client: Option<ModernClient>,
    /// A `resources/unsubscribe` of a URI the client session holds a subscription to
    /// (`vserver::events::holds`): it only removes, so it needs no visibility (the resource
    /// may have been hidden since the subscription).
    pub held: bool,
}

/// The HTTP exchange with the upstream: it sets the peer's timeouts and whether the request
/// carries a JSON-RPC message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exchange {
    /// A POSTed JSON-RPC message.
    Message,
    /// The GET server-to-client stream (the longer stream idle timeout).
    Stream,
    /// DELETE: the client ends its session.
    EndSession,
}

/// Whose `Mcp-Session-Id` goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionBinding {
    /// A plain route: the client's session is the upstream's, passed through as sent.
    Client,
    /// A virtual server: the upstream gets its own session, opened by the gateway and kept
    /// under `digest` until `expires` (seconds since the epoch). `digest` is the client's
    /// gateway-session token (handshake era), or for a sessionless 2026-07-28 caller the
    /// key of (server, caller) (`vserver::session::modern_binding`).
    Gateway { digest: Digest, expires: u64 },
    /// A 2026-07-28 client and a 2026-07-28 upstream: no session on either side. The request
    /// goes upstream as the client sent it (its `_meta` envelope, `MCP-Protocol-Version` and
    /// `Mcp-Param-*` headers), with only the decided edits (the upstream's name in
    /// `params.name` and `Mcp-Name` together, pinned arguments), and the answer comes back
    /// as the upstream wrote it (`resultType`, an `InputRequiredResult` and its
    /// `requestState` included).
    Stateless,
}

/// A `tools/call` a virtual server routed by exposed name.
#[derive(Debug)]
pub struct ToolTarget {
    /// The virtual server the call came through.
    pub server: Arc<VirtualServer>,
    /// The catalog the name was resolved in, and the entry's position in it (visibility is
    /// decided per position and caller class).
    pub catalog: Arc<Catalog>,
    pub position: usize,
    /// The caller's principal class on this virtual server.
    pub class: u64,
    /// Whether resending the call after an upstream session was lost is harmless.
    pub retry: RetrySafety,
    /// The client spoke 2026-07-28: where the gateway translates ([`Target::translates`]),
    /// its per-request `_meta` envelope is taken out of the bytes for the handshake-era
    /// upstream session the gateway holds for it (decision step 3).
    pub modern_client: Option<ModernClient>,
}

/// A 2026-07-28 client, as its request's `_meta` envelope describes it (read once, in
/// `vserver::handle`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModernClient {
    /// What it can be asked (sampling, elicitation, roots): declared on the upstream
    /// sessions held for it, and whether its calls are bridged (`proxy::mrtr`).
    pub caps: crate::mcp::capabilities::ClientCaps,
    /// The lowest log level it asked for (`vserver::logging::floor`): log messages below it
    /// are dropped from its calls' streams.
    pub log_floor: u8,
}

impl ToolTarget {
    /// The catalog entry: exposed and upstream names, pinned arguments, availability.
    pub fn entry(&self) -> Option<&Entry> {
        self.catalog.entries.get(self.position)
    }

    /// The upstream's own name of the tool.
    pub fn upstream_tool(&self) -> Option<&str> {
        self.entry().map(|e| e.tool.as_str())
    }
}

/// Whether a call may run twice: from the tool's annotations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetrySafety {
    /// Annotated `readOnlyHint` or `idempotentHint`.
    Safe,
    /// Anything else: a resend could repeat a side effect.
    Unsafe,
}

impl RetrySafety {
    /// From a tool definition's `annotations`.
    pub fn of(definition: &serde_json::Value) -> RetrySafety {
        let hint = |k: &str| definition["annotations"][k].as_bool() == Some(true);
        if hint("readOnlyHint") || hint("idempotentHint") {
            RetrySafety::Safe
        } else {
            RetrySafety::Unsafe
        }
    }
}

impl Target {
    /// A request on a plain route.
    pub fn route(upstream: Arc<UpstreamRt>, exchange: Exchange) -> Target {
        Target {
            upstream,
            exchange,
            tool: None,
            session: SessionBinding::Client,
            item: None,
        }
    }

    /// The upstream's configured name (metric label, error messages).
    pub fn upstream_name(&self) -> &str {
        self.upstream.name()
    }

    /// Whether the call may be resent on a new upstream session (`prompts/get` and
    /// `resources/read` only read).
    pub fn retry(&self) -> RetrySafety {
        if self.item.is_some() {
            return RetrySafety::Safe;
        }
        self.tool.as_ref().map_or(RetrySafety::Unsafe, |t| t.retry)
    }

    /// Whether a 2026-07-28 client sent it.
    pub fn modern_client(&self) -> bool {
        self.modern().is_some()
    }

    /// The 2026-07-28 client that sent it, if one did.
    pub fn modern(&self) -> Option<ModernClient> {
        match (&self.tool, &self.item) {
            (Some(t), _) => t.modern_client,
            (None, Some(i)) => i.modern_client,
            (None, None) => None,
        }
    }

    /// Whether the gateway translates between eras: a 2026-07-28 client on an upstream
    /// session the gateway holds in the handshake era. Its envelope is taken out of the
    /// bytes, its results get `resultType`, its log level is applied on the way back, and an
    /// upstream's server-to-client request becomes an MRTR round (`proxy::mrtr`). With a
    /// 2026-07-28 upstream ([`SessionBinding::Stateless`]) there is nothing to translate.
    pub fn translates(&self) -> bool {
        self.modern_client() && matches!(self.session, SessionBinding::Gateway { .. })
    }
}
