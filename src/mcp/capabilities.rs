//! The client capabilities the gateway can relay to an upstream, and what it declares with
//! them when it opens upstream sessions.
//!
//! An upstream may shape what it offers by what the client declares (the reference
//! server-everything lists its elicitation and roots tools only to clients that declare
//! them). A virtual server's client talks to upstream sessions the gateway opens, so those
//! sessions declare what that client declared, as far as the gateway relays it
//! ([`crate::vserver::ids`] and [`crate::vserver::reply`]: server-to-client requests on a
//! call's stream and the answers to them). [`ClientCaps`] is a small bit set, sealed into the
//! client's session token, so every replica opens upstream sessions the same way.
//!
//! Discovery and watch sessions ([`crate::registry`]) declare everything relayable
//! ([`ClientCaps::RELAYABLE`]): the catalog then holds every tool an upstream offers to a
//! capable client, and a client that lacks a capability is told so by the upstream when it
//! calls such a tool on its own session (which declares only what it declared).

use serde_json::{json, Map, Value};

/// Relayable client capabilities, one bit each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClientCaps(pub u8);

impl ClientCaps {
    pub const SAMPLING: u8 = 1;
    pub const SAMPLING_TOOLS: u8 = 1 << 1;
    pub const SAMPLING_CONTEXT: u8 = 1 << 2;
    pub const ELICITATION: u8 = 1 << 3;
    pub const ELICITATION_FORM: u8 = 1 << 4;
    pub const ELICITATION_URL: u8 = 1 << 5;
    pub const ROOTS: u8 = 1 << 6;
    pub const ROOTS_LIST_CHANGED: u8 = 1 << 7;

    /// Everything the gateway relays, as discovery declares it (elicitation in both modes).
    pub const RELAYABLE: ClientCaps = ClientCaps(
        Self::SAMPLING
            | Self::ELICITATION
            | Self::ELICITATION_FORM
            | Self::ELICITATION_URL
            | Self::ROOTS
            | Self::ROOTS_LIST_CHANGED,
    );

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// What a client's `initialize` body declares in `params.capabilities` (anything the
    /// gateway does not relay, such as `experimental` or `tasks`, is left out).
    pub fn of_initialize(body: &[u8]) -> ClientCaps {
        #[derive(serde::Deserialize)]
        struct Init {
            #[serde(default)]
            params: Option<Params>,
        }
        #[derive(serde::Deserialize)]
        struct Params {
            #[serde(default)]
            capabilities: Option<Map<String, Value>>,
        }
        let Some(caps) = serde_json::from_slice::<Init>(body)
            .ok()
            .and_then(|i| i.params)
            .and_then(|p| p.capabilities)
        else {
            return ClientCaps::default();
        };
        Self::of_map(&caps)
    }

    /// What a 2026-07-28 request declares in
    /// `params._meta["io.modelcontextprotocol/clientCapabilities"]` (its raw JSON; anything
    /// but an object declares nothing).
    pub fn of_json(caps: &str) -> ClientCaps {
        // `{}` (a client that can be asked nothing, the common case) needs no map.
        if caps
            .bytes()
            .all(|b| matches!(b, b'{' | b'}' | b' ' | b'\t' | b'\n' | b'\r'))
        {
            return ClientCaps::default();
        }
        serde_json::from_str::<Map<String, Value>>(caps)
            .map_or_else(|_| ClientCaps::default(), |c| Self::of_map(&c))
    }

    /// Whether any server-to-client request could be answered (sampling, elicitation,
    /// roots).
    pub fn answers_requests(self) -> bool {
        self.has(Self::SAMPLING) || self.has(Self::ELICITATION) || self.has(Self::ROOTS)
    }

