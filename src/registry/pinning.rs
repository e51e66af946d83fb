//! Tool pinning: defence against tools whose definitions change under you.
//!
//! Each tool definition is fingerprinted (SHA-256 over the canonical JSON of its
//! description, input schema and annotations). The first fingerprint seen for a tool is
//! approved (trust on first use); later changes follow the upstream's `on_change`:
//! `quarantine` hides the tool and refuses its calls until an operator approves the new
//! fingerprint (admin API), `alert` serves it and reports the change, `accept` approves it.
//! Approvals live in `registry.state_file` when configured, so they survive restarts.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::config::raw::OnChange;

/// Fingerprint of the security-relevant parts of a tool definition.
pub fn fingerprint(def: &Value) -> String {
    // serde_json's Map is ordered by key, so this serialization is canonical.
    let parts = serde_json::json!({
        "description": def.get("description"),
        "inputSchema": def.get("inputSchema"),
        "annotations": def.get("annotations"),
    });
    let digest = ring::digest::digest(&ring::digest::SHA256, parts.to_string().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// What discovery decided about one changed tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub upstream: String,
    pub tool: String,
    pub action: OnChange,
    pub approved: String,
    pub seen: String,
}

/// Approved fingerprints by `upstream.tool`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Approvals {
    pub map: BTreeMap<String, String>,
}

impl Approvals {
    /// Read the state file (missing file = nothing approved yet).
    pub fn load(path: &Path) -> Result<Approvals, String> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(|map| Approvals { map })
                .map_err(|e| format!("{} is not a registry state file: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Approvals::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Write atomically and durably (temp file, fsync, rename, fsync of the directory), so a
    /// crash never leaves a truncated file (which would stop the registry, failing closed).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        use std::io::Write as _;
        let tmp = path.with_extension("tmp");
        let body = serde_json::to_vec_pretty(&self.map).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)?;
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Decide for every tool of one upstream: returns the names to quarantine and the changes.
    /// First sightings and `accept` changes update the approvals (`dirty` reports that).
    pub fn review(
        &mut self,
        upstream: &str,
        on_change: OnChange,
        tools: &[Value],
        dirty: &mut bool,
    ) -> (Vec<String>, Vec<Change>) {
        let mut quarantined = Vec::new();
        let mut changes = Vec::new();
        for def in tools {
            let Some(name) = def.get("name").and_then(Value::as_str) else {
                continue;
            };
            let key = format!("{upstream}.{name}");
            let seen = fingerprint(def);
            match self.map.get(&key) {
                None => {
                    self.map.insert(key, seen);
                    *dirty = true;
                }
                Some(approved) if *approved == seen => {}
                Some(approved) => {
                    changes.push(Change {
                        upstream: upstream.to_string(),
                        tool: name.to_string(),
                        action: on_change,
                        approved: approved.clone(),
                        seen: seen.clone(),
                    });
                    match on_change {
                        OnChange::Quarantine => quarantined.push(name.to_string()),
                        OnChange::Alert => {}
                        OnChange::Accept => {
                            self.map.insert(key, seen);
                            *dirty = true;
                        }
                    }
                }
            }
        }
        (quarantined, changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(desc: &str) -> Value {
        json!({"name": "t", "description": desc, "inputSchema": {"type": "object"}})
    }

    #[test]
    fn fingerprint_ignores_key_order_and_name_but_not_description() {
        let a = json!({"name": "x", "inputSchema": {"b": 1, "a": 2}, "description": "d"});
        let b = json!({"description": "d", "inputSchema": {"a": 2, "b": 1}, "name": "y"});
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&tool("d")), fingerprint(&tool("e")));
    }

    #[test]
    fn first_sighting_is_approved_then_changes_follow_the_policy() {
        let mut ap = Approvals::default();
        let mut dirty = false;
        let (q, c) = ap.review("up", OnChange::Quarantine, &[tool("v1")], &mut dirty);
        assert!(q.is_empty() && c.is_empty() && dirty);
        let mut dirty = false;
        let (q, c) = ap.review("up", OnChange::Quarantine, &[tool("v2")], &mut dirty);
        assert_eq!(q, ["t"]);
        assert_eq!(c.len(), 1);
        assert!(!dirty, "quarantine does not approve");
        let (q, _) = ap.review("up", OnChange::Alert, &[tool("v2")], &mut dirty);
        assert!(q.is_empty() && !dirty);
        let (q, c) = ap.review("up", OnChange::Accept, &[tool("v2")], &mut dirty);
        assert!(q.is_empty() && c.len() == 1 && dirty);
        let (_, c) = ap.review("up", OnChange::Quarantine, &[tool("v2")], &mut dirty);
        assert!(c.is_empty(), "accepted");
    }

    #[test]
    fn state_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state.json");
        assert_eq!(Approvals::load(&p).unwrap(), Approvals::default());
        let mut ap = Approvals::default();
        ap.map.insert("u.t".into(), "abc".into());
        ap.save(&p).unwrap();
        assert_eq!(Approvals::load(&p).unwrap(), ap);
        std::fs::write(&p, "nope").unwrap();
        assert!(Approvals::load(&p)
            .unwrap_err()
            .contains("not a registry state file"));
    }
}
