//! `subscriptions/listen` (2026-07-28): a modern client's long-lived stream of change
//! notifications, the sessionless counterpart of a legacy session's GET stream.
//!
//! The client opts in per type (`toolsListChanged`, `promptsListChanged`,
//! `resourcesListChanged`); the stream opens with `notifications/subscriptions/acknowledged`
//! naming the types honoured, and every frame carries
//! `_meta["io.modelcontextprotocol/subscriptionId"]` = the listen request's id. The changes
//! come from the same place as the GET stream's (`proxy::stream`: the registry's change
//! signal, compared per caller), so there is one fan-out, not two.
//!
//! Not honoured: `resourceSubscriptions` (per-URI `notifications/resources/updated` need
//! upstream subscriptions the gateway does not hold for sessionless callers); it is left out
//! of the acknowledgement, which the spec allows.
//!
//! Each stream holds a connection and a task for as long as the client stays, so a replica
//! serves at most [`MAX_STREAMS`] server-to-client streams, these and legacy GET streams
//! together (then 503, `Reject::StreamsFull`), and one caller at most
//! `limits.max_streams_per_principal` of them (then 429, `Reject::PrincipalCapReached`:
//! [`crate::caps`]), so no caller can take them all (`proxy::stream`).

use bytes::Bytes;

use crate::error::Reject;

use super::{Answer, Request};

/// Most server-to-client streams (legacy GET streams and `subscriptions/listen` streams
/// together) one replica holds open: each is an idle connection
/// and a task woken on registry changes (and every 15 s for a keep-alive), a few KiB each;
/// 4,096 is well under a default 65,536 file-descriptor limit shared with the proxied
/// traffic.
pub const MAX_STREAMS: usize = 4096;

/// The `_meta` key on every frame of a listen stream.
const SUBSCRIPTION_ID: &str = "io.modelcontextprotocol/subscriptionId";

/// The change notifications a client opted in to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Topics {
    pub tools: bool,
    pub prompts: bool,
    pub resources: bool,
}

/// An accepted `subscriptions/listen`: its frames, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `notifications/subscriptions/acknowledged`, the stream's first event.
    pub ack: Bytes,
    /// One event per opted-in type (`None`: not asked for).
    pub tools: Option<Bytes>,
    pub prompts: Option<Bytes>,
    pub resources: Option<Bytes>,
}

/// Read the request's filter and build the stream's frames.
pub(super) fn open(req: &Request<'_>) -> Result<Answer, Reject> {
    #[derive(serde::Deserialize)]
    struct Body {
        params: Params,
    }
    #[derive(serde::Deserialize)]
    struct Params {
        notifications: Filter,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Filter {
        #[serde(default)]
        tools_list_changed: Option<bool>,
        #[serde(default)]
        prompts_list_changed: Option<bool>,
        #[serde(default)]
        resources_list_changed: Option<bool>,
    }
    let f = serde_json::from_slice::<Body>(req.body)
        .map_err(|_| {
            Reject::InvalidParams(
                "subscriptions/listen needs params.notifications, an object of the notification types to receive (toolsListChanged, promptsListChanged, resourcesListChanged)".into(),
            )
        })?
        .params
        .notifications;
    let topics = Topics {
        tools: f.tools_list_changed == Some(true),
        prompts: f.prompts_list_changed == Some(true),
        resources: f.resources_list_changed == Some(true),
    };
    let id = req.id_json().unwrap_or(b"null");
    let id: serde_json::Value = serde_json::from_slice(id).unwrap_or_default();
    Ok(Answer::Listen(Box::new(frames(&id, topics))))
}

/// The frames of a listen stream with JSON-RPC id `id`.
fn frames(id: &serde_json::Value, topics: Topics) -> Listen {
    let meta = serde_json::json!({ SUBSCRIPTION_ID: id });
    let mut honoured = serde_json::Map::new();
    for (on, key) in [
        (topics.tools, "toolsListChanged"),
        (topics.prompts, "promptsListChanged"),
        (topics.resources, "resourcesListChanged"),
    ] {
        if on {
            honoured.insert(key.into(), true.into());
        }
    }
    let event = |method: &str, params: serde_json::Value| {
        let msg = serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params});
        Bytes::from(format!("event: message\ndata: {msg}\n\n"))
    };
    let change =
        |on: bool, method: &str| on.then(|| event(method, serde_json::json!({ "_meta": meta })));
    Listen {
        ack: event(
            "notifications/subscriptions/acknowledged",
            serde_json::json!({ "notifications": honoured, "_meta": meta }),
        ),
        tools: change(topics.tools, "notifications/tools/list_changed"),
        prompts: change(topics.prompts, "notifications/prompts/list_changed"),
        resources: change(topics.resources, "notifications/resources/list_changed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_subscription_id_and_only_the_types_asked_for() {
        let l = frames(
            &serde_json::json!("listen-1"),
            Topics {
                tools: true,
                ..Topics::default()
            },
        );
        let ack = String::from_utf8(l.ack.to_vec()).unwrap_or_default();
        assert!(
            ack.contains(r#""notifications":{"toolsListChanged":true}"#),
            "{ack}"
        );
        assert!(ack.contains(r#""io.modelcontextprotocol/subscriptionId":"listen-1""#));
        let tools = l.tools.map(|b| b.to_vec()).unwrap_or_default();
        let tools = String::from_utf8(tools).unwrap_or_default();
        assert!(tools.starts_with("event: message\ndata: {"), "{tools}");
        assert!(
            tools.contains("notifications/tools/list_changed"),
            "{tools}"
        );
        assert!(tools.contains(r#"/subscriptionId":"listen-1""#), "{tools}");
        assert!(tools.ends_with("\n\n"));
        assert!(l.prompts.is_none() && l.resources.is_none());
    }
}
