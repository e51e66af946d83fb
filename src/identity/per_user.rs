//! `per_user` credentials: each caller's own credential from the vault (`NAME/<subject>`).
//!
//! A vault value is either a plain token, or an OAuth credential
//! `{"access_token": "...", "refresh_token": "...", "expires_at": UNIX_SECONDS}`. With
//! `auth.oauth` configured, an OAuth credential is refreshed (grant_type=refresh_token)
//! shortly before it expires; the new tokens are used at once and written back to the vault
//! file, so a rotated refresh token survives a restart. A failed refresh is a clear error that
//! names the upstream to re-authorise; the call is never made with someone else's credential.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use http::HeaderValue;
use serde::{Deserialize, Serialize};

use super::{header_value, unix_now};
use crate::config::OAuthRefresh;
use crate::http_client::HttpClient;
use crate::vault::{Secret, StaticKek, Vault};

/// Where refreshed credentials are written back.
#[derive(Debug, Clone)]
pub struct VaultWriter {
    pub path: PathBuf,
    pub kek: Arc<StaticKek>,
}

/// An OAuth credential as stored in the vault.
#[derive(Clone, Serialize, Deserialize)]
struct OAuthCredential {
    access_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
}

#[derive(Clone)]
enum UserCred {
    Plain(HeaderValue),
    OAuth(OAuthCredential, HeaderValue),
}

/// The per-user source of one upstream.
pub(super) struct PerUser {
    name: String,
    scheme: String,
    fallback: Option<HeaderValue>,
    /// Credentials by owner (subject), parsed at load and updated by refreshes.
    users: Mutex<HashMap<String, UserCred>>,
    oauth: Option<(OAuthRefresh, Option<String>)>,
    /// One refresh at a time: a rotated refresh token must not be used twice.
    refresh_lock: tokio::sync::Mutex<()>,
    writer: Option<VaultWriter>,
}

impl std::fmt::Debug for PerUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PerUser")
            .field("name", &self.name)
            .field("oauth", &self.oauth.is_some())
            .finish_non_exhaustive()
    }
}

impl PerUser {
    pub(super) fn new(
        name: String,
        scheme: String,
        fallback: Option<HeaderValue>,
        vault: Option<&Vault>,
        oauth: Option<(OAuthRefresh, Option<String>)>,
        writer: Option<VaultWriter>,
    ) -> anyhow::Result<PerUser> {
        let mut users = HashMap::new();
        if let Some(v) = vault {
            for (n, owner) in v.names() {
                let Some(owner) = owner else { continue };
                if n != name {
                    continue;
                }
                let Some(secret) = v.get(&n, Some(&owner)) else {
                    continue;
                };
                let cred = parse(secret.expose(), &scheme)
                    .map_err(|e| anyhow::anyhow!("vault record {n}/{owner}: {e}"))?;
                users.insert(owner, cred);
            }
        }
        Ok(PerUser {
            name,
            scheme,
            fallback,
            users: Mutex::new(users),
            oauth,
            refresh_lock: tokio::sync::Mutex::new(()),
            writer,
        })
    }

    /// The shared fallback credential, if configured.
    pub(super) fn fallback(&self) -> Option<HeaderValue> {
        self.fallback.clone()
    }

    /// The header value for `subject`, refreshing an expiring OAuth credential first.
    /// `Err` is the reason for a 403.
    pub(super) async fn credential(
        &self,
        client: &HttpClient,
        subject: &str,
        upstream: &str,
    ) -> Result<HeaderValue, String> {
        let current = self.users.lock().ok().and_then(|m| m.get(subject).cloned());
        let name = &self.name;
        match current {
            None => self.fallback.clone().ok_or_else(|| {
                format!(
                    "{subject:?} has no {name:?} credential; store one with `mcp-gateway vault set {name} --owner {subject}`"
                )
            }),
            Some(UserCred::Plain(v)) => Ok(v),
            Some(UserCred::OAuth(c, v)) => {
                if !self.due(&c) {
                    return Ok(v);
                }
                match (&self.oauth, &c.refresh_token) {
                    (Some(_), Some(_)) => self.refresh(client, subject, upstream).await,
                    _ if c.expires_at.is_some_and(|e| e <= unix_now()) => Err(format!(
                        "{subject:?}'s {name:?} credential expired and cannot be refreshed; re-authorise {upstream} for this user"
                    )),
                    _ => Ok(v),
                }
            }
        }
    }

