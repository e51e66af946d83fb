//! The one decision point: every request that would reach an upstream, on a plain route or
//! a virtual server, passes [`decide`] once, after it is resolved to a [`Target`] and before
//! anything is sent. It is the single ordered list of checks; a new kind of check (argument
//! policy, quota, approval) is one more step in it, not an edit across proxy phases.
//!
//! | # | step | refuses with | lands in |
//! |---|---|---|---|
//! | 1 | visibility: the caller's class may see the tool | -32602 unknown tool (the same answer as for a tool that does not exist) | here |
//! | 2 | availability: the tool's upstream answered discovery | 502 naming the upstream | here |
//! | 3 | the bytes the upstream executes: upstream tool name (and the `Mcp-Name` that goes with it), pinned arguments spliced in, a 2026-07-28 client's `_meta` envelope taken out where the gateway translates for a held handshake-era upstream session; a 2026-07-28 call's `Mcp-Param-*` headers checked against those bytes and rebuilt from them | 400 when pinned arguments cannot be applied; 400 -32020 for an `Mcp-Param-*` header that disagrees | [`crate::mcp::rewrite`], [`crate::mcp::params`] |
//! | 4 | policy: every `policies[]` rule covering the tool, virtual server and caller (`allow_when`, then argument checks on the bytes of step 3; no JSON tree when none reads arguments) | -32602 naming the argument and the rule | [`crate::policy::arguments`] |
//! | 4b | resumption: a 2026-07-28 retry carrying a `requestState` opens its parked call (same caller, tool and arguments as step 3's bytes); opened, it is the same call as its first round, already approved and charged: steps 5 and 6 are not taken again (the round carries its first round's permits and metered budgets). Not opened: steps 5 and 6 run as for a new call, then it is refused | 400 -32602 (after 5 and 6) | [`crate::proxy::mrtr`] |
//! | 5 | human approval: a call an `approvals` rule or `require_approval` covers goes out once per approval of exactly its bytes (step 3's) and caller (no JSON tree, no store lookup when none covers it) | -32030 with the approval id, URL and `retryAfter`; -32031 denied; 503 store unavailable | [`crate::approval`] |
//! | 6 | quotas and budgets (`tools/call`): every `quotas[]` limit covering the tool, keyed by the caller's identity (never the session); after policy, so a refused call burns nothing | 429 + `Retry-After`, `RateLimit-Policy`, `RateLimit`; 503 for an unreachable `fail_closed` Redis | [`crate::quota`] |
//! | 7 | the caller's credential for the upstream, last: only calls that will go out cost a token exchange | 403 / 502 | [`crate::identity`] |
//!
//! A virtual server's `prompts/get` or `resources/read` ([`ItemTarget`]) takes steps 1-3
//! (visibility with the same answer as an unknown one, availability, the upstream's own name
//! or URI in `params` and `Mcp-Name`) and 7; policy, approval and quota are about tool calls.
//!
//! A virtual server's relayed client message (an answer to a server-to-client request, a
//! cancellation: [`crate::vserver::reply`]) is a target without a tool: steps 1-6 are about
//! tools and do not apply, step 7 chooses its credential as for a call. So is each upstream's
//! leg of a `logging/setLevel` fan-out (`vserver::logging`); `resources/subscribe` and
//! `unsubscribe` are [`ItemTarget`]s, decided as `resources/read` is, except that an
//! unsubscribe of a subscription the client session holds ([`ItemTarget::held`]) skips
//! visibility: it only removes, and the resource may have been hidden since.
//!
//! Takes plain inputs (no Pingora `Session`), so each step is unit-testable. The step that
//! refused is returned with the rejection ([`Refusal::step`]) and recorded in the request's
//! context for metrics and (later) the audit record.

mod target;

pub use target::{
    Exchange, ItemTarget, ModernClient, RetrySafety, SessionBinding, Target, ToolTarget,
};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};

