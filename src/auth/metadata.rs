//! RFC 9728 protected-resource metadata, served (unauthenticated) at
//! `/.well-known/oauth-protected-resource<route path>`, and the `WWW-Authenticate` values that
//! point clients at it.

use crate::config::AuthConfig;

/// The metadata document for the MCP endpoint whose canonical URL is `resource`.
pub fn document(auth: &AuthConfig, resource: Option<&str>) -> Vec<u8> {
    let resource = resource.unwrap_or(&auth.resource);
    let doc = serde_json::json!({
        "resource": resource,
        "authorization_servers": auth.authorization_servers,
        "scopes_supported": auth.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-gateway",
    });
    doc.to_string().into_bytes()
}

/// Absolute URL of an endpoint's metadata, given its metadata path.
pub fn url(auth: &AuthConfig, metadata_path: &str) -> String {
    format!("{}{metadata_path}", auth.resource)
}

/// `WWW-Authenticate` for a 401: always `resource_metadata`, plus `error="invalid_token"`
/// when a credential was presented and rejected.
pub fn challenge(metadata_url: &str, invalid_token: bool) -> String {
    if invalid_token {
        format!("Bearer resource_metadata=\"{metadata_url}\", error=\"invalid_token\"")
    } else {
        format!("Bearer resource_metadata=\"{metadata_url}\"")
    }
}

/// `WWW-Authenticate` for a 403 `insufficient_scope`.
pub fn scope_challenge(metadata_url: &str, scopes: &str) -> String {
    format!(
        "Bearer resource_metadata=\"{metadata_url}\", error=\"insufficient_scope\", scope=\"{scopes}\""
    )
}