    fn due(&self, c: &OAuthCredential) -> bool {
        let before = self
            .oauth
            .as_ref()
            .map_or(Duration::ZERO, |(o, _)| o.refresh_before);
        c.expires_at
            .is_some_and(|e| e <= unix_now() + before.as_secs())
    }

    async fn refresh(
        &self,
        client: &HttpClient,
        subject: &str,
        upstream: &str,
    ) -> Result<HeaderValue, String> {
        let _one = self.refresh_lock.lock().await;
        // Another request may have refreshed while we waited.
        let current = self.users.lock().ok().and_then(|m| m.get(subject).cloned());
        let Some(UserCred::OAuth(c, v)) = current else {
            return Err("credential changed during refresh".into());
        };
        if !self.due(&c) {
            return Ok(v);
        }
        let (Some((oauth, client_secret)), Some(refresh_token)) = (&self.oauth, &c.refresh_token)
        else {
            return Err("no refresh configured".into());
        };
        let body = {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", refresh_token);
            if client_secret.is_none() {
                form.append_pair("client_id", &oauth.client_id);
            }
            bytes::Bytes::from(form.finish())
        };
        let basic = client_secret.as_ref().map(|s| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD
                    .encode(format!("{}:{s}", oauth.client_id))
            )
        });
        let mut headers: Vec<(&str, &str)> = vec![
            ("content-type", "application/x-www-form-urlencoded"),
            ("accept", "application/json"),
        ];
        if let Some(b) = &basic {
            headers.push(("authorization", b));
        }
        let fail = |why: String| {
            format!(
                "refreshing {subject:?}'s {:?} credential failed ({why}); re-authorise {upstream} for this user",
                self.name
            )
        };
        let resp = client
            .send(
                "POST",
                &oauth.token_url,
                &headers,
                Some(body),
                Duration::from_secs(10),
            )
            .await
            .map_err(&fail)?;
        if resp.status != 200 {
            return Err(fail(format!(
                "token endpoint answered HTTP {}",
                resp.status
            )));
        }
        #[derive(Deserialize)]
        struct Refreshed {
            access_token: String,
            #[serde(default)]
            refresh_token: Option<String>,
            #[serde(default)]
            expires_in: Option<u64>,
        }
        let r: Refreshed = serde_json::from_slice(&resp.body)
            .map_err(|e| fail(format!("unusable token response: {e}")))?;
        let fresh = OAuthCredential {
            access_token: r.access_token,
            refresh_token: r.refresh_token.or(c.refresh_token),
            expires_at: r.expires_in.map(|s| unix_now() + s),
        };
        let header = header_value(&self.scheme, fresh.access_token.as_bytes()).map_err(fail)?;
        if let Ok(mut m) = self.users.lock() {
            m.insert(
                subject.to_string(),
                UserCred::OAuth(fresh.clone(), header.clone()),
            );
        }
        self.persist(subject, &fresh).await;
        Ok(header)
    }

    /// Write a refreshed credential back to the vault file (off the async workers). A failure
    /// is logged: the new tokens still serve from memory until the next restart.
    async fn persist(&self, subject: &str, fresh: &OAuthCredential) {
        let Some(w) = self.writer.clone() else { return };
        let Ok(json) = serde_json::to_vec(fresh) else {
            return;
        };
        let (name, owner) = (self.name.clone(), subject.to_string());
        let result = tokio::task::spawn_blocking(move || -> Result<(), String> {
            let mut v = Vault::open(&w.path, w.kek.as_ref()).map_err(|e| e.to_string())?;
            v.set(&name, Some(&owner), Secret::new(json), w.kek.as_ref())
                .map_err(|e| e.to_string())?;
            v.save(&w.path).map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(())) => log::info!("refreshed {}/{subject} written to the vault", self.name),
            Ok(Err(e)) => log::error!(
                "refreshed {}/{subject} not saved to the vault: {e}",
                self.name
            ),
            Err(e) => log::error!("vault write task failed: {e}"),
        }
    }
}

/// A plain token, or an OAuth credential object.
fn parse(value: &[u8], scheme: &str) -> Result<UserCred, String> {
    if value.first() == Some(&b'{') {
        let c: OAuthCredential = serde_json::from_slice(value)
            .map_err(|e| format!("looks like an OAuth credential but is not one: {e}"))?;
        let h = header_value(scheme, c.access_token.as_bytes())?;
        return Ok(UserCred::OAuth(c, h));
    }
    Ok(UserCred::Plain(header_value(scheme, value)?))
}