use crate::auth::Principal;
use crate::config::Caller;
use crate::error::Reject;
use crate::mcp::jsonrpc::RpcCall;
use crate::mcp::McpMethod;
use crate::policy::arguments::PolicyRule;
use crate::state::Runtime;

/// A step of [`decide`], in order. Its label is a bounded metric value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Visibility,
    Availability,
    Rewrite,
    Policy,
    Credential,
    Approval,
    Quota,
    Resume,
}

impl Step {
    pub fn as_label(self) -> &'static str {
        match self {
            Step::Visibility => "visibility",
            Step::Availability => "availability",
            Step::Rewrite => "rewrite",
            Step::Policy => "policy",
            Step::Credential => "credential",
            Step::Approval => "approval",
            Step::Quota => "quota",
            Step::Resume => "resume",
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
    /// The approval this call consumed (step 5): a later refusal of the call must hand it
    /// back with [`crate::approval::Approvals::restore`], since nothing ran.
    /// Boxed: a request context carries a `Decision`, and Pingora moves the request's
    /// future (context included) with `memcpy`; an inline approval would add 300 bytes to
    /// every request for the few that have one.
    pub approval: Option<Box<crate::approval::Approval>>,
    /// Concurrency permits and metered costs the call holds until its response ends
    /// (settled in the `logging` phase; permits are given back when it drops).
    pub quota: crate::quota::Held,
    /// The `Mcp-Name` the upstream must see with [`Decision::rewritten`]: the upstream's own
    /// tool name, header-encoded, set by the same step 3 that renames `params.name`, so
    /// the two never disagree (a 2026-07-28 upstream refuses a mismatch with -32020). The
    /// proxy puts it in place of the client's header (`proxy::outbound`).
    pub mcp_name: Option<HeaderValue>,
    /// The `Mcp-Param-*` headers of the decided arguments (step 3, a 2026-07-28 call of a
    /// tool with `x-mcp-header` arguments): what a stateless upstream gets in place of the
    /// client's ([`crate::mcp::params`]). Usually empty.
    pub mcp_params: Vec<(HeaderName, HeaderValue)>,
    /// Step 4b: the parked call this retry opened (`proxy::mrtr::resume` goes on with it).
    /// Set, the call took no approval and no new quota charge.
    pub resumed: Option<Box<crate::proxy::mrtr::Parked>>,
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
    /// The client's request headers, where it sent them (`None`: a message the gateway
    /// makes itself): headers that must agree with the body are checked here.
    pub headers: Option<&'a http::HeaderMap>,
}

/// Per-replica state the steps consult, kept across reloads in [`crate::state::Shared`].
#[derive(Debug, Clone, Copy)]
pub struct Stores<'a> {
    pub approvals: &'a crate::approval::Approvals,
    pub quotas: &'a crate::quota::Quotas,
    /// Modern clients' calls waiting for their `inputResponses` retry (step 4b).
    pub parked: &'a crate::proxy::mrtr::ParkedCalls,
}

/// A `tools/call` as the policy, approval and quota steps see it, resolved once after
/// step 3: the bytes the upstream will run and the tool they name.
#[derive(Debug)]
pub struct ToolCall<'a> {
    pub body: &'a Bytes,
    pub call: &'a RpcCall,
    /// The upstream's name and its own name for the tool.
    pub upstream: &'a str,
    pub tool: std::borrow::Cow<'a, str>,
    /// The virtual server it is called through, and the catalog entry (`None` on a plain
    /// route).
    pub server: Option<&'a crate::config::VirtualServer>,
    pub entry: Option<&'a crate::registry::catalog::Entry>,
}