    fn of_map(caps: &Map<String, Value>) -> ClientCaps {
        let mut bits = 0;
        let mut flag = |on: bool, bit: u8| {
            if on {
                bits |= bit;
            }
        };
        let obj = |k: &str| caps.get(k).and_then(Value::as_object);
        let sub = |k: &str, s: &str| obj(k).is_some_and(|o| o.contains_key(s));
        flag(obj("sampling").is_some(), Self::SAMPLING);
        flag(sub("sampling", "tools"), Self::SAMPLING_TOOLS);
        flag(sub("sampling", "context"), Self::SAMPLING_CONTEXT);
        flag(obj("elicitation").is_some(), Self::ELICITATION);
        flag(sub("elicitation", "form"), Self::ELICITATION_FORM);
        flag(sub("elicitation", "url"), Self::ELICITATION_URL);
        flag(obj("roots").is_some(), Self::ROOTS);
        flag(
            obj("roots")
                .and_then(|r| r.get("listChanged"))
                .and_then(Value::as_bool)
                == Some(true),
            Self::ROOTS_LIST_CHANGED,
        );
        // Sub-capabilities count only under their capability.
        if bits & Self::SAMPLING == 0 {
            bits &= !(Self::SAMPLING_TOOLS | Self::SAMPLING_CONTEXT);
        }
        ClientCaps(bits)
    }

    /// The `capabilities` object to declare upstream.
    pub fn to_json(self) -> Value {
        let mut caps = Map::new();
        if self.has(Self::SAMPLING) {
            let mut s = Map::new();
            if self.has(Self::SAMPLING_TOOLS) {
                s.insert("tools".into(), json!({}));
            }
            if self.has(Self::SAMPLING_CONTEXT) {
                s.insert("context".into(), json!({}));
            }
            caps.insert("sampling".into(), Value::Object(s));
        }
        if self.has(Self::ELICITATION) {
            // `elicitation: {}` (2025-06-18) means form mode; sent back as it came.
            let mut e = Map::new();
            if self.has(Self::ELICITATION_FORM) {
                e.insert("form".into(), json!({}));
            }
            if self.has(Self::ELICITATION_URL) {
                e.insert("url".into(), json!({}));
            }
            caps.insert("elicitation".into(), Value::Object(e));
        }
        if self.has(Self::ROOTS) {
            caps.insert(
                "roots".into(),
                json!({ "listChanged": self.has(Self::ROOTS_LIST_CHANGED) }),
            );
        }
        Value::Object(caps)
    }
}

#[cfg(test)]
mod tests {
    use super::ClientCaps;
    use serde_json::json;

    fn caps(c: serde_json::Value) -> ClientCaps {
        let body =
            json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities": c}});
        ClientCaps::of_initialize(body.to_string().as_bytes())
    }

    #[test]
    fn declared_capabilities_go_upstream_as_declared() {
        for c in [
            json!({}),
            json!({"elicitation": {}}),
            json!({"elicitation": {"form": {}, "url": {}}}),
            json!({"sampling": {}, "roots": {"listChanged": true}}),
            json!({"sampling": {"tools": {}, "context": {}}, "roots": {"listChanged": false}}),
        ] {
            assert_eq!(caps(c.clone()).to_json(), c);
        }
    }

    #[test]
    fn what_the_gateway_does_not_relay_is_left_out() {
        let c = caps(json!({"experimental": {"x": {}}, "tasks": {}, "elicitation": {"form": {}}}));
        assert_eq!(c.to_json(), json!({"elicitation": {"form": {}}}));
        assert_eq!(
            ClientCaps::of_initialize(b"not json"),
            ClientCaps::default()
        );
        assert_eq!(caps(json!({"sampling": true})), ClientCaps::default());
    }

    #[test]
    fn a_modern_request_declares_in_its_envelope() {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t",
            "_meta":{"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}})
        .to_string();
        let call = crate::mcp::jsonrpc::parse(body.as_bytes(), 64).unwrap();
        let c = crate::mcp::envelope::read_meta(body.as_bytes(), &call)
            .unwrap()
            .caps;
        assert_eq!(c.to_json(), json!({"elicitation": {}}));
        assert!(c.answers_requests());
        assert!(!ClientCaps::of_json("{}").answers_requests());
        assert!(!ClientCaps::of_json(" { } ").answers_requests());
        assert!(!ClientCaps::of_json("[]").answers_requests());
        assert!(ClientCaps::of_json(r#"{"roots":{}}"#).answers_requests());
    }

    #[test]
    fn discovery_declares_everything_relayable() {
        assert_eq!(
            ClientCaps::RELAYABLE.to_json(),
            json!({"sampling": {}, "elicitation": {"form": {}, "url": {}}, "roots": {"listChanged": true}})
        );
    }
}
