//! Client messages to a virtual server that are not requests: answers to server-to-client
//! requests, and cancellations. Each goes to the one upstream session it concerns, or is
//! accepted (202) and dropped when it concerns none.
//!
//! | message | goes to | how it is found |
//! |---|---|---|
//! | a JSON-RPC response (`elicitation/create`, `sampling/createMessage`, `roots/list` answered) | the upstream named in its gateway id, on this client session's upstream session there, with the upstream's own id restored | [`super::ids::decode`]; no table |
//! | `notifications/cancelled` | the upstream running that request id for this client session | the in-flight table ([`track`]), filled when a call is forwarded and emptied when its answer ends |
//! | any other notification | nowhere (202) | |
//!
//! A response whose id is not a gateway id, names an upstream outside this virtual server,
//! or names one this client session has no upstream session with is refused (400, -32600,
//! saying which): the request it would answer cannot exist. Forwarding goes through
//! [`crate::decision::decide`] like a call (a target without a tool, so only its credential
//! step applies): the upstream gets the caller's credential exactly as a call would.
//!
//! Cancellation uses a table rather than telling every upstream: a client's request ids are
//! only unique per direction and session, the spec says a cancellation MUST only name a
//! request the receiver has in flight, and each upstream session of a client session gets a
//! different subset of its calls. The table is per replica ([`InFlight`], bounded): a
//! cancellation reaching another replica, or one for a call already finished, is accepted
//! and dropped, which the spec allows ("receivers MAY ignore").

use std::borrow::Cow;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::decision::{Exchange, SessionBinding, Target};
use crate::digest::Digest;
use crate::error::Reject;
use crate::mcp::jsonrpc::{self, MessageKind};
use crate::state::{Runtime, Shared};
use crate::store::BoundedMap;
use crate::upstreams::UpstreamRt;

use super::{ids, Answer, Request};

/// Calls in flight on all virtual servers of this replica, for routing cancellations: one
/// entry per forwarded call (about 100 bytes), removed when its answer ends. 100,000 is far
/// above the concurrent calls a replica holds; when full, the entry closest to expiry goes
/// (its cancellation would then be dropped, never misrouted).
pub const MAX_IN_FLIGHT: usize = 100_000;

/// Call (client session digest + request id) → upstream name.
pub type InFlight = BoundedMap<Digest, String>;

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The in-flight key of request `id` (raw JSON) in client session `session`: ids compare
/// as JSON values, so `"a"` and `"\u0061"` are one id. `None` for an id too long to track.
fn key(session: Digest, id: &[u8]) -> Option<Digest> {
    if id.len() > ids::MAX_RAW_ID {
        return None;
    }
    let canonical = canonical_id(id)?;
    Some(crate::digest::keyed(&[
        &session.to_le_bytes(),
        canonical.as_bytes(),
    ]))
}

/// `id` as `serde_json::Value` writes it. The ids clients send are almost always already in
/// that form (a string without escapes, or a small integer): those are taken as they are,
/// with no parse and no copy (every modern call and every tracked legacy call passes here).
fn canonical_id(id: &[u8]) -> Option<Cow<'_, str>> {
    let plain_string = id.len() >= 2
        && id.first() == Some(&b'"')
        && id.last() == Some(&b'"')
        && !id[1..id.len() - 1]
            .iter()
            .any(|&b| b == b'"' || b == b'\\' || b < 0x20);
    // At most 18 digits: always an i64/u64, which Value writes back digit for digit. No
    // leading zero (JSON has none but "0" itself) and no "-0" (written back as "0").
    let digits = id.strip_prefix(b"-").unwrap_or(id);
    let plain_integer = !digits.is_empty()
        && digits.len() <= 18
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && id.len() == 1));
    if plain_string || plain_integer {
        return std::str::from_utf8(id).ok().map(Cow::Borrowed);
    }
    let value = serde_json::from_slice::<serde_json::Value>(id).ok()?;
    Some(Cow::Owned(value.to_string()))
}