impl<'a> ToolCall<'a> {
    /// The view of a `tools/call` message (`None` for any other message).
    fn of(
        target: &'a Target,
        message: Message<'a>,
        rewritten: Option<&'a (Bytes, RpcCall)>,
    ) -> Option<ToolCall<'a>> {
        let call = message.call.filter(|c| c.method == McpMethod::ToolsCall)?;
        let (body, call) = rewritten.map_or((message.body, call), |(b, c)| (b, c));
        Some(
            match target.tool.as_ref().and_then(|t| Some((t, t.entry()?))) {
                Some((t, entry)) => ToolCall {
                    body,
                    call,
                    upstream: entry.upstream_name.as_str(),
                    tool: std::borrow::Cow::Borrowed(entry.tool.as_str()),
                    server: Some(&t.server),
                    entry: Some(entry),
                },
                None => ToolCall {
                    body,
                    call,
                    upstream: target.upstream_name(),
                    tool: call.tool_name(body).unwrap_or_default(),
                    server: None,
                    entry: None,
                },
            },
        )
    }

    /// The virtual server's name, `None` on a plain route.
    pub fn server_name(&self) -> Option<&'a str> {
        self.server.map(|s| s.name.as_str())
    }
}

/// Decide whether `target` may go out for `principal`, and with what bytes and credential.
/// Runs once per request in `request_filter`; see the module docs for the order.
pub async fn decide(
    target: &Target,
    message: Message<'_>,
    principal: Option<&Principal>,
    runtime: &Runtime,
    stores: Stores<'_>,
) -> Result<Decision, Refusal> {
    let refuse = |step: Step| move |reject: Reject| Refusal { step, reject };
    let mut rewritten = None;
    let mut mcp_name = None;
    let mut mcp_params = Vec::new();
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
            let depth = runtime.config.limits.max_json_depth;
            let mut bytes =
                rewrite(message.body, call, entry, depth).map_err(refuse(Step::Rewrite))?;
            // A 2026-07-28 client's envelope, translated for the handshake-era upstream
            // session the gateway holds for it (docs/mcp-decisions.md, "Both eras").
            if target.translates() {
                if let Some(stripped) = crate::mcp::rewrite::strip_envelope(&bytes.0, &bytes.1)
                    .map_err(refuse(Step::Rewrite))?
                {
                    bytes = stripped;
                }
            }
            // A 2026-07-28 call's `Mcp-Param-*` headers: the client's must agree with the
            // decided arguments, and the ones that go upstream are built from them.
            if tool.modern_client.is_some() && !entry.param_headers.is_empty() {
                // The decided bytes' own `arguments` (raw: numbers as written).
                let args = bytes
                    .1
                    .arguments
                    .clone()
                    .and_then(|r| bytes.0.get(r))
                    .and_then(|a| serde_json::from_slice::<&serde_json::value::RawValue>(a).ok());
                let built = crate::mcp::params::build(&entry.param_headers, args)
                    .map_err(refuse(Step::Rewrite))?;
                if let Some(sent) = message.headers {
                    crate::mcp::params::check_sent(sent, &entry.param_headers, &built)
                        .map_err(refuse(Step::Rewrite))?;
                }
                mcp_params = built;
            }
            rewritten = Some(bytes);
            mcp_name = Some(
                HeaderValue::from_str(&crate::mcp::headers::encode(&entry.tool)).map_err(|_| {
                    refuse(Step::Rewrite)(Reject::Internal(
                        "encoded tool name is not a valid header value".into(),
                    ))
                })?,
            );
        }
    }
    if let Some(item) = &target.item {
        // Visibility is decided on the parsed message: without one, refuse (never skip).
        let call = message.call.ok_or_else(|| {
            refuse(Step::Visibility)(Reject::Internal(
                "a prompt or resource request without its parsed message".into(),
            ))
        })?;
        let (bytes, name) = decide_item(item, target.translates(), message.body, call)
            .map_err(|(step, r)| refuse(step)(r))?;
        rewritten = Some(bytes);
        mcp_name = Some(name);
    }
    let mut approval = None;
    let mut quota = crate::quota::Held::default();
    let mut resumed = None;
    if let Some(view) = ToolCall::of(target, message, rewritten.as_ref()) {
        // 4. Policy, on exactly what the upstream will run.
        if !runtime.config.policies.is_empty() {
            let caller = principal.map_or(Caller::ANONYMOUS, Principal::caller);
            policy(&view, &caller, &runtime.config.policies).map_err(refuse(Step::Policy))?;
        }
        // 4b. A retry that opens its parked call is that call: approved and charged once.
        let retry = resumption(target, &view);
        if let Some(Ok(token)) = retry {
            resumed = resume(target, &view, stores, token).map(|p| (token, p));
        }
        let new_call = resumed.is_none();
        // 5. Human approval, on the same bytes. Consumed here: a later refusal gives it back.
        if new_call && runtime.config.approvals.active() {
            approval = stores
                .approvals
                .gate(runtime, &view, principal)
                .await
                .map_err(refuse(Step::Approval))?
                .map(Box::new);
        }
        // 6. Quotas, on calls that passed policy and approval: a refused call burns nothing.
        if new_call && !runtime.config.quotas.is_empty() {
            let call = crate::quota::Call {
                virtual_server: view.server_name().unwrap_or(""),
                upstream: view.upstream,
                tool: &view.tool,
                ..crate::quota::Call::caller(principal)
            };
            match stores
                .quotas
                .check(&runtime.config.quotas, runtime.redis.as_ref(), &call)
                .await
            {
                Ok(held) => quota = held,
                Err(reject) => {
                    give_back(stores, runtime, approval.as_deref()).await;
                    return Err(refuse(Step::Quota)(reject));
                }
            }
        }
        // 4b, not opened: decided as a new call (a forged or stale `requestState` skips
        // nothing), then refused: sent upstream, it would run the tool again.
        if let (true, Some(retry)) = (new_call, retry) {
            give_back(stores, runtime, approval.as_deref()).await;
            quota.refund();
            let reject = retry
                .err()
                .unwrap_or_else(crate::proxy::mrtr::unknown_state);
            return Err(refuse(Step::Resume)(reject));
        }
    }
    // 7. The credential, last.
    let credential = match runtime
        .identity
        .credential(
            &target.upstream.credential,
            &target.upstream.config,
            principal,
        )
        .await
    {
        Ok(c) => c,
        Err(reject) => {
            give_back(stores, runtime, approval.as_deref()).await;
            quota.refund();
            if let Some((token, parked)) = resumed {
                // Nothing was sent: the call waits for a retry still.
                stores.parked.put_back(token, parked);
            }
            return Err(refuse(Step::Credential)(reject));
        }
    };
    let resumed = resumed.map(|(_, mut parked)| {
        quota = parked.take_quota();
        parked
    });
    Ok(Decision {
        credential,
        rewritten,
        approval,
        quota,
        mcp_name,
        mcp_params,
        resumed,
    })
}

