//! Response side: what happens to the upstream's response on its way to the client.
//!
//! Both the Pingora proxy path (`response_filter` / `response_body_filter`) and the
//! large-body forward (`forward.rs`) call these functions, so both paths treat responses the
//! same way. Everything here is synchronous and bounded: the body filter cannot await.
//!
//! - SSE (`text/event-stream`) and JSON responses pass through chunk by chunk, never buffered.
//!   SSE gets `X-Accel-Buffering: no` so buffering proxies in front of us don't hold events.
//! - A 5xx answer becomes a 502 with a JSON-RPC error naming the upstream and quoting the start
//!   of its body, instead of an opaque HTML or empty error page.
//! - The one exception to pass-through: a virtual server's call answered with SSE, whose
//!   server-to-client request ids become gateway ids ([`crate::vserver::ids`], at most one
//!   event held, 1 MiB).
//! - A virtual server's `resources/read`, `tools/call` and `prompts/get` results: resource
//!   URIs become the exposed ones, and a 2026-07-28 client's stream loses log messages below
//!   its level ([`crate::vserver::results`]: a JSON body held until complete, an SSE body one
//!   event at a time, each at most 64 KiB).

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use pingora::http::ResponseHeader;

use super::ctx::{RequestCtx, ResponseMode};
use crate::error::Reject;
use crate::metrics::{Outcome, UpstreamErrorKind};

/// How much of a failing upstream's body is quoted in the error.
const SNIPPET_LIMIT: usize = 256;

/// Adjust the upstream's response header. Runs in `response_filter`.
pub(crate) fn response_header(
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let now = Instant::now();
    if ctx.timings.upstream_header_at.is_none() {
        ctx.timings.upstream_header_at = Some(now);
    }
    if ctx.is_virtual() {
        // The upstream session belongs to the gateway, not to the client.
        resp.remove_header(crate::mcp::headers::MCP_SESSION_ID);
    }
    let status = resp.status.as_u16();
    ctx.upstream_status.get_or_insert(status);
    if status >= 500 {
        ctx.outcome = Outcome::UpstreamError;
        ctx.upstream_error = Some(UpstreamErrorKind::Status5xx);
        ctx.response = ResponseMode::UpstreamFailure {
            status,
            snippet: BytesMut::new(),
        };
        resp.set_status(502)?;
        replace_body_headers(resp)?;
        return Ok(());
    }
    // The media type, read once for every filter below.
    let media = resp
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| ct.split(';').next())
        .map(str::trim);
    let is_sse = media.is_some_and(|m| m.eq_ignore_ascii_case("text/event-stream"));
    let is_json = media.is_some_and(|m| m.eq_ignore_ascii_case("application/json"));
    if ctx.method == crate::mcp::McpMethod::ToolsCall
        && ctx
            .runtime
            .as_ref()
            .is_some_and(|rt| rt.config.audit.is_some())
    {
        // The audit record says how the call ended (error code, `isError`).
        ctx.capture = Some(super::ctx::Capture {
            sse: is_sse,
            ..Default::default()
        });
    }
    if is_sse {
        back_channel(resp, ctx);
        resp.insert_header("x-accel-buffering", "no")?;
        if resp.headers.get(http::header::CACHE_CONTROL).is_none() {
            resp.insert_header(http::header::CACHE_CONTROL, "no-cache")?;
        }
    }
    result_rewrite(resp, ctx, status, is_sse, is_json)?;
    // A 2026-07-28 client of the handshake-era upstream session the gateway holds: its
    // results need `resultType`, added as the body streams (so the length changes). A
    // 2026-07-28 upstream wrote its own.
    let modern_client = ctx
        .target
        .as_ref()
        .is_some_and(crate::decision::Target::translates);
    // Only a body that is there and readable: a 202/204 or `Content-Length: 0` has no body
    // for the filter to see (a raised length would promise bytes that never come), and a
    // compressed one cannot be lexed.
    let length_header = resp.headers.get(http::header::CONTENT_LENGTH);
    let length = length_header
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if modern_client
        && status == 200
        && (is_sse || is_json)
        && length != Some(0)
        && !resp.headers.contains_key(http::header::CONTENT_ENCODING)
    {
        use crate::mcp::stamp::{ResultStamp, GROWTH};
        let declared = length_header.is_some();
        let stamp = match length {
            // A JSON body keeps its framing: the length grows by the longest insertion and
            // what is not inserted is paid as trailing whitespace.
            Some(n) if !is_sse => {
                resp.insert_header(http::header::CONTENT_LENGTH, n.saturating_add(GROWTH))?;
                ResultStamp::with_length()
            }
            // An event stream, or a length that does not parse: chunked framing instead.
            _ if declared => {
                resp.remove_header(&http::header::CONTENT_LENGTH);
                resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
                ResultStamp::new(is_sse)
            }
            _ => ResultStamp::new(is_sse),
        };
        ctx.response = ResponseMode::StampResultType(Box::new(stamp));
    }
    Ok(())
}

