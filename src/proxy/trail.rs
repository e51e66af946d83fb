//! The audit record of a finished request, from its [`RequestCtx`] and the Pingora session
//! (status, bytes): the one place that reads the context for [`crate::audit`]. Runs in
//! `logging`, only when the trail is on.

use std::time::Instant;

use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::audit::{Record, Request};
use crate::endpoints::EndpointKind;
use crate::mcp::McpMethod;

/// The record of the request `ctx` describes.
pub(super) fn record(session: &Session, ctx: &RequestCtx) -> Record {
    let target = ctx.target.as_ref().or(ctx.refused_target.as_ref());
    let entry = target.and_then(|t| t.tool.as_ref()).and_then(|t| t.entry());
    // The name the client called: the catalog's exposed name, else the message's (a plain
    // route, or a name no catalog knows).
    let called = match (entry, &ctx.call) {
        (Some(e), _) => Some(std::borrow::Cow::Borrowed(e.exposed.as_str())),
        (None, Some(call)) if ctx.method == McpMethod::ToolsCall => call.tool_name(&ctx.body),
        _ => None,
    };
    let upstream = match (entry, target) {
        (Some(e), _) => Some(e.upstream_name.as_str()),
        (None, Some(t)) => Some(t.upstream_name()),
        (None, None) => match ctx.endpoint.as_ref().map(|e| &e.kind) {
            Some(EndpointKind::Route(u)) => Some(u.name()),
            _ => None,
        },
    };
    let upstream_tool = match entry {
        Some(e) => Some(e.tool.as_str()),
        // A plain route: the upstream's name is the one called.
        None if upstream.is_some() => called.as_deref(),
        None => None,
    };
    let virtual_server = match ctx.endpoint.as_ref().map(|e| &e.kind) {
        Some(EndpointKind::Virtual { server, .. }) => Some(server.name.as_str()),
        _ => None,
    };
    let t = ctx.timings;
    let gateway_time = Some(
        t.forwarded_at
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(t.started),
    );
    let upstream_time = match (t.forwarded_at, t.upstream_header_at) {
        (Some(a), Some(b)) => Some(b.saturating_duration_since(a)),
        _ => None,
    };
    // The W3C trace id the upstream and the logs saw (accepted or started per request).
    let trace_id = ctx.trace.map(|t| t.trace_id.to_string());
    let request = Request {
        request_id: None,
        trace_id: trace_id.as_deref(),
        principal: ctx.principal.as_deref(),
        virtual_server,
        upstream,
        tool: called.as_deref().map(|c| (c, upstream_tool)),
        method: ctx.method,
        body: &ctx.body,
        refused_by: ctx.refused_by,
        reject: ctx.rejected.as_ref(),
        forwarded: t.forwarded_at.is_some(),
        outcome: ctx.outcome,
        status: session.response_written().map(|h| h.status.as_u16()),
        upstream_status: ctx.upstream_status,
        call_outcome: ctx.capture.as_ref().and_then(|c| c.outcome()),
        quota: ctx.decision.as_ref().map_or(&[], |d| d.quota.charges()),
        bytes_in: session.body_bytes_read() as u64,
        bytes_out: session.body_bytes_sent() as u64,
        gateway_time,
        upstream_time,
    };
    let redaction = ctx
        .runtime
        .as_ref()
        .and_then(|rt| rt.config.audit.as_ref())
        .map(|a| &a.redact);
    match redaction {
        Some(r) => Record::request(&request, r),
        None => Record::request(&request, &Default::default()),
    }
}
