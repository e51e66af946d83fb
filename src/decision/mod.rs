//! The one decision point: every request that would reach an upstream, on a plain route or
//! a virtual server, passes [`decide`] once, after it is resolved to a [`Target`] and before
//! anything is sent. It is the single ordered list of checks; a new kind of check (argument
//! policy, quota, approval) is one more step in it, not an edit across proxy phases.
//!
//! | # | step | refuses with | lands in |
//! |---|---|---|---|
//! | 1 | visibility: the caller's class may see the tool | -32602 unknown tool (the same answer as for a tool that does not exist) | here |
//! | 2 | availability: the tool's upstream answered discovery | 502 naming the upstream | here |
//! | 3 | the bytes the upstream executes: upstream tool name, pinned arguments spliced in | 400 when pinned arguments cannot be applied | [`crate::mcp::rewrite`] |
//! | 4 | argument policy (next issue), on the bytes of step 3 | -32602 naming the rule | `policy/` |
//! | 5 | quota and budget (next issue) | 429 + `Retry-After` | `quota/` |
//! | 6 | human approval (next issue) | an approval id | `approval/` |
//! | 7 | the caller's credential for the upstream, last: only calls that will go out cost a token exchange | 403 / 502 | [`crate::identity`] |
//!
//! Takes plain inputs (no Pingora `Session`), so each step is unit-testable. The step that
//! refused is returned with the rejection ([`Refusal::step`]) and recorded in the request's
//! context for metrics and (later) the audit record.

mod target;

pub use target::{Exchange, RetrySafety, SessionBinding, Target, ToolTarget};

use bytes::Bytes;
use http::HeaderValue;

use crate::auth::Principal;
use crate::error::Reject;
use crate::mcp::jsonrpc::RpcCall;
use crate::state::Runtime;

/// A step of [`decide`], in order. Its label is a bounded metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Visibility,
    Availability,
    Rewrite,
    Credential,
}

impl Step {
    pub fn as_label(self) -> &'static str {
        match self {
            Step::Visibility => "visibility",
            Step::Availability => "availability",
            Step::Rewrite => "rewrite",
            Step::Credential => "credential",
        }
    }
}

/// What [`decide`] allowed: exactly what goes upstream.
#[derive(Debug, Default)]
pub struct Decision {
    /// The credential header value for the upstream (`None`: send none, or keep the
    /// client's own on `passthrough`).
    pub credential: Option<HeaderValue>,
    /// The message as the upstream must receive it, when it differs from the client's
    /// (renamed tool, pinned arguments); its spans point into the new body.
    pub rewritten: Option<(Bytes, RpcCall)>,
}

/// A refusal and the step that made it.
#[derive(Debug)]
pub struct Refusal {
    pub step: Step,
    pub reject: Reject,
}

/// The message a decision is about: the client's body and its parsed call (`None` for the
/// GET stream and DELETE, which carry no message).
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub body: &'a Bytes,
    pub call: Option<&'a RpcCall>,
}

/// Decide whether `target` may go out for `principal`, and with what bytes and credential.
/// Runs once per request in `request_filter`; see the module docs for the order.
pub async fn decide(
    target: &Target,
    message: Message<'_>,
    principal: Option<&Principal>,
    runtime: &Runtime,
) -> Result<Decision, Refusal> {
    let refuse = |step: Step| move |reject: Reject| Refusal { step, reject };
    let mut decision = Decision::default();
    if let Some(tool) = &target.tool {
        let entry = tool.entry().ok_or_else(|| {
            refuse(Step::Visibility)(Reject::Internal("tool entry out of its catalog".into()))
        })?;
        // 1. Visibility, with the same answer as for a name that does not exist: a hidden
        //    tool's existence is not disclosed.
        if !tool
            .catalog
            .visible(&tool.server, tool.class, tool.position)
        {
            return Err(refuse(Step::Visibility)(Reject::UnknownTool {
                name: crate::error::clip(&entry.exposed),
            }));
        }
        // 2. Availability.
        if entry.unavailable {
            return Err(refuse(Step::Availability)(Reject::Upstream {
                upstream: entry.upstream_name.clone(),
                cause: "is down (tool discovery failed); try again later".into(),
                timeout: false,
            }));
        }
        // 3. The bytes the upstream executes. Splices only: the upstream's tool name, then
        //    the pinned arguments. Every other byte is the client's (numbers are never
        //    rounded), so every later step checks exactly what the upstream will run.
        if let Some(call) = message.call {
            decision.rewritten = Some(
                rewrite(
                    message.body,
                    call,
                    entry,
                    runtime.config.limits.max_json_depth,
                )
                .map_err(refuse(Step::Rewrite))?,
            );
        }
    }
    // 7. The credential, last.
    decision.credential = runtime
        .identity
        .credential(
            &target.upstream.credential,
            &target.upstream.config,
            principal,
        )
        .await
        .map_err(refuse(Step::Credential))?;
    Ok(decision)
}

fn rewrite(
    body: &Bytes,
    call: &RpcCall,
    entry: &crate::registry::catalog::Entry,
    depth: usize,
) -> Result<(Bytes, RpcCall), Reject> {
    let (body, rewritten) = crate::mcp::jsonrpc::replace_tool_name(body, call, &entry.tool)?;
    if entry.pinned.is_empty() {
        return Ok((body, rewritten));
    }
    crate::mcp::rewrite::pin_arguments(&body, &entry.pinned, &entry.exposed, depth)
}

#[cfg(test)]
mod tests;
