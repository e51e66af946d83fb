//! MRTR for 2026-07-28 clients of handshake-era upstream sessions: an upstream's
//! server-to-client request (`elicitation/create`, `sampling/createMessage`, `roots/list`) on
//! a call's stream becomes an `InputRequiredResult`, and the client's retry with
//! `inputResponses` goes back to the upstream as the JSON-RPC responses it waits for.
//!
//! The upstream keeps one request open across the client's two (or more) requests, so such a
//! call cannot use Pingora's proxy loop, which ties the upstream request to the client's. A
//! modern `tools/call` whose `_meta` declares a capability an upstream could ask for
//! (sampling, elicitation, roots) is *bridged* instead:
//!
//! | step | what |
//! |---|---|
//! | [`start`] | a task (`pump`) sends the call on the held upstream session (declaring the client's capabilities) and feeds the answer into a channel; the request handler relays it through the same `relay` filters as the proxy path |
//! | a server-to-client request in the stream | taken out (`vserver::ids::IdRewriter::refusing`); the client's answer ends with `{"resultType":"input_required","inputRequests":{"r0":{method,params}},"requestState":"mcpgw-mrtr.<token>"}`; the call is *parked*: channel, filters, upstream ids |
//! | the retry's decision (same caller, same tool, same arguments, `requestState`) | [`crate::decision::decide`] opens the parked call ([`ParkedCalls::open`]) after visibility and policy, instead of approval and quota: the retry is the same call, approved and charged once (it carries the first round's permits and metered budgets: `quota::Held::carry`) |
//! | [`resume`] | each `inputResponses[key]` is posted to the upstream session as the response to the request it answers (one that is missing gets an error), then the parked answer goes on streaming, its final result carrying the retry's id |
//!
//! Bounds: at most [`MAX_PARKED`] parked calls per replica (past that, the request is
//! refused as for an unbridged call: `proxy::held`), each for at most [`PARK_FOR`]; an
//! expired one is cancelled upstream (`notifications/cancelled`) and its connection closed.
//! Per principal, at most `limits.max_parked_calls_per_principal` ([`crate::caps`]): a call
//! holds one of its caller's places from its first question until it ends (answered,
//! expired, failed, or its client gone: the place is a [`crate::caps::Slot`] in [`Parked`]),
//! across any further rounds. A caller holding all of them gets 429 for a new bridged call
//! before anything goes upstream; one that reaches the cap while its call runs (a race) has
//! that call's question refused in the stream, as for a full replica.
//! A `requestState` that opens no parked call (expired, finished, another replica, another
//! caller) is refused (400, -32602): sending the retry upstream would run the tool again.
//! It is decided as a new call first (approval, quota), so a forged one skips nothing.
//!
//! Audit: the first round's record keeps the `request_id` it had when its call parked;
//! each retry's record `resumes` it, with its `round` and the SHA-256 of its canonical
//! `inputResponses` (docs/audit.md).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use tokio::sync::mpsc;

use super::ctx::{RequestCtx, ResponseMode, UpstreamSession};
use super::{outbound, relay, respond};
use crate::decision::SessionBinding;
use crate::digest::Digest;
use crate::error::Reject;
use crate::metrics::Outcome;
use crate::registry::client::{McpClient, UpstreamSession as Held};
use crate::state::Shared;
use crate::vserver::ids::{IdRewriter, Refused};

/// Most calls one replica keeps parked: each holds an upstream connection (waiting for a
/// person to answer) and a few KiB of state.
pub const MAX_PARKED: usize = 1024;

/// How long a parked call waits for its retry: a person answering a form, well above the
/// Python SDK client's round trip, below typical upstream session lifetimes.
pub const PARK_FOR: Duration = Duration::from_secs(300);

/// Prefix of the `requestState` the gateway issues.
const STATE_PREFIX: &str = "mcpgw-mrtr.";

/// Chunks of an upstream answer buffered between the pump and the client (64 KiB chunks at
/// most, so 1 MiB per bridged call).
const CHANNEL: usize = 16;