/// A virtual server's `resources/read`, `tools/call` or `prompts/get` result: resource URIs
/// in it become the exposed ones ([`crate::vserver::results`]), which changes the length; and
/// a 2026-07-28 client's event stream loses the log messages below its level. Only
/// a readable body (JSON or SSE, not compressed, not empty). Before the `resultType` stamp,
/// which then sees no length to keep.
fn result_rewrite(
    resp: &mut ResponseHeader,
    ctx: &mut RequestCtx,
    status: u16,
    is_sse: bool,
    is_json: bool,
) -> pingora::Result<()> {
    use crate::mcp::McpMethod as M;
    // URIs are rewritten only where the server exposes its own (`names: prefixed`), and in
    // a tool's result only when its upstream serves resources: a link to anything else
    // cannot be read through the server anyway. Installing the rewriter turns a
    // length-framed answer into a chunked one (its length may change), a second write per
    // answer: a governed `tools/call` to an upstream without resources keeps its framing.
    let carries_uris = ctx.exposes_uris()
        && match ctx.method {
            M::ResourcesRead | M::PromptsGet => true,
            M::ToolsCall => ctx
                .target
                .as_ref()
                .and_then(|t| t.tool.as_ref())
                .is_some_and(|t| {
                    t.entry()
                        .is_some_and(|e| t.catalog.items.serves_resources(e.upstream))
                }),
            _ => false,
        };
    // A modern client's log floor applies to messages on an event stream.
    let filters_logs = ctx.log_floor.is_some() && is_sse;
    let Some(target) = ctx
        .target
        .as_ref()
        .filter(|_| (carries_uris || filters_logs) && ctx.is_virtual())
    else {
        return Ok(());
    };
    let empty = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() == b"0");
    if status != 200
        || !(is_sse || is_json)
        || empty
        || resp.headers.contains_key(http::header::CONTENT_ENCODING)
    {
        return Ok(());
    }
    let declared = resp
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<usize>().ok());
    if resp.headers.contains_key(http::header::CONTENT_LENGTH) {
        resp.remove_header(&http::header::CONTENT_LENGTH);
        resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    }
    let rewriter = crate::vserver::results::ResultRewriter::new(
        carries_uris.then(|| target.upstream_name()),
        is_sse,
        ctx.log_floor,
    )
    .with_length(declared);
    ctx.results = Some(Box::new(rewriter));
    Ok(())
}

/// A virtual server's call answered with SSE: the upstream may send server-to-client
/// requests on it, whose ids must become gateway ids ([`crate::vserver::ids`]). Plain routes
/// never get here (their streams stay zero-copy), nor do compressed streams (logged).
fn back_channel(resp: &mut ResponseHeader, ctx: &mut RequestCtx) {
    let Some(target) = ctx.target.as_ref() else {
        return;
    };
    let is_call = ctx
        .call
        .as_ref()
        .is_some_and(|c| c.kind == crate::mcp::jsonrpc::MessageKind::Request);
    // Only on sessions the gateway holds: a plain route's stream stays zero-copy, and a
    // 2026-07-28 upstream sends no server-to-client requests (MRTR instead).
    if !is_call
        || !matches!(
            target.session,
            crate::decision::SessionBinding::Gateway { .. }
        )
    {
        return;
    }
    if resp.headers.contains_key(http::header::CONTENT_ENCODING) {
        log::warn!(
            "upstream {} compressed an SSE answer: server-to-client request ids are not rewritten",
            target.upstream_name()
        );
        return;
    }
    let depth = ctx
        .runtime
        .as_ref()
        .map_or(64, |rt| rt.config.limits.max_json_depth);
    let crate::decision::SessionBinding::Gateway { digest, .. } = target.session else {
        return;
    };
    let ids = crate::vserver::ids::IdRewriter::new(digest, target.upstream_name(), depth);
    // A 2026-07-28 client takes no server-to-client requests (`proxy::held`).
    ctx.sse_ids = Some(Box::new(if target.translates() {
        ids.refusing()
    } else {
        ids
    }));
    // Rewritten events change the length.
    resp.remove_header(&http::header::CONTENT_LENGTH);
}

