//! The facts of a finished request for its audit record, from its [`RequestCtx`] and the
//! Pingora session (status, bytes): the one place that reads the context for
//! [`crate::audit`]. Runs in `logging`, only when the trail is on: it moves or copies a few
//! names and takes references; the writer thread builds the record
//! ([`crate::audit::Facts::record`]).

use std::time::{Duration, SystemTime};

use pingora::proxy::Session;

use super::ctx::RequestCtx;
use crate::audit::Facts;
use crate::endpoints::EndpointKind;
use crate::mcp::McpMethod;

/// The facts of the request `ctx` describes, with the times `logging` measured for the
/// metrics (one reading for both). Takes the response capture, the quota charges and the
/// rejection out of `ctx` (nothing reads them after `logging`).
pub(super) fn facts(
    session: &Session,
    ctx: &mut RequestCtx,
    gateway_time: Option<Duration>,
    upstream_time: Option<Duration>,
) -> Facts {
    let target = ctx.target.as_ref().or(ctx.refused_target.as_ref());
    let entry = target.and_then(|t| t.tool.as_ref()).and_then(|t| t.entry());
    // The name the client called: the catalog's exposed name, else the message's (a plain
    // route, or a name no catalog knows).
    let called: Option<String> = match (entry, &ctx.call) {
        (Some(e), _) => Some(e.exposed.clone()),
        (None, Some(call)) if ctx.method == McpMethod::ToolsCall => {
            // A name no catalog knows is the client's: past any real tool name's length
            // (MCP: at most 128) it is clipped, so a record stays of bounded size.
            call.tool_name(&ctx.body).map(|c| {
                if c.len() > 256 {
                    crate::error::clip(&c)
                } else {
                    c.into_owned()
                }
            })
        }
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
        Some(e) => Some(e.tool.clone()),
        // A plain route: the upstream's name is the one called.
        None if upstream.is_some() => called.clone(),
        None => None,
    };
    let virtual_server = match ctx.endpoint.as_ref().map(|e| &e.kind) {
        Some(EndpointKind::Virtual { server, .. }) => Some(server.name.clone()),
        _ => None,
    };
    let upstream = upstream.map(str::to_string);
    let t = ctx.timings;
    let redaction = ctx
        .runtime
        .as_ref()
        .and_then(|rt| rt.config.audit.as_ref())
        .map(|a| a.redact.clone())
        .unwrap_or_default();
    let mrtr = ctx.mrtr.take();
    Facts {
        time: SystemTime::now(),
        // A parked call's first round fixed its id when it parked (its retry names it).
        request_id: mrtr
            .as_ref()
            .and_then(|m| m.request_id.clone())
            .unwrap_or_else(crate::audit::request_id),
        // The W3C trace id the upstream and the logs saw (accepted or started per request).
        trace_id: ctx.trace.map(|t| t.trace_id),
        principal: ctx.principal.clone(),
        virtual_server,
        upstream,
        tool: called.map(|c| (c, upstream_tool)),
        method: ctx.method,
        body: ctx.body.clone(),
        arguments: ctx.call.as_ref().and_then(|c| c.arguments.clone()),
        refused_by: ctx.refused_by,
        reject: ctx.rejected.take(),
        forwarded: t.forwarded_at.is_some(),
        outcome: ctx.outcome,
        status: session.response_written().map(|h| h.status.as_u16()),
        upstream_status: ctx.upstream_status,
        response: ctx
            .capture
            .take()
            .filter(|c| !c.overflow)
            .map(|c| (c.bytes, c.sse)),
        quota: ctx
            .decision
            .as_mut()
            .map(|d| d.quota.take_charges())
            .unwrap_or_default(),
        bytes_in: session.body_bytes_read() as u64,
        bytes_out: session.body_bytes_sent() as u64,
        gateway_time,
        upstream_time,
        redaction,
        round: mrtr
            .and_then(|m| m.round)
            .or_else(|| stateless_round(ctx))
            .map(Box::new),
    }
}

/// A 2026-07-28 client's retry of a stateless upstream's own MRTR round (it carries
/// `inputResponses`): recorded with the answers' digest, as a held call's rounds are. The
/// gateway keeps nothing between such rounds, so there is no first round to name.
fn stateless_round(ctx: &RequestCtx) -> Option<crate::audit::Round> {
    let stateless = ctx
        .target
        .as_ref()
        .is_some_and(|t| t.session == crate::decision::SessionBinding::Stateless);
    if !stateless || ctx.method != crate::mcp::McpMethod::ToolsCall {
        return None;
    }
    Some(crate::audit::Round {
        first: None,
        number: None,
        input_responses: Some(super::mrtr::input_responses_digest(
            &ctx.body,
            ctx.call.as_ref(),
        )?),
    })
}