/// Remember that request `id` of client session `session` runs on `upstream`, until its
/// answer ends ([`done`]) or the session expires. Returns the key to pass to [`done`].
pub fn track(
    shared: &Shared,
    session: Digest,
    expires: u64,
    id: &[u8],
    upstream: &str,
) -> Option<Digest> {
    let k = key(session, id)?;
    shared
        .in_flight
        .insert(k, upstream.to_string(), expires, now());
    Some(k)
}

/// Most upstream sessions the gateway holds, per upstream, for one modern (sessionless)
/// caller. Each holds at most one call per JSON-RPC id at a time (see [`reserve_modern`]), so
/// this is also how many calls with the same id one caller may have in flight: stateless
/// clients often all start counting at 1 (and an anonymous server's callers are one caller).
pub const MAX_MODERN_SLOTS: u64 = 128;

/// Choose the upstream-session slot for a modern caller's call `id` and reserve it: the
/// first of the caller's slots (`base` is slot 0) where no call with this id is in flight.
/// A modern caller's calls share the upstream sessions the gateway holds for it, and an
/// upstream routes each answer by the request's id (the Python SDK keeps one stream per id
/// per session): two calls with one id on one session would get each other's answers.
/// Returns the slot's session digest and the in-flight key ([`done`] frees it).
pub fn reserve_modern(
    shared: &Shared,
    base: Digest,
    expires: u64,
    id: &[u8],
    upstream: &str,
) -> Result<(Digest, Digest), crate::error::Reject> {
    let too_long = || {
        crate::error::Reject::InvalidRequest(format!(
            "a request id longer than {} bytes cannot be tracked; use a shorter id",
            ids::MAX_RAW_ID
        ))
    };
    let now = now();
    for slot in 0..MAX_MODERN_SLOTS {
        let digest = if slot == 0 {
            base
        } else {
            crate::digest::keyed(&[b"modern-slot", &base.to_le_bytes(), &slot.to_le_bytes()])
        };
        let k = key(digest, id).ok_or_else(too_long)?;
        if shared
            .in_flight
            .insert_new(k, upstream.to_string(), expires, now)
        {
            return Ok((digest, k));
        }
    }
    Err(crate::error::Reject::InvalidRequest(format!(
        "{MAX_MODERN_SLOTS} calls with this request id are already in flight for this caller; give concurrent requests distinct ids"
    )))
}

/// The call's answer ended: it can no longer be cancelled.
pub fn done(shared: &Shared, key: Digest) {
    shared.in_flight.remove(&key);
}

/// How to answer a client message that is not a request (the session is checked).
pub(super) fn route(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    session: Digest,
    expires: u64,
) -> Result<Answer, Reject> {
    match req.call.kind {
        MessageKind::Response => response(shared, runtime, req, session, expires),
        MessageKind::Notification
            if req.call.method_name(req.body).as_deref() == Some("notifications/cancelled") =>
        {
            Ok(cancelled(shared, runtime, req, session, expires))
        }
        _ => Ok(Answer::Accepted),
    }
}