/// Answers the gateway replaces whole, decided on the upstream's header alone. Runs in
/// `upstream_response_filter` (and after the large-body forward reads the header):
///
/// - 401 to a credential the gateway chose: with a caller's own credential (`per_user`,
///   `token_exchange`, `signed_identity`) the client is told which upstream to re-authorise
///   (403); with a gateway-owned one (`none`, `static`) it is the upstream's configuration
///   that is wrong (502). Passing the 401 on would send the MCP client into an OAuth flow
///   against the wrong server. Only `passthrough` 401s reach the client.
/// - 5xx without a body (`Content-Length: 0`): no body filter will run, so the error is
///   produced here instead of at the end of the body.
pub(crate) fn early_reject(resp: &ResponseHeader, ctx: &mut RequestCtx) -> Option<Reject> {
    use crate::config::PropagationMode as M;
    let status = resp.status.as_u16();
    // A virtual server reads its answers (URIs, a 2026-07-28 client's log level,
    // `resultType`, the audit's outcome) and asks for them uncompressed (`outbound`): one
    // compressed anyway would pass every one of those filters unread.
    if let Some(enc) = resp
        .headers
        .get(http::header::CONTENT_ENCODING)
        .filter(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"))
    {
        let target = ctx.target.as_ref()?;
        if target.session != crate::decision::SessionBinding::Client {
            let cause = format!(
                "answered with Content-Encoding {} though the gateway asked for none; a virtual server cannot check a compressed answer: turn compression off for requests without Accept-Encoding",
                crate::error::clip(&String::from_utf8_lossy(enc.as_bytes()))
            );
            ctx.upstream_error = Some(UpstreamErrorKind::Other);
            ctx.outcome = Outcome::UpstreamError;
            return Some(Reject::Upstream {
                upstream: ctx.upstream_name().to_string(),
                cause,
                timeout: false,
            });
        }
    }
    if status != 401 && status < 500 {
        return None; // the common case: nothing to decide, nothing to allocate
    }
    let mode = ctx.target.as_ref()?.upstream.config.auth.mode;
    let upstream = ctx.upstream_name().to_string();
    let reject = if status == 401 && mode != M::Passthrough {
        ctx.upstream_error = Some(UpstreamErrorKind::Other);
        if mode.needs_principal() {
            Reject::UpstreamUnauthorized {
                subject: ctx
                    .principal
                    .as_ref()
                    .map_or_else(String::new, |p| p.subject.clone()),
                upstream,
            }
        } else {
            Reject::Upstream {
                upstream,
                cause: format!(
                    "answered HTTP 401 to the gateway's {} credentials; check upstreams[].auth",
                    mode.as_label()
                ),
                timeout: false,
            }
        }
    } else if status >= 500
        && resp
            .headers
            .get(http::header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() == b"0")
    {
        ctx.upstream_error = Some(UpstreamErrorKind::Status5xx);
        Reject::Upstream {
            upstream,
            cause: format!("answered HTTP {status}"),
            timeout: false,
        }
    } else {
        return None;
    };
    ctx.outcome = Outcome::UpstreamError;
    Some(reject)
}

/// Headers for a response whose body the gateway replaces with a JSON-RPC error.
fn replace_body_headers(resp: &mut ResponseHeader) -> pingora::Result<()> {
    resp.remove_header(&http::header::CONTENT_LENGTH);
    resp.remove_header(&http::header::CONTENT_ENCODING);
    resp.remove_header(&http::header::WWW_AUTHENTICATE);
    resp.insert_header(http::header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(http::header::TRANSFER_ENCODING, "chunked")?;
    Ok(())
}

/// Process one chunk of the upstream's response body. Runs in `response_body_filter`.
/// In pass-through mode the chunk is left as it is (zero copy).
pub(crate) fn response_body(body: &mut Option<Bytes>, end_of_stream: bool, ctx: &mut RequestCtx) {
    if let Some(results) = ctx.results.as_mut() {
        let out = results.push(body.take().unwrap_or_default(), end_of_stream);
        *body = (!out.is_empty()).then_some(out);
    }
    if let ResponseMode::StampResultType(stamp) = &mut ctx.response {
        if let Some(stamped) = body.as_deref().and_then(|chunk| stamp.feed(chunk)) {
            *body = Some(Bytes::from(stamped));
        }
        if end_of_stream {
            if let Some(pad) = stamp.finish() {
                let mut last = body.take().map(Vec::from).unwrap_or_default();
                last.extend_from_slice(&pad);
                *body = Some(Bytes::from(last));
            }
        }
    }
    let ResponseMode::UpstreamFailure { status, snippet } = &mut ctx.response else {
        // Counted for metered quota costs: the upstream's bytes the client receives.
        let n = body.as_ref().map_or(0, |b| b.len() as u64);
        ctx.response_bytes = ctx.response_bytes.saturating_add(n);
        if let (Some(capture), Some(chunk)) = (ctx.capture.as_mut(), body.as_ref()) {
            capture.push(chunk);
        }
        if let Some(ids) = ctx.sse_ids.as_mut() {
            let chunk = body.take().unwrap_or_default();
            let out = ids.push(&chunk, end_of_stream);
            *body = (!out.is_empty()).then_some(out);
        }
        return;
    };
    if let Some(chunk) = body.take() {
        let room = SNIPPET_LIMIT.saturating_sub(snippet.len());
        snippet.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    if end_of_stream {
        let quoted = String::from_utf8_lossy(snippet);
        let quoted = quoted.trim();
        let cause = if quoted.is_empty() {
            format!("answered HTTP {status}")
        } else {
            format!("answered HTTP {status}: {}", crate::error::clip(quoted))
        };
        let reject = Reject::Upstream {
            upstream: ctx.upstream_name().to_string(),
            cause,
            timeout: false,
        };
        *body = Some(super::respond::error_body(ctx, &reject));
    }
}