/// What the pump reads from the upstream.
enum Up {
    Header(Box<ResponseHeader>),
    Chunk(Bytes),
    End,
    Failed(Box<pingora::Error>),
}

/// A call waiting for its client's retry.
pub struct Parked {
    /// (virtual server, caller): only the same caller's retry opens it.
    caller: Digest,
    /// The exposed tool name: the retry must call the same tool.
    tool: String,
    /// SHA-256 of the call's canonical arguments: the retry must repeat them, so what the
    /// decision checked and the audit records for it are what the upstream is running.
    arguments: [u8; 32],
    rx: mpsc::Receiver<Up>,
    pump: tokio::task::JoinHandle<()>,
    upstream: Arc<crate::upstreams::UpstreamRt>,
    sid: String,
    credential: Option<http::HeaderValue>,
    /// The call's id as the upstream knows it (raw JSON).
    original_id: Vec<u8>,
    /// `inputRequests` key → the upstream's request id (raw JSON).
    asked: Vec<(String, Vec<u8>)>,
    ids: Option<Box<IdRewriter>>,
    /// The result rewriter (exposed URIs, a modern client's log floor), with any partial
    /// event it holds.
    results: Option<Box<crate::vserver::results::ResultRewriter>>,
    response: ResponseMode,
    header: ResponseHeader,
    in_flight: Option<Digest>,
    deadline: Instant,
    /// The caller, as its caps count it ([`crate::caps`]).
    principal: crate::caps::PrincipalKey,
    /// Its caller's place under `limits.max_parked_calls_per_principal`, from the first
    /// time it parked; given back when the call is dropped, however it ends.
    slot: Option<crate::caps::Slot>,
    /// What the call still holds of its quotas (permits, metered budgets): the retry's.
    quota: crate::quota::Held,
    /// The first round's audit `request_id`, and the number of the round the retry is.
    first: String,
    round: u32,
}

impl Parked {
    /// What the call still holds of its quotas, for the retry's decision.
    pub(crate) fn take_quota(&mut self) -> crate::quota::Held {
        std::mem::take(&mut self.quota)
    }
}

impl Drop for Parked {
    fn drop(&mut self) {
        // The upstream connection goes with the pump.
        self.pump.abort();
    }
}

impl std::fmt::Debug for Parked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parked")
            .field("tool", &self.tool)
            .field("asked", &self.asked.len())
            .finish_non_exhaustive()
    }
}

/// The parked calls of this replica, by token.
#[derive(Debug, Default)]
pub struct ParkedCalls {
    map: Mutex<HashMap<Digest, Box<Parked>>>,
    next: std::sync::atomic::AtomicU64,
}

impl ParkedCalls {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Digest, Box<Parked>>> {
        self.map.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Park `p`; its token, or `p` back when the table is full.
    fn park(&self, p: Box<Parked>) -> Result<Digest, Box<Parked>> {
        let mut map = self.lock();
        if map.len() >= MAX_PARKED {
            return Err(p);
        }
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = crate::digest::keyed(&[b"mrtr", &p.caller.to_le_bytes(), &n.to_le_bytes()]);
        map.insert(token, p);
        Ok(token)
    }

    /// Take the call parked under `token` for `caller`, `tool` and `arguments` (SHA-256 of
    /// the canonical arguments the upstream runs: [`arguments_digest`]), unless it expired (a
    /// retry naming another caller, tool or arguments leaves it parked). The decision's
    /// resumption step; its quota moves to the retry's decision.
    pub(crate) fn open(
        &self,
        token: Digest,
        caller: Digest,
        tool: &str,
        arguments: &[u8; 32],
    ) -> Option<Box<Parked>> {
        let mut map = self.lock();
        let ok = map.get(&token).is_some_and(|p| {
            p.caller == caller
                && p.tool == tool
                && &p.arguments == arguments
                && p.deadline > Instant::now()
        });
        ok.then(|| map.remove(&token)).flatten()
    }

