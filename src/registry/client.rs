//! A minimal MCP client (streamable HTTP, legacy revisions) for the gateway's own use:
//! discovering upstream tools and opening upstream sessions for virtual servers.
//!
//! Runs on [`HttpClient`] (Pingora's pooled connector). Answers may be JSON or SSE; for SSE
//! the whole (bounded) body is read and the response with the request's id is picked out,
//! which is fine for `initialize` and `tools/list`, never used for client traffic.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http_client::HttpClient;
use crate::mcp::capabilities::ClientCaps;

/// Upper bound on pages followed in one `tools/list` (a loop guard).
const MAX_PAGES: usize = 100;
/// Upper bound on tools accepted from one upstream.
pub const MAX_TOOLS: usize = 10_000;

/// An open upstream session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamSession {
    /// `Mcp-Session-Id`, when the upstream issued one (stateless servers don't).
    pub id: Option<String>,
    /// The upstream's `capabilities` from its `initialize` result (`Null` when unknown).
    pub capabilities: Value,
}

/// Talks MCP to one upstream URL with optional credential header.
#[derive(Debug)]
pub struct McpClient<'a> {
    pub http: &'a HttpClient,
    pub url: &'a url::Url,
    /// (header name, value) to authenticate to the upstream, e.g. a static service token.
    pub auth: Option<(&'a str, &'a str)>,
    pub timeout: Duration,
}

impl McpClient<'_> {
    /// `initialize` + `notifications/initialized`, declaring every client capability the
    /// gateway relays (discovery and watch sessions: see [`crate::mcp::capabilities`]).
    pub async fn initialize(&self) -> Result<UpstreamSession, String> {
        self.initialize_as(ClientCaps::RELAYABLE).await
    }

    /// `initialize` + `notifications/initialized`, declaring `caps` (a client's).
    pub async fn initialize_as(&self, caps: ClientCaps) -> Result<UpstreamSession, String> {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": crate::mcp::revision::PREFERRED, "capabilities": caps.to_json(),
                       "clientInfo": {"name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION")}}
        });
        let (resp, session_id) = self.post(None, &body).await?;
        let v = response_for(&resp, 1)?;
        if v.get("result").is_none() {
            return Err(format!("initialize failed: {}", error_text(&v)));
        }
        let session = UpstreamSession {
            id: session_id,
            capabilities: v["result"]["capabilities"].clone(),
        };
        let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        self.post(Some(&session), &note).await?;
        Ok(session)
    }

    /// Whether the upstream serves the stateless 2026-07-28 revision: a `server/discover`
    /// (with the envelope and metadata headers a modern client sends) whose result lists a
    /// revision the gateway speaks in `supportedVersions`. A definite answer only: `None`
    /// when the request failed on the way (timeout, connection), so the caller keeps what it
    /// knew. Any HTTP answer that is not such a result (a legacy-only server's 400, an
    /// error, a result without the revision) is `Some(false)`: the upstream is then used
    /// through held handshake-era sessions.
    pub async fn speaks_modern(&self) -> Option<bool> {
        let version = crate::mcp::revision::MODERN[0];
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "server/discover",
            "params": {"_meta": {
                crate::mcp::envelope::PROTOCOL_VERSION_META: version,
                "io.modelcontextprotocol/clientCapabilities": {},
                "io.modelcontextprotocol/clientInfo":
                    {"name": "mcp-gateway", "version": env!("CARGO_PKG_VERSION")}
            }}
        });
        let headers = [
            (crate::mcp::headers::MCP_PROTOCOL_VERSION, version),
            (crate::mcp::headers::MCP_METHOD, "server/discover"),
        ];
        let resp = self.send_json(&headers, &body).await.ok()?;
        Some(
            resp.status == 200
                && response_for(&resp.body, 1).is_ok_and(|v| {
                    v["result"]["supportedVersions"]
                        .as_array()
                        .is_some_and(|l| {
                            l.iter()
                                .filter_map(Value::as_str)
                                .any(crate::mcp::revision::is_modern)
                        })
                }),
        )
    }

    /// Every tool definition, following `nextCursor`.
    pub async fn list_tools(&self, session: &UpstreamSession) -> Result<Vec<Value>, String> {
        self.list_all(session, "tools/list", "tools").await
    }

    /// The upstream's prompts, resources and templates, each listed only when its
    /// `initialize` declared the capability. A list that fails is logged and left empty: a
    /// broken prompt list must not take the upstream's tools down with it.
    pub async fn list_offers(
        &self,
        session: &UpstreamSession,
        upstream: &str,
    ) -> crate::registry::Offers {
        let declared = |c: &str| session.capabilities.get(c).is_some_and(Value::is_object);
        let mut offers = crate::registry::Offers {
            completions: declared("completions"),
            logging: declared("logging"),
            subscribe: session.capabilities["resources"]["subscribe"] == Value::Bool(true),
            ..Default::default()
        };
        let lists = [
            ("prompts", "prompts/list", "prompts", &mut offers.prompts),
            (
                "resources",
                "resources/list",
                "resources",
                &mut offers.resources,
            ),
            (
                "resources",
                "resources/templates/list",
                "resourceTemplates",
                &mut offers.templates,
            ),
        ];
        for (cap, method, key, out) in lists {
            if !declared(cap) {
                continue;
            }
            match self.list_all(session, method, key).await {
                Ok(list) => *out = list,
                Err(e) => log::warn!("registry: upstream {upstream:?} {method} failed: {e}"),
            }
        }
        offers
    }

    /// Every item of a list method (`key` in its results), following `nextCursor`.
    async fn list_all(
        &self,
        session: &UpstreamSession,
        method: &str,
        key: &str,
    ) -> Result<Vec<Value>, String> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        for page in 0..MAX_PAGES {
            let id = 2 + page as u64;
            let params = match &cursor {
                Some(c) => json!({ "cursor": c }),
                None => json!({}),
            };
            let body = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
            let (resp, _) = self.post(Some(session), &body).await?;
            let v = response_for(&resp, id)?;
            let Some(result) = v.get("result") else {
                return Err(format!("{method} failed: {}", error_text(&v)));
            };
            if let Some(list) = result.get(key).and_then(Value::as_array) {
                items.extend(list.iter().cloned());
            }
            if items.len() > MAX_TOOLS {
                return Err(format!("more than {MAX_TOOLS} {key}"));
            }
            match result.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_string()),
                _ => return Ok(items),
            }
        }
        Err(format!("{method} did not end after {MAX_PAGES} pages"))
    }

    /// End the session (best effort).
    pub async fn close(&self, session: &UpstreamSession) {
        let Some(id) = &session.id else { return };
        let mut headers = vec![(crate::mcp::headers::MCP_SESSION_ID, id.as_str())];
        if let Some((k, v)) = self.auth {
            headers.push((k, v));
        }
        let _ = self
            .http
            .send("DELETE", self.url, &headers, None, self.timeout)
            .await;
    }

    /// One request `method` with `params` on `session`: its `result`, or the upstream's
    /// error message (`HTTP 404` when the upstream no longer knows the session).
    pub async fn request(
        &self,
        session: &UpstreamSession,
        method: &str,
        params: Value,
    ) -> Result<Value, String> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let (resp, _) = self.post(Some(session), &body).await?;
        let mut v = response_for(&resp, 1)?;
        match v.get_mut("result") {
            Some(r) => Ok(r.take()),
            None => Err(error_text(&v)),
        }
    }

    /// Send a notification on `session` (the gateway's own, e.g. `notifications/cancelled`
    /// for a call whose modern client left: `proxy::abandon`).
    pub async fn notify(&self, session: &UpstreamSession, note: &Value) -> Result<(), String> {
        self.post(Some(session), note).await.map(|_| ())
    }

    async fn post(
        &self,
        session: Option<&UpstreamSession>,
        body: &Value,
    ) -> Result<(bytes::Bytes, Option<String>), String> {
        let mut headers = vec![(
            crate::mcp::headers::MCP_PROTOCOL_VERSION,
            crate::mcp::revision::PREFERRED,
        )];
        if let Some(id) = session.and_then(|s| s.id.as_deref()) {
            headers.push((crate::mcp::headers::MCP_SESSION_ID, id));
        }
        let resp = self.send_json(&headers, body).await?;
        if !(200..300).contains(&resp.status) {
            return Err(format!("HTTP {}", resp.status));
        }
        let sid = resp
            .headers
            .get(crate::mcp::headers::MCP_SESSION_ID)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Ok((resp.body, sid))
    }
}

