//! Listening to upstreams: each upstream a virtual server includes is followed on its
//! server-to-client SSE stream (GET), and a `notifications/tools/list_changed` triggers
//! rediscovery at once instead of waiting for the next periodic refresh.
//!
//! One task per upstream opens a session, keeps the stream, and reconnects with backoff
//! (1 s doubling to 60 s) when it ends or fails. Upstreams that answer the GET with 405 (no
//! server-to-client stream) are left to the periodic refresh.

use std::sync::Arc;
use std::time::Duration;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;
use tokio::sync::Notify;

use super::client::McpClient;
use crate::http_client::HttpClient;

/// The markers the stream is scanned for: a changed list of tools, prompts or resources.
const LIST_CHANGED: [&[u8]; 3] = [
    b"notifications/tools/list_changed",
    b"notifications/prompts/list_changed",
    b"notifications/resources/list_changed",
];
/// Longest SSE line buffered while scanning (a guard against a stream without newlines).
const MAX_LINE: usize = 64 * 1024;

/// The gateway's own credential header for an upstream, asked for on every connection
/// attempt: a reload's new secret is picked up, and a secret disabled by the kill switch is
/// not sent again.
pub type CredentialFn = Arc<dyn Fn() -> Option<(String, String)> + Send + Sync>;

/// What one watcher needs to know about its upstream.
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub url: url::Url,
    /// Credential header for the upstream, if the gateway has its own.
    pub auth: CredentialFn,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

/// Follow `target` until `stop` fires; `changed` is notified on every list_changed.
///
/// All watchers use the gateway's one client: a `Connector` each cost a gateway over 20
/// upstreams ~16 MiB of resident memory.
pub async fn follow(http: HttpClient, target: Target, changed: Arc<Notify>, stop: Arc<Notify>) {
    let connector = http.connector();
    let mut backoff = Duration::from_secs(1);
    loop {
        let outcome = tokio::select! {
            r = once(&http, connector, &target, &changed) => r,
            _ = stop.notified() => return,
        };
        match outcome {
            Ok(Stream::Unsupported) => {
                log::info!(
                    "registry: upstream {:?} has no server-to-client stream; periodic refresh only",
                    target.name
                );
                return;
            }
            Ok(Stream::Ended) => backoff = Duration::from_secs(1),
            Err(e) => {
                log::debug!("registry: watching upstream {:?}: {e}", target.name);
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop.notified() => return,
        }
    }
}

enum Stream {
    Ended,
    Unsupported,
}

async fn once(
    http: &HttpClient,
    connector: &Connector,
    t: &Target,
    changed: &Notify,
) -> Result<Stream, String> {
    let auth = (t.auth)();
    let client = McpClient {
        http,
        url: &t.url,
        auth: auth.as_ref().map(|(k, v)| (k.as_str(), v.as_str())),
        timeout: Duration::from_secs(10),
    };
    let session = client.initialize().await?;
    let auth_ref = auth.as_ref().map(|(k, v)| (k.as_str(), v.as_str()));
    let mut s = open_stream(connector, &t.url, session.id.as_deref(), auth_ref).await?;
    let status = s.response_header().map_or(0, |h| h.status.as_u16());
    if status == 405 {
        client.close(&session).await;
        return Ok(Stream::Unsupported);
    }
    if status != 200 {
        client.close(&session).await;
        return Err(format!("GET answered HTTP {status}"));
    }
    let mut line: Vec<u8> = Vec::new();
    while let Some(chunk) = s.read_response_body().await.map_err(|e| e.to_string())? {
        for &b in chunk.iter() {
            if b == b'\n' {
                if LIST_CHANGED
                    .iter()
                    .any(|m| line.windows(m.len()).any(|w| w == *m))
                {
                    changed.notify_one();
                }
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
    client.close(&session).await;
    Ok(Stream::Ended)
}

/// Open `url`'s server-to-client stream (GET) on `session_id` with the `auth` header, and
/// read the response header; the caller reads the status and the body. Also used by
/// [`crate::vserver::events`] for client sessions' upstream streams.
pub(crate) async fn open_stream(
    connector: &Connector,
    url: &url::Url,
    session_id: Option<&str>,
    auth: Option<(&str, &str)>,
) -> Result<pingora::protocols::http::client::HttpSession, String> {
    let host = url.host_str().ok_or("no host")?;
    let tls = url.scheme() == "https";
    let port = url
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
        .await
        .map_err(|e| e.to_string())?
        .next()
        .ok_or("no address")?;
    let mut peer = HttpPeer::new(
        addr,
        tls,
        if tls { host.to_string() } else { String::new() },
    );
    peer.options.connection_timeout = Some(Duration::from_secs(10));
    // A stream may be quiet for long; keep-alive comments arrive far more often than this.
    peer.options.read_timeout = Some(Duration::from_secs(600));
    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    let mut req =
        RequestHeader::build("GET", path.as_bytes(), Some(5)).map_err(|e| e.to_string())?;
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    req.insert_header("host", authority)
        .map_err(|e| e.to_string())?;
    req.insert_header("accept", "text/event-stream")
        .map_err(|e| e.to_string())?;
    req.insert_header(
        crate::mcp::headers::MCP_PROTOCOL_VERSION,
        crate::mcp::revision::PREFERRED,
    )
    .map_err(|e| e.to_string())?;
    if let Some(id) = session_id {
        req.insert_header(crate::mcp::headers::MCP_SESSION_ID, id)
            .map_err(|e| e.to_string())?;
    }
    if let Some((k, v)) = auth {
        req.insert_header(k.to_string(), v)
            .map_err(|e| e.to_string())?;
    }
    let (mut s, _) = connector
        .get_http_session(&peer)
        .await
        .map_err(|e| e.to_string())?;
    s.write_request_header(Box::new(req))
        .await
        .map_err(|e| e.to_string())?;
    s.finish_request_body().await.map_err(|e| e.to_string())?;
    s.read_response_header().await.map_err(|e| e.to_string())?;
    Ok(s)
}