    /// Park `p` again under its `token`: its retry was opened, then refused by a later
    /// decision step (its credential), so nothing was sent and the call still waits.
    pub(crate) fn put_back(&self, token: Digest, p: Box<Parked>) {
        self.lock().insert(token, p);
    }

    /// Take the call parked under `token` if it expired.
    fn take_expired(&self, token: Digest) -> Option<Box<Parked>> {
        let mut map = self.lock();
        let expired = map
            .get(&token)
            .is_some_and(|p| p.deadline <= Instant::now());
        expired.then(|| map.remove(&token)).flatten()
    }

    /// How many calls are parked.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn state(token: Digest) -> String {
    format!("{STATE_PREFIX}{token:032x}")
}

/// The token of a `requestState` the gateway issued.
fn open_state(s: &str) -> Option<Digest> {
    let hex = s.strip_prefix(STATE_PREFIX)?;
    (hex.len() == 32)
        .then(|| Digest::from_str_radix(hex, 16).ok())
        .flatten()
}

/// Whether a decided request is bridged: a modern client's `tools/call` on a held upstream
/// session whose client declared a capability an upstream could ask for.
pub(crate) fn bridged(ctx: &RequestCtx, caps: crate::mcp::capabilities::ClientCaps) -> bool {
    caps.answers_requests()
        && ctx.method == crate::mcp::McpMethod::ToolsCall
        && ctx
            .target
            .as_ref()
            .is_some_and(crate::decision::Target::translates)
        && matches!(ctx.upstream_session, UpstreamSession::Gateway(Some(_)))
}

/// The `requestState` of a modern `tools/call` retry, if the gateway issued it (refused
/// when it has the gateway's prefix but is not one of its tokens). Read from the body the
/// decision checks (`call` is its parse, whose strict pass located `params.requestState`,
/// escaped key spellings included; the envelope strip and rename leave it as sent).
pub(crate) fn retry_state(
    body: &[u8],
    call: &crate::mcp::jsonrpc::RpcCall,
) -> Option<Result<Digest, Reject>> {
    let s = crate::mcp::jsonrpc::string_at(body, call.request_state()?)?;
    if !s.starts_with(STATE_PREFIX) {
        return None;
    }
    Some(open_state(&s).ok_or_else(unknown_state))
}

pub(crate) fn unknown_state() -> Reject {
    Reject::InvalidParams(
        "requestState names no call waiting for input on this gateway (it expired, was answered, belongs to another caller, or the retry changed the tool or its arguments): retry with the same tool and arguments, or call the tool again without it".into(),
    )
}

/// SHA-256 of a call's canonical `params.arguments` (of nothing, when it has none or they
/// cannot be read), in `body` as the upstream runs it.
pub(crate) fn arguments_digest(body: &[u8], call: &crate::mcp::jsonrpc::RpcCall) -> [u8; 32] {
    sha256_canonical(call.arguments.clone().and_then(|r| body.get(r)))
}

/// SHA-256 of the canonical form of `raw` (of nothing, when absent or unreadable).
fn sha256_canonical(raw: Option<&[u8]>) -> [u8; 32] {
    let canonical = raw
        .and_then(|raw| crate::approval::canonical_value(raw, 128).ok())
        .unwrap_or_default();
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, &canonical).as_ref());
    out
}

