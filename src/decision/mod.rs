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
//! | 4 | argument policy: every `policies[]` rule covering the tool, on the bytes of step 3 (no JSON tree when none covers it) | -32602 naming the argument and the rule | [`crate::policy::arguments`] |
//! | 5 | human approval (next issue) | an approval id | `approval/` |
//! | 6 | quotas and budgets (`tools/call`): every `quotas[]` limit covering the tool, keyed by the caller's identity (never the session); after policy, so a refused call burns nothing | 429 + `Retry-After`, `RateLimit-Policy`, `RateLimit`; 503 for an unreachable `fail_closed` Redis | [`crate::quota`] |
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
use crate::mcp::McpMethod;
use crate::state::Runtime;

/// A step of [`decide`], in order. Its label is a bounded metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Visibility,
    Availability,
    Rewrite,
    Policy,
    Credential,
    Quota,
}

impl Step {
    pub fn as_label(self) -> &'static str {
        match self {
            Step::Visibility => "visibility",
            Step::Availability => "availability",
            Step::Rewrite => "rewrite",
            Step::Policy => "policy",
            Step::Credential => "credential",
            Step::Quota => "quota",
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
    /// Concurrency permits and metered costs the call holds until its response ends
    /// (settled in the `logging` phase; permits are given back when it drops).
    pub quota: crate::quota::Held,
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
    quotas: &crate::quota::Quotas,
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
    // 4. Argument policy, on exactly what the upstream will run.
    if let Some(call) = message.call.filter(|c| c.method == McpMethod::ToolsCall) {
        if !runtime.config.policies.is_empty() {
            let (body, call) = match &decision.rewritten {
                Some((b, c)) => (b, c),
                None => (message.body, call),
            };
            policy(target, body, call, &runtime.config.policies).map_err(refuse(Step::Policy))?;
        }
    }
    // 6. Quotas, on calls that passed policy: a refused call burns nothing.
    if let Some(call) = message.call.filter(|c| c.method == McpMethod::ToolsCall) {
        if !runtime.config.quotas.is_empty() {
            let body = decision.rewritten.as_ref().map_or(message.body, |(b, _)| b);
            let call = decision.rewritten.as_ref().map_or(call, |(_, c)| c);
            let tool_name;
            let (upstream, tool) = match target.tool.as_ref().and_then(|t| t.entry()) {
                Some(entry) => (entry.upstream_name.as_str(), entry.tool.as_str()),
                None => {
                    tool_name = call.tool_name(body).unwrap_or_default();
                    (target.upstream_name(), tool_name.as_ref())
                }
            };
            let call = crate::quota::Call {
                virtual_server: target.tool.as_ref().map_or("", |t| t.server.name.as_str()),
                upstream,
                tool,
                ..crate::quota::Call::caller(principal)
            };
            decision.quota = quotas
                .check(&runtime.config.quotas, runtime.redis.as_ref(), &call)
                .await
                .map_err(refuse(Step::Quota))?;
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

/// Every rule covering the called tool, in configuration order; the first that refuses
/// names itself. The arguments are read (one JSON tree) only when a rule covers the tool.
fn policy(
    target: &Target,
    body: &Bytes,
    call: &RpcCall,
    rules: &[crate::policy::arguments::ArgumentRule],
) -> Result<(), Reject> {
    let tool_name;
    let (upstream, tool) = match target.tool.as_ref().and_then(|t| t.entry()) {
        Some(entry) => (entry.upstream_name.as_str(), entry.tool.as_str()),
        None => {
            tool_name = call.tool_name(body).unwrap_or_default();
            (target.upstream_name(), tool_name.as_ref())
        }
    };
    let mut covering = rules
        .iter()
        .filter(|r| r.applies_to(upstream, tool))
        .peekable();
    if covering.peek().is_none() {
        return Ok(());
    }
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(default)]
        params: Option<Params>,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        #[serde(default)]
        arguments: Option<serde_json::Value>,
    }
    let arguments = serde_json::from_slice::<Envelope>(body)
        .map_err(|e| Reject::InvalidParams(format!("tools/call params: {e}")))?
        .params
        .and_then(|p| p.arguments);
    for rule in covering {
        rule.check(arguments.as_ref())
            .map_err(|v| Reject::PolicyViolation {
                rule: v.rule,
                message: v.message,
            })?;
    }
    Ok(())
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
