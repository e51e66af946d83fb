//! Integration-test helpers around rmcp's MCP client (Streamable HTTP over reqwest).
//!
//! Note: rmcp's client attaches a fresh `_meta.progressToken` to *every*
//! request it sends (it is not opt-in), so a server that reports progress
//! will do so for [`call_tool`] as well as for [`call_tool_with_progress`].

#![allow(unreachable_pub)]

use std::{
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use anyhow::{bail, Context as _};
use rmcp::{
    model::{
        CallToolRequestParams, CallToolResult, ClientCapabilities, ClientConfig, ClientRequest,
        Implementation, ProgressNotificationParam, ProtocolVersion, Request, ServerResult,
    },
    service::{NotificationContext, PeerRequestOptions, RunningService},
    transport::{
        streamable_http_client::StreamableHttpClientTransportConfig, StreamableHttpClientTransport,
    },
    ClientHandler, RoleClient, ServiceExt as _,
};

/// Upper bound for any single helper call, so a broken gateway fails a test
/// instead of hanging it.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The client type returned by [`connect`].
pub type Client = RunningService<RoleClient, ProgressRecorder>;

/// A [`ClientHandler`] that records every `notifications/progress` it
/// receives together with its arrival time.
#[derive(Clone, Default)]
pub struct ProgressRecorder {
    events: Arc<Mutex<Vec<(Instant, ProgressNotificationParam)>>>,
}

impl std::fmt::Debug for ProgressRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressRecorder")
            .field("events", &self.events().len())
            .finish()
    }
}

impl ProgressRecorder {
    /// All progress notifications received so far, in arrival order.
    pub fn events(&self) -> Vec<(Instant, ProgressNotificationParam)> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientHandler for ProgressRecorder {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        let now = Instant::now();
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((now, params));
    }

    fn get_info(&self) -> ClientConfig {
        // Offer the newest protocol version that still has the `initialize`
        // handshake, i.e. the sessionful (Mcp-Session-Id) Streamable HTTP flavour.
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("mcp-gateway-test-client", env!("CARGO_PKG_VERSION")),
        )
        .with_protocol_version(ProtocolVersion::LATEST_WITH_INITIALIZE)
    }
}

/// A plain-HTTP reqwest client usable in tests.
///
/// The `reqwest-tls-no-provider` feature makes `reqwest::Client::new()` panic
/// unless a process-wide rustls `CryptoProvider` is installed, so install
/// rustls' `ring` provider (through pingora, which depends on it) first.
/// Redirects are not followed and idle connections are not pooled (as in
/// rmcp's own default client).
pub fn reqwest_client() -> anyhow::Result<reqwest::Client> {
    pingora::tls::install_default_crypto_provider();
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building reqwest client")
}

/// Connects to the MCP endpoint at `url` and performs the `initialize`
/// handshake.
///
/// Expired sessions (HTTP 404) are surfaced as errors rather than silently
/// re-initialized, so tests see exactly what the server/gateway did.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    let config = StreamableHttpClientTransportConfig::with_uri(url.to_owned())
        .reinit_on_expired_session(false);
    let transport = StreamableHttpClientTransport::with_client(reqwest_client()?, config);
    let client = tokio::time::timeout(CALL_TIMEOUT, ProgressRecorder::default().serve(transport))
        .await
        .context("timed out initializing MCP client")?
        .with_context(|| format!("initializing MCP client for {url}"))?;
    Ok(client)
}

fn tool_params(name: &str, args: serde_json::Value) -> anyhow::Result<CallToolRequestParams> {
    let params = CallToolRequestParams::new(name.to_owned());
    match args {
        serde_json::Value::Object(map) => Ok(params.with_arguments(map)),
        serde_json::Value::Null => Ok(params),
        other => bail!("tool arguments must be a JSON object, got {other}"),
    }
}

/// Calls tool `name` with `args` (a JSON object, or `null` for none).
pub async fn call_tool(
    client: &Client,
    name: &str,
    args: serde_json::Value,
) -> anyhow::Result<CallToolResult> {
    let params = tool_params(name, args)?;
    tokio::time::timeout(CALL_TIMEOUT, client.call_tool(params))
        .await
        .with_context(|| format!("timed out calling tool {name}"))?
        .with_context(|| format!("calling tool {name}"))
}

/// Calls tool `name` with a `_meta.progressToken`, so the server may stream
/// `notifications/progress` before the result; they are recorded by the
/// client's [`ProgressRecorder`] (`client.service().events()`).
pub async fn call_tool_with_progress(
    client: &Client,
    name: &str,
    args: serde_json::Value,
) -> anyhow::Result<CallToolResult> {
    let params = tool_params(name, args)?;
    // rmcp sets a fresh progress token on every outgoing request (overriding
    // any token passed in the options' meta), so a plain request suffices.
    let handle = client
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params)),
            PeerRequestOptions::with_timeout(CALL_TIMEOUT),
        )
        .await
        .with_context(|| format!("sending tools/call {name}"))?;
    match handle
        .await_response()
        .await
        .with_context(|| format!("calling tool {name}"))?
    {
        ServerResult::CallToolResult(result) => Ok(result),
        other => bail!("unexpected response to tools/call {name}: {other:?}"),
    }
}

/// Concatenation of all text contents of `result`.
pub fn text_of(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|content| content.as_text())
        .map(|text| text.text.as_str())
        .collect()
}