/// Forward a bridged call and relay its answer (see the module docs). `caller` is the
/// modern binding's base digest (before slots).
pub(crate) async fn start(
    shared: &Arc<Shared>,
    session: &mut Session,
    ctx: &mut RequestCtx,
    caller: Digest,
) -> pingora::Result<()> {
    let Some(upstream) = ctx.target.as_ref().map(|t| t.upstream.clone()) else {
        return Err(internal("bridged call without a target"));
    };
    // A caller holding its most parked calls gets a clear refusal before anything runs,
    // rather than a call whose question would be refused in the stream.
    let principal = crate::caps::PrincipalKey::of(ctx.principal.as_deref());
    let cap = parked_cap(shared);
    if let Err(reject) = shared
        .caps
        .room(crate::caps::Cap::ParkedCalls, principal, cap)
    {
        super::give_back(shared, ctx).await;
        return respond::reject(session, ctx, &reject).await;
    }
    // The stream peer: a parked call's upstream stream idles while a person answers.
    let peer = upstream.peer(true).clone();
    let mut req = session.req_header().clone();
    super::forward::strip_hop_by_hop(&mut req);
    outbound::request_header(&mut req, ctx)?;
    req.insert_header(http::header::CONTENT_LENGTH, ctx.body.len().to_string())?;
    let (tx, mut rx) = mpsc::channel(CHANNEL);
    let pump = tokio::spawn(pump(
        shared.http.clone(),
        peer,
        req,
        ctx.body.clone(),
        upstream.config.idle_timeout,
        tx,
    ));
    ctx.timings.forwarded_at = Some(Instant::now());
    let header = match rx.recv().await {
        Some(Up::Header(h)) => *h,
        Some(Up::Failed(e)) => {
            super::give_back_if_undelivered(shared, ctx, &e).await;
            return fail(session, ctx, &e).await;
        }
        _ => return fail(session, ctx, &internal("upstream answer ended early")).await,
    };
    ctx.timings.upstream_header_at = Some(Instant::now());
    ctx.upstream_status = Some(header.status.as_u16());
    if super::heal::is_session_lost(ctx, header.status.as_u16()) {
        // Reported, not resent: the client's retry opens a new session.
        if let Some(t) = &ctx.target {
            if let SessionBinding::Gateway { digest, .. } = t.session {
                crate::vserver::session::forget_upstream_session(shared, digest, t.upstream_name());
            }
        }
        let lost = Reject::Upstream {
            upstream: upstream.name().to_string(),
            cause: "lost the session (it restarted?); the call was not resent: call it again"
                .into(),
            timeout: false,
        };
        return respond::reject(session, ctx, &lost).await;
    }
    if let Some(reject) = relay::early_reject(&header, ctx) {
        return respond::reject(session, ctx, &reject).await;
    }
    let mut resp = header;
    relay::response_header(&mut resp, ctx)?;
    session
        .write_response_header(Box::new(resp.clone()), false)
        .await
        .map_err(|e| gone(ctx, e))?;
    let original_id = ctx.id_json().unwrap_or(b"null").to_vec();
    let Some(sid) = (match &ctx.upstream_session {
        UpstreamSession::Gateway(Some(s)) => Some(s.clone()),
        _ => None,
    }) else {
        return Err(internal("bridged call without an upstream session"));
    };
    let tool = ctx
        .tool
        .as_ref()
        .and_then(super::ctx::ToolRef::exposed)
        .unwrap_or_default()
        .to_string();
    let arguments = ctx
        .call
        .as_ref()
        .map(|c| arguments_digest(&ctx.body, c))
        .unwrap_or_else(|| sha256_canonical(None));
    let parked = Box::new(Parked {
        caller,
        tool,
        arguments,
        rx,
        pump,
        upstream,
        sid,
        credential: ctx.credential().cloned(),
        original_id,
        asked: Vec::new(),
        ids: None,
        results: None,
        response: ResponseMode::Passthrough,
        header: resp,
        in_flight: None,
        deadline: Instant::now(),
        principal,
        slot: None,
        quota: crate::quota::Held::default(),
        first: String::new(),
        round: 1,
    });
    carry_on(shared, session, ctx, parked).await
}

fn parked_cap(shared: &Shared) -> usize {
    shared
        .runtime
        .load()
        .config
        .limits
        .max_parked_calls_per_principal
}