/// Step 4b's question: is this a 2026-07-28 client's `tools/call` retry with a
/// `requestState` the gateway issues (`None`: no; `Err`: its prefix, but no token)? Asked
/// of every modern call, stateless ones included: a 2026-07-28 upstream's own token (not
/// the gateway's prefix) goes back to it as sent, but one of the gateway's is never
/// forwarded (its call was parked on a held session, e.g. before the upstream's discovery
/// moved it to stateless calls: it is resumed there, or refused).
fn resumption(
    target: &Target,
    view: &ToolCall<'_>,
) -> Option<Result<crate::digest::Digest, Reject>> {
    if !target.modern_client() {
        return None;
    }
    crate::proxy::mrtr::retry_state(view.body, view.call)
}

/// Step 4b: open the call parked under `token` for this caller, tool and arguments (the
/// bytes of step 3, as the first round's were).
fn resume(
    target: &Target,
    view: &ToolCall<'_>,
    stores: Stores<'_>,
    token: crate::digest::Digest,
) -> Option<Box<crate::proxy::mrtr::Parked>> {
    let SessionBinding::Gateway { digest: caller, .. } = target.session else {
        return None;
    };
    let tool = view.entry.map_or("", |e| e.exposed.as_str());
    let arguments = crate::proxy::mrtr::arguments_digest(view.body, view.call);
    stores.parked.open(token, caller, tool, &arguments)
}