impl McpClient<'_> {
    /// POST `body` as JSON with `headers`, the media types a streamable-HTTP client sends
    /// and the credential.
    async fn send_json(
        &self,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<crate::http_client::HttpResponse, String> {
        let mut all = vec![
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
        ];
        all.extend_from_slice(headers);
        if let Some((k, v)) = self.auth {
            all.push((k, v));
        }
        self.http
            .send(
                "POST",
                self.url,
                &all,
                Some(bytes::Bytes::from(body.to_string())),
                self.timeout,
            )
            .await
    }
}

/// The JSON-RPC response with `id` in a JSON or SSE body.
pub fn response_for(body: &[u8], id: u64) -> Result<Value, String> {
    let text = std::str::from_utf8(body).map_err(|_| "response is not UTF-8".to_string())?;
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        return serde_json::from_str(trimmed).map_err(|e| format!("invalid JSON response: {e}"));
    }
    // SSE: join `data:` lines per event, take the event whose message has our id.
    for event in text.split("\n\n").flat_map(|e| e.split("\r\n\r\n")) {
        let data: Vec<&str> = event
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(|d| d.strip_prefix(' ').unwrap_or(d))
            .collect();
        if data.is_empty() {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&data.join("\n")) {
            if v.get("id").and_then(Value::as_u64) == Some(id) {
                return Ok(v);
            }
        }
    }
    Err("no JSON-RPC response in the answer".into())
}

fn error_text(v: &Value) -> String {
    v.get("error")
        .and_then(|e| e.get("message"))
        .and_then(Value::as_str)
        .unwrap_or("no result")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_response_out_of_json_or_sse() {
        let j = br#"{"jsonrpc":"2.0","id":1,"result":{}}"#;
        assert!(response_for(j, 1).unwrap()["result"].is_object());
        let sse = b"data: \nid: 0\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]}}\n\n";
        assert!(response_for(sse, 7).unwrap()["result"]["tools"].is_array());
        assert!(response_for(sse, 8).is_err());
    }
}