/// The retry of a parked call, opened by its decision (`Decision::resumed`): post the
/// client's answers upstream, then go on relaying.
pub(crate) async fn resume(
    shared: &Arc<Shared>,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> pingora::Result<()> {
    let Some(mut parked) = ctx.decision.as_mut().and_then(|d| d.resumed.take()) else {
        return Err(internal("a resumed call without its parked call"));
    };
    ctx.mrtr.get_or_insert_with(Default::default).round = Some(crate::audit::Round {
        first: Some(parked.first.clone()),
        number: Some(parked.round),
        input_responses: input_responses_digest(&ctx.body, ctx.call.as_ref()),
    });
    // The parked call keeps its upstream slot (its id is still in flight upstream), and
    // the upstream knows it by its first id (a cancellation must name that one).
    ctx.in_flight = parked.in_flight.take();
    ctx.upstream_id = Some(parked.original_id.clone());
    ctx.upstream_session = UpstreamSession::Gateway(Some(parked.sid.clone()));
    ctx.timings.forwarded_at = Some(Instant::now());
    let answers = input_responses(&ctx.body, ctx.call.as_ref());
    let client = McpClient {
        http: &shared.http,
        url: &parked.upstream.config.url,
        auth: parked
            .credential
            .as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|v| (parked.upstream.config.auth.header.as_str(), v)),
        timeout: parked.upstream.config.read_timeout,
    };
    let held = Held {
        id: Some(parked.sid.clone()),
        capabilities: serde_json::Value::Null,
    };
    for (key, raw) in std::mem::take(&mut parked.asked) {
        let id: serde_json::Value = serde_json::from_slice(&raw).unwrap_or_default();
        let message = match answers.get(&key) {
            Some(result) => serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}),
            None => serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": -32602,
                "message": format!("the client's retry carried no inputResponses[{key:?}]"),
            }}),
        };
        if let Err(cause) = client.notify(&held, &message).await {
            let failed = Reject::Upstream {
                upstream: parked.upstream.name().to_string(),
                cause: format!("did not take the client's input: {cause}"),
                timeout: false,
            };
            return respond::reject(session, ctx, &failed).await;
        }
    }
    let mut ids = parked.ids.take();
    if let (Some(ids), Some(retry)) = (ids.as_mut(), ctx.id_json()) {
        ids.respond_as(parked.original_id.clone(), retry.to_vec());
    }
    ctx.sse_ids = ids;
    ctx.results = parked.results.take();
    ctx.response = std::mem::take(&mut parked.response);
    session
        .write_response_header(Box::new(parked.header.clone()), false)
        .await
        .map_err(|e| gone(ctx, e))?;
    carry_on(shared, session, ctx, parked).await
}

