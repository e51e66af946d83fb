//! RFC 9728 protected-resource metadata, served (unauthenticated) at
//! `/.well-known/oauth-protected-resource<route path>`, and the `WWW-Authenticate` values that
//! point clients at it.

use crate::config::{AuthConfig, Route};

/// The metadata document for one route.
pub fn document(auth: &AuthConfig, route: &Route) -> Vec<u8> {
    let resource = route
        .resource_url
        .clone()
        .unwrap_or_else(|| auth.resource.clone());
    let doc = serde_json::json!({
        "resource": resource,
        "authorization_servers": auth.authorization_servers,
        "scopes_supported": auth.scopes_supported,
        "bearer_methods_supported": ["header"],
        "resource_name": "mcp-gateway",
    });
    doc.to_string().into_bytes()
}

/// Absolute URL of a route's metadata.
pub fn url(auth: &AuthConfig, route: &Route) -> String {
    format!("{}{}", auth.resource, route.metadata_path)
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