/// Steps 1-3 for a prompt or resource (docs/virtual-servers.md, "Prompts and resources"):
/// visibility (a hidden one answers as an unknown one), availability, and the bytes with
/// the upstream's own name or URI, plus the `Mcp-Name` that goes with them.
fn decide_item(
    item: &ItemTarget,
    translate: bool,
    body: &Bytes,
    call: &RpcCall,
) -> Result<((Bytes, RpcCall), HeaderValue), (Step, Reject)> {
    use crate::registry::items;
    // (An unsubscribe of a subscription the session holds only removes: no visibility.)
    if !item.held
        && !items::visible(
            &item.server,
            item.class,
            item.kind,
            &item.upstream_name,
            &item.own,
        )
    {
        return Err((Step::Visibility, items::unknown(item.kind, &item.exposed)));
    }
    if item.unavailable {
        return Err((
            Step::Availability,
            Reject::Upstream {
                upstream: item.upstream_name.clone(),
                cause: "is down (discovery failed); try again later".into(),
                timeout: false,
            },
        ));
    }
    let mut bytes =
        crate::mcp::rewrite::replace_string_param(body, call, item.span.clone(), &item.own)
            .map_err(|r| (Step::Rewrite, r))?;
    if translate {
        if let Some(stripped) = crate::mcp::rewrite::strip_envelope(&bytes.0, &bytes.1)
            .map_err(|r| (Step::Rewrite, r))?
        {
            bytes = stripped;
        }
    }
    let name = HeaderValue::from_str(&crate::mcp::headers::encode(&item.own)).map_err(|_| {
        (
            Step::Rewrite,
            Reject::Internal("encoded name is not a valid header value".into()),
        )
    })?;
    Ok((bytes, name))
}

/// A call refused after its approval was consumed did not run: the approval goes back, so
/// the caller's identical retry still goes through once. If the store cannot take it back
/// the approver must approve again; that is logged, and the refusal stands as it was.
async fn give_back(
    stores: Stores<'_>,
    runtime: &Runtime,
    approval: Option<&crate::approval::Approval>,
) {
    if let Some(a) = approval {
        if let Err(e) = stores.approvals.restore(runtime, a).await {
            log::warn!(
                "approval {} could not be given back after a later refusal: {e}",
                a.id
            );
        }
    }
}

/// Every rule covering the call (tool, virtual server, caller), in configuration order; the
/// first that refuses names itself. The arguments are read (one JSON tree) only when a
/// covering rule checks them.
fn policy(view: &ToolCall<'_>, caller: &Caller<'_>, rules: &[PolicyRule]) -> Result<(), Reject> {
    let server = view.server_name();
    let mut arguments: Option<Option<serde_json::Value>> = None;
    for rule in rules
        .iter()
        .filter(|r| r.covers(view.upstream, &view.tool, server, caller))
    {
        let violation = |v: crate::policy::arguments::Violation| Reject::PolicyViolation {
            rule: v.rule,
            message: v.message,
        };
        rule.admits(caller).map_err(violation)?;
        if !rule.reads_arguments() {
            continue;
        }
        let args = match &arguments {
            Some(a) => a,
            None => arguments.insert(read_arguments(view.body, view.call)?),
        };
        rule.check(args.as_ref()).map_err(violation)?;
    }
    Ok(())
}

/// `params.arguments` of a `tools/call` body (`None` when absent), from the span the strict
/// parse found (the only `arguments` there is: duplicates were refused), so only the
/// arguments are parsed, not the whole body again (a 2026-07-28 envelope is ~200 bytes).
pub(crate) fn read_arguments(
    body: &[u8],
    call: &RpcCall,
) -> Result<Option<serde_json::Value>, Reject> {
    let Some(raw) = call.arguments.clone().and_then(|r| body.get(r)) else {
        return Ok(None);
    };
    // `"arguments": null` reads as absent, as it always has.
    serde_json::from_slice::<Option<serde_json::Value>>(raw)
        .map_err(|e| Reject::InvalidParams(format!("tools/call params.arguments: {e}")))
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