/// Relay the upstream's answer to this client until it ends, or until the upstream asks
/// something: then answer `InputRequiredResult` and park the call.
async fn carry_on(
    shared: &Arc<Shared>,
    session: &mut Session,
    ctx: &mut RequestCtx,
    mut parked: Box<Parked>,
) -> pingora::Result<()> {
    // Watch the client while waiting on the upstream, as Pingora's proxy loop does: one that
    // leaves cancels the call (`proxy::held`), even when the upstream sends nothing for a while.
    let mut watch = true;
    loop {
        let next = if watch {
            tokio::select! {
                m = parked.rx.recv() => m,
                r = session.downstream_session.read_body_or_idle(true) => {
                    if let Err(e) = r {
                        return Err(gone(ctx, e.into_down()));
                    }
                    watch = false; // nothing to watch for on this connection
                    continue;
                }
            }
        } else {
            parked.rx.recv().await
        };
        let asked = match next {
            Some(Up::Chunk(c)) => {
                let mut body = Some(c);
                relay::response_body(&mut body, false, ctx);
                let asked = ctx
                    .sse_ids
                    .as_mut()
                    .map(|i| i.take_refused())
                    .unwrap_or_default();
                if body.as_ref().is_some_and(|b| !b.is_empty()) {
                    session
                        .write_response_body(body, false)
                        .await
                        .map_err(|e| gone(ctx, e))?;
                }
                asked
            }
            Some(Up::End) | None => {
                let mut body = None;
                relay::response_body(&mut body, true, ctx);
                return session
                    .write_response_body(body, true)
                    .await
                    .map_err(|e| gone(ctx, e));
            }
            Some(Up::Failed(e)) => {
                // Headers are out: all that is left is to close.
                ctx.outcome = Outcome::UpstreamError;
                return Err(e);
            }
            Some(Up::Header(_)) => continue,
        };
        if asked.is_empty() {
            continue;
        }
        // The caller's place, taken at the first question (a resumed call keeps its own).
        let fresh = parked.slot.is_none();
        if fresh {
            let cap = parked_cap(shared);
            match shared
                .caps
                .acquire(crate::caps::Cap::ParkedCalls, parked.principal, cap)
            {
                Ok(slot) => parked.slot = Some(slot),
                Err(_) => {
                    log::info!("a caller already has {cap} calls waiting for input (limits.max_parked_calls_per_principal): a request of upstream {} is refused", parked.upstream.name());
                    super::held::refuse(shared, ctx, asked);
                    continue;
                }
            }
        }
        let requests = input_requests(&asked);
        parked.asked = requests
            .iter()
            .map(|(k, raw, _)| (k.clone(), raw.clone()))
            .collect();
        parked.ids = ctx.sse_ids.take();
        parked.results = ctx.results.take();
        parked.response = std::mem::take(&mut ctx.response);
        parked.in_flight = ctx.in_flight.take();
        parked.deadline = Instant::now() + PARK_FOR;
        if let Some(d) = ctx.decision.as_mut() {
            parked.quota = d.quota.carry();
        }
        // The retry's record names the first round's: fixed here, before this one is written.
        let mrtr = ctx.mrtr.get_or_insert_with(Default::default);
        match mrtr
            .round
            .as_ref()
            .and_then(|r| Some((r.first.clone()?, r.number?)))
        {
            Some((first, n)) => (parked.first, parked.round) = (first, n + 1),
            None => {
                let id = mrtr
                    .request_id
                    .get_or_insert_with(crate::audit::request_id)
                    .clone();
                (parked.first, parked.round) = (id, 2);
            }
        }
        match shared.parked.park(parked) {
            Ok(token) => {
                let event = input_required(ctx.id_json(), &requests, &state(token));
                expire_later(shared, token);
                return session
                    .write_response_body(Some(event), true)
                    .await
                    .map_err(|e| gone(ctx, e));
            }
            Err(mut back) => {
                // Full: refuse as for a client that cannot answer, and go on relaying.
                log::warn!("{MAX_PARKED} calls already wait for input: a request of upstream {} is refused", back.upstream.name());
                ctx.sse_ids = back.ids.take();
                ctx.results = back.results.take();
                ctx.response = std::mem::take(&mut back.response);
                ctx.in_flight = back.in_flight.take();
                if fresh {
                    back.slot = None; // it holds no place while it is not parked
                }
                if let Some(d) = ctx.decision.as_mut() {
                    d.quota.uncarry(std::mem::take(&mut back.quota));
                }
                super::held::refuse(shared, ctx, asked);
                parked = back;
            }
        }
    }
}

/// `(key, upstream raw id, {method, params})` for each asked request.
fn input_requests(asked: &[Refused]) -> Vec<(String, Vec<u8>, serde_json::Value)> {
    asked
        .iter()
        .enumerate()
        .map(|(n, r)| {
            let msg: serde_json::Value = serde_json::from_slice(&r.message).unwrap_or_default();
            let mut req = serde_json::Map::new();
            req.insert("method".into(), r.method.clone().into());
            if let Some(p) = msg.get("params") {
                req.insert("params".into(), p.clone());
            }
            (
                format!("r{n}"),
                r.id.clone(),
                serde_json::Value::Object(req),
            )
        })
        .collect()
}