/// A client's answer to a server-to-client request: back to the upstream session that
/// asked, with its id.
fn response(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    session: Digest,
    expires: u64,
) -> Result<Answer, Reject> {
    let refuse = |why: String| Reject::InvalidRequest(why);
    let id_span = req
        .call
        .id
        .clone()
        .ok_or_else(|| refuse("a response needs an id".into()))?;
    let id_json = req.body.get(id_span.clone()).unwrap_or_default();
    let (name, original) = ids::decode(session, id_json).map_err(|e| {
        refuse(match e {
            ids::Undecodable::NotOurs => format!(
                "response id {} was not issued by this gateway: answer a server-to-client request with the id it came with",
                crate::error::clip(&String::from_utf8_lossy(id_json))
            ),
            ids::Undecodable::BadOriginal => {
                "response id is a gateway id whose original id is not a JSON string or number"
                    .into()
            }
        })
    })?;
    let Some(upstream) = member(runtime, req.server, &name) else {
        return Err(refuse(format!(
            "response id names upstream {}, which is not part of virtual server {}",
            crate::error::clip(&name),
            req.server.name
        )));
    };
    if shared
        .upstream_sessions
        .get(&session, &name, now())
        .is_none()
    {
        return Err(refuse(format!(
            "this session has no open session with upstream {name} (it expired or was never opened): the request this answers is gone"
        )));
    }
    let mut body = Vec::with_capacity(req.body.len() + original.len());
    body.extend_from_slice(&req.body[..id_span.start]);
    body.extend_from_slice(&original);
    body.extend_from_slice(&req.body[id_span.end..]);
    let body = Bytes::from(body);
    let call = jsonrpc::parse(&body, runtime.config.limits.max_json_depth).map_err(|f| f.reject)?;
    Ok(Answer::Relay {
        target: on_session(upstream, session, expires),
        body,
        call,
    })
}

/// `notifications/cancelled` from the client: to the upstream running the request.
fn cancelled(
    shared: &Shared,
    runtime: &Runtime,
    req: &Request<'_>,
    session: Digest,
    expires: u64,
) -> Answer {
    let upstream = ids::request_id_span(req.body)
        .and_then(|s| req.body.get(s))
        .and_then(|id| key(session, id))
        .and_then(|k| shared.in_flight.get(&k, now()))
        .and_then(|name| member(runtime, req.server, &name));
    match upstream {
        Some(upstream) => Answer::Relay {
            target: on_session(upstream, session, expires),
            body: req.body.clone(),
            call: req.call.clone(),
        },
        // Finished, unknown, or tracked on another replica: nothing to cancel here.
        None => Answer::Accepted,
    }
}

/// The upstream called `name` if virtual server `vs` includes it.
fn member(
    runtime: &Runtime,
    vs: &crate::config::VirtualServer,
    name: &str,
) -> Option<std::sync::Arc<UpstreamRt>> {
    vs.upstreams
        .iter()
        .filter_map(|&i| runtime.upstreams.get(i))
        .find(|u| u.name() == name)
        .cloned()
}

/// A message for `upstream` on client session `session`'s upstream session there.
fn on_session(upstream: std::sync::Arc<UpstreamRt>, session: Digest, expires: u64) -> Target {
    Target {
        upstream,
        exchange: Exchange::Message,
        tool: None,
        session: SessionBinding::Gateway {
            digest: session,
            expires,
        },
        item: None,
    }
}

#[cfg(test)]
mod tests {
    use super::key;

    #[test]
    fn in_flight_keys_compare_ids_as_json_values_per_session() {
        assert_eq!(key(1, b"\"a\""), key(1, b"\"\\u0061\""));
        assert_eq!(key(1, b"7"), key(1, b"7"));
        assert_ne!(key(1, b"7"), key(2, b"7"));
        assert_ne!(key(1, b"7"), key(1, b"\"7\""));
        assert_eq!(key(1, &[b'1'; super::ids::MAX_RAW_ID + 1]), None);
    }

    #[test]
    fn plain_ids_are_taken_as_written_and_others_as_value_writes_them() {
        for id in [
            "1",
            "0",
            "-7",
            "123456789012345678",
            "\"a\"",
            "\"\"",
            "\"é x\"",
            "-0",
            "007",
            "1.0",
            "1e3",
            "\"\\u0061\"",
            "12345678901234567890",
            " 1",
        ] {
            let want = serde_json::from_str::<serde_json::Value>(id.trim())
                .map(|v| v.to_string())
                .ok();
            assert_eq!(
                super::canonical_id(id.as_bytes()).map(|c| c.into_owned()),
                want,
                "{id}"
            );
        }
    }
}
