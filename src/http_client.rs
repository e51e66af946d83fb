//! A small HTTP client for the gateway's own side requests (JWKS fetches, token exchange),
//! on Pingora's pooled [`Connector`] so it shares the proxy's TLS stack and adds no
//! dependencies. Responses are bounded in size and time.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use std::sync::Arc;

use pingora::connectors::http::Connector;
use pingora::http::RequestHeader;
use pingora::upstreams::peer::HttpPeer;

/// Largest response body accepted (JWKS documents and token responses are small).
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// A pooled client for side requests. Cloning shares the connector: one gateway builds one
/// (a Pingora `Connector` loads the TLS roots and sets up a pool: ~0.8 MiB and ~2 million
/// instructions each), and its registry, identity, JWT key fetches and upstream watchers all
/// use it.
#[derive(Clone)]
pub struct HttpClient {
    connector: Arc<Connector>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HttpClient")
    }
}

impl Default for HttpClient {
    fn default() -> Self {
        HttpClient {
            connector: Arc::new(Connector::new(None)),
        }
    }
}

/// A short cause in words for a Pingora error.
fn describe(e: &pingora::Error) -> String {
    use pingora::ErrorType::*;
    match e.etype() {
        ConnectRefused => "connection refused".into(),
        ConnectTimedout => "connect timed out".into(),
        ConnectNoRoute => "no route to host".into(),
        ReadTimedout => "timed out waiting for the answer".into(),
        WriteTimedout => "timed out sending the request".into(),
        ConnectionClosed => "connection closed before the answer".into(),
        TLSHandshakeFailure | InvalidCert => "TLS handshake failed".into(),
        other => other.as_str().to_lowercase(),
    }
}

/// A response: status and (bounded) body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl HttpClient {
    /// The pooled connector itself, for callers that keep a connection (SSE streams).
    pub fn connector(&self) -> &Connector {
        &self.connector
    }

    /// Send one request. `Err` is a short cause suitable for an error message.
    pub async fn send(
        &self,
        method: &str,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<HttpResponse, String> {
        tokio::time::timeout(
            timeout,
            self.send_inner(method, url, headers, body, timeout),
        )
        .await
        .map_err(|_| format!("timed out after {timeout:?}"))?
    }

    async fn send_inner(
        &self,
        method: &str,
        url: &url::Url,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
        timeout: Duration,
    ) -> Result<HttpResponse, String> {
        let host = url.host_str().ok_or("URL has no host")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let tls = url.scheme() == "https";
        let port = url
            .port_or_known_default()
            .unwrap_or(if tls { 443 } else { 80 });
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} resolved to no address"))?;
        let mut peer = HttpPeer::new(
            addr,
            tls,
            if tls { host.to_string() } else { String::new() },
        );
        peer.options.connection_timeout = Some(timeout);
        peer.options.read_timeout = Some(timeout);
        peer.options.write_timeout = Some(timeout);

        let path = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let mut req = RequestHeader::build(method, path.as_bytes(), Some(headers.len() + 3))
            .map_err(|e| e.to_string())?;
        let authority = match url.port() {
            Some(p) => format!("{}:{p}", url.host_str().unwrap_or(host)),
            None => url.host_str().unwrap_or(host).to_string(),
        };
        req.insert_header(http::header::HOST, authority)
            .map_err(|e| e.to_string())?;
        for (k, v) in headers {
            req.insert_header(k.to_string(), v.to_string())
                .map_err(|e| e.to_string())?;
        }
        let body = body.unwrap_or_default();
        req.insert_header(http::header::CONTENT_LENGTH, body.len().to_string())
            .map_err(|e| e.to_string())?;

        let (mut s, _) = self
            .connector
            .get_http_session(&peer)
            .await
            .map_err(|e| describe(&e))?;
        let io = |e: Box<pingora::Error>| describe(&e);
        s.write_request_header(Box::new(req)).await.map_err(io)?;
        if !body.is_empty() {
            s.write_request_body(body, true).await.map_err(io)?;
        }
        s.finish_request_body().await.map_err(io)?;
        s.read_response_header().await.map_err(io)?;
        let (status, resp_headers) = s
            .response_header()
            .map(|h| (h.status.as_u16(), h.headers.clone()))
            .ok_or("no response header")?;
        let mut buf = BytesMut::new();
        while let Some(chunk) = s.read_response_body().await.map_err(io)? {
            if buf.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(format!("response larger than {MAX_RESPONSE_BYTES} bytes"));
            }
            buf.extend_from_slice(&chunk);
        }
        self.connector
            .release_http_session(s, &peer, Some(Duration::from_secs(30)))
            .await;
        Ok(HttpResponse {
            status,
            headers: resp_headers,
            body: buf.freeze(),
        })
    }
}