/// The SSE event ending the client's answer: an `InputRequiredResult` with its id.
fn input_required(
    id: Option<&[u8]>,
    requests: &[(String, Vec<u8>, serde_json::Value)],
    state: &str,
) -> Bytes {
    let id: serde_json::Value = id
        .and_then(|i| serde_json::from_slice(i).ok())
        .unwrap_or_default();
    let map: serde_json::Map<String, serde_json::Value> = requests
        .iter()
        .map(|(k, _, r)| (k.clone(), r.clone()))
        .collect();
    let msg = serde_json::json!({"jsonrpc": "2.0", "id": id, "result": {
        "resultType": "input_required",
        "inputRequests": map,
        "requestState": state,
    }});
    Bytes::from(format!("event: message\ndata: {msg}\n\n"))
}

/// SHA-256 of a retry's canonical `params.inputResponses`, when it has them: what its
/// audit record carries instead of the answers (a held call's rounds, and a 2026-07-28
/// upstream's own, `proxy::trail`). `call` is `body`'s parse, which located them.
pub(crate) fn input_responses_digest(
    body: &[u8],
    call: Option<&crate::mcp::jsonrpc::RpcCall>,
) -> Option<[u8; 32]> {
    let raw = call?.input_responses().and_then(|r| body.get(r))?;
    Some(sha256_canonical(Some(raw)))
}

/// The retry's `params.inputResponses` (empty when absent or not an object).
fn input_responses(
    body: &[u8],
    call: Option<&crate::mcp::jsonrpc::RpcCall>,
) -> serde_json::Map<String, serde_json::Value> {
    call.and_then(|c| c.input_responses())
        .and_then(|r| body.get(r))
        .and_then(|raw| serde_json::from_slice(raw).ok())
        .unwrap_or_default()
}

/// After [`PARK_FOR`], cancel the call upstream if it is still parked.
fn expire_later(shared: &Arc<Shared>, token: Digest) {
    let shared = shared.clone();
    tokio::spawn(async move {
        tokio::time::sleep(PARK_FOR).await;
        let Some(mut p) = shared.parked.take_expired(token) else {
            return;
        };
        let id: serde_json::Value = serde_json::from_slice(&p.original_id).unwrap_or_default();
        let note = serde_json::json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": id, "reason": "the 2026-07-28 client did not retry with its input in time"}});
        let then = p.in_flight.take().map(|k| (shared.clone(), k));
        super::held::post(
            shared.http.clone(),
            p.upstream.clone(),
            p.credential.clone(),
            p.sid.clone(),
            vec![note],
            then,
        );
    });
}

/// Send the request and feed the answer into `tx` until it ends or the receiver goes.
async fn pump(
    http: crate::http_client::HttpClient,
    peer: pingora::upstreams::peer::HttpPeer,
    req: pingora::http::RequestHeader,
    body: Bytes,
    idle: Duration,
    tx: mpsc::Sender<Up>,
) {
    let connector = http.connector();
    let run = async {
        let (mut up, _) = connector
            .get_http_session(&peer)
            .await
            .map_err(|e| e.into_up())?;
        up.set_read_timeout(peer.options.read_timeout);
        up.set_write_timeout(peer.options.write_timeout);
        up.write_request_header(Box::new(req))
            .await
            .map_err(|e| e.into_up())?;
        up.write_request_body(body, true)
            .await
            .map_err(|e| e.into_up())?;
        up.finish_request_body().await.map_err(|e| e.into_up())?;
        up.read_response_header().await.map_err(|e| e.into_up())?;
        let Some(h) = up.response_header().cloned() else {
            return Err(internal("upstream sent no response header").into_up());
        };
        if tx.send(Up::Header(Box::new(h))).await.is_err() {
            return Ok(());
        }
        loop {
            let chunk = up.read_response_body().await.map_err(|e| e.into_up())?;
            let end = chunk.is_none() || up.response_done();
            if let Some(c) = chunk {
                if tx.send(Up::Chunk(c)).await.is_err() {
                    return Ok(()); // the client left: dropping the connection closes it
                }
            }
            if end {
                let _ = tx.send(Up::End).await;
                break;
            }
        }
        connector.release_http_session(up, &peer, Some(idle)).await;
        Ok::<(), Box<pingora::Error>>(())
    };
    if let Err(e) = run.await {
        let _ = tx.send(Up::Failed(e)).await;
    }
}

fn internal(msg: &'static str) -> Box<pingora::Error> {
    pingora::Error::explain(pingora::ErrorType::InternalError, msg)
}

/// A write to the client failed: it left.
fn gone(ctx: &mut RequestCtx, e: Box<pingora::Error>) -> Box<pingora::Error> {
    ctx.outcome = Outcome::ClientClosed;
    e
}

/// Before any header went out: answer the failure as a JSON-RPC error.
async fn fail(
    session: &mut Session,
    ctx: &mut RequestCtx,
    e: &pingora::Error,
) -> pingora::Result<()> {
    let reject = respond::upstream_reject(ctx, e).unwrap_or_else(|| {
        Reject::Internal(format!(
            "forwarding the call failed: {}",
            e.etype().as_str()
        ))
    });
    respond::reject(session, ctx, &reject).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_state_round_trips_and_refuses_others() {
        let t: Digest = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;
        assert_eq!(open_state(&state(t)), Some(t));
        assert_eq!(open_state("mcpgw-mrtr.xyz"), None);
        assert_eq!(open_state("other"), None);
    }

    /// The strict pass locates `params.requestState` by its decoded key: an escaped spelling
    /// of the key carrying a gateway token is a retry like any other (never forwarded as a
    /// new call with the gateway's token), and the answers' digest is found the same way.
    #[test]
    fn a_retry_is_found_whatever_the_keys_spelling() {
        let t: Digest = 0x0123_4567_89ab_cdef_0011_2233_4455_6677;
        for key in ["requestState", "request\\u0053tate"] {
            let b = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"x","{key}":"{}","input\u0052esponses":{{"r0":{{"b":1,"a":2}}}}}}}}"#,
                state(t)
            );
            let call = crate::mcp::jsonrpc::parse(b.as_bytes(), 64).unwrap();
            assert_eq!(retry_state(b.as_bytes(), &call), Some(Ok(t)), "{b}");
            let digest = input_responses_digest(b.as_bytes(), Some(&call));
            assert_eq!(
                digest,
                Some(sha256_canonical(Some(br#"{"r0":{"a":2,"b":1}}"#))),
                "{b}"
            );
        }
        let b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","requestState":"mcpgw-mrtr.forged"}}"#;
        let call = crate::mcp::jsonrpc::parse(b, 64).unwrap();
        assert!(matches!(retry_state(b, &call), Some(Err(_))));
        let b = br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","requestState":"upstream-own"}}"#;
        let call = crate::mcp::jsonrpc::parse(b, 64).unwrap();
        assert_eq!(retry_state(b, &call), None);
    }

    #[test]
    fn the_input_required_event_carries_the_requests_and_the_state() {
        let asked = vec![Refused {
            id: b"3".to_vec(),
            method: "elicitation/create".into(),
            message: br#"{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{"message":"name?"}}"#.to_vec(),
        }];
        let reqs = input_requests(&asked);
        let ev = input_required(Some(b"9"), &reqs, "mcpgw-mrtr.x");
        let text = String::from_utf8_lossy(&ev);
        let data = text
            .strip_prefix("event: message\ndata: ")
            .and_then(|t| t.strip_suffix("\n\n"))
            .unwrap_or_default();
        let v: serde_json::Value = serde_json::from_str(data).unwrap_or_default();
        assert_eq!(v["id"], 9);
        assert_eq!(v["result"]["resultType"], "input_required");
        assert_eq!(v["result"]["requestState"], "mcpgw-mrtr.x");
        assert_eq!(
            v["result"]["inputRequests"]["r0"],
            serde_json::json!({"method": "elicitation/create", "params": {"message": "name?"}})
        );
        assert_eq!(reqs[0].1, b"3");
    }
}
