//! The `admin` section (`config/admin.rs`): one test per rule.

use super::super::{from_yaml, AdminPermission, HostPolicy};

const SHA_A: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
const SHA_B: &str = "486ea46224d1bb4fb680f34f7c9ad96a8f24ec88be73ea8e5a6c65260e9cb8a7";

const JWT_AUTH: &str = r#"
auth:
  resource: https://mcp.example.com
  jwt:
    issuers: [https://idp.example.com]
    keys:
      - jwks_file: /etc/keys.json
        algorithms: [RS256]
"#;

fn with_admin(admin: &str) -> String {
    format!("{BASE}admin:\n{admin}")
}

use super::{assert_err, BASE};

#[test]
fn without_auth_the_api_is_off_and_probes_are_public_even_on_all_interfaces() {
    let c = from_yaml(&with_admin("  address: 0.0.0.0:9090\n")).unwrap();
    let a = c.admin.unwrap();
    assert!(a.auth.is_none());
    assert_eq!(a.hosts, HostPolicy::Any);
    assert_eq!(a.public_paths.len(), 4);
    assert!(a.allowed_origins.is_empty());
    let c = from_yaml(&with_admin("  address: 127.0.0.1:9090\n")).unwrap();
    assert!(matches!(c.admin.unwrap().hosts, HostPolicy::List(_)));
}

#[test]
fn admin_address_must_parse_and_differ_from_listeners() {
    assert_err(&with_admin("  address: nope\n"), "admin.address", "IP:PORT");
    assert_err(
        &with_admin("  address: 127.0.0.1:8080\n"),
        "admin.address",
        "also a listener",
    );
}

#[test]
fn host_and_origin_lists_are_checked_like_listeners() {
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  allowed_hosts: []\n"),
        "admin.allowed_hosts",
        "empty list",
    );
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  allowed_hosts: [\"a/b\"]\n"),
        "admin.allowed_hosts[0]",
        "invalid host",
    );
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  allowed_origins: [\"http://x/y\"]\n"),
        "admin.allowed_origins[0]",
        "no path",
    );
    let c = from_yaml(&with_admin(
        "  address: 0.0.0.0:9090\n  allowed_hosts: [ops.internal]\n  allowed_origins: [\"https://Ops.internal\"]\n",
    ))
    .unwrap();
    let a = c.admin.unwrap();
    assert_eq!(a.hosts, HostPolicy::List(vec!["ops.internal".into()]));
    assert_eq!(a.allowed_origins, ["https://ops.internal"]);
}

#[test]
fn public_paths_are_a_subset_of_the_probe_paths() {
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  public_paths: [/admin/registry]\n"),
        "admin.public_paths[0]",
        "cannot be public",
    );
    let tok =
        format!("  auth:\n    tokens:\n      - {{name: ops, sha256: {SHA_A}, permission: read}}\n");
    let c = from_yaml(&with_admin(&format!(
        "  address: 127.0.0.1:9090\n  public_paths: [/healthz]\n{tok}"
    )))
    .unwrap();
    assert_eq!(c.admin.unwrap().public_paths, ["/healthz"]);
}

#[test]
fn a_path_taken_out_of_public_paths_needs_admin_auth() {
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  public_paths: [/healthz]\n"),
        "admin.public_paths",
        "no admin.auth",
    );
}

#[test]
fn tokens_need_a_name_a_hash_and_a_permission() {
    let t = |name: &str, sha: &str, perm: &str| {
        with_admin(&format!(
            "  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: {name:?}, sha256: {sha}, permission: {perm}}}\n"
        ))
    };
    let c = from_yaml(&t("ops", SHA_A, "write")).unwrap();
    let a = c.admin.unwrap().auth.unwrap();
    assert_eq!(a.tokens[0].permission, AdminPermission::Write);
    assert_eq!(a.tokens[0].name, "ops");
    assert_err(
        &t("", SHA_A, "read"),
        "admin.auth.tokens[0].name",
        "must not be empty",
    );
    assert_err(
        &t("ops", "abc", "read"),
        "admin.auth.tokens[0].sha256",
        "64 hex",
    );
    assert_err(
        &t("ops", SHA_A, "admin"),
        "admin.auth.tokens[0].permission",
        "unknown variant",
    );
}

#[test]
fn duplicate_token_names_and_hashes_are_refused() {
    let two = |n2: &str, s2: &str| {
        with_admin(&format!(
            "  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: a, sha256: {SHA_A}, permission: read}}\n      - {{name: {n2}, sha256: {s2}, permission: write}}\n"
        ))
    };
    assert!(from_yaml(&two("b", SHA_B)).is_ok());
    assert_err(&two("a", SHA_B), "admin.auth.tokens[1].name", "duplicate");
    assert_err(&two("b", SHA_A), "admin.auth.tokens[1].sha256", "duplicate");
}

#[test]
fn an_api_key_cannot_double_as_an_admin_token() {
    let y = format!(
        "{BASE}auth:\n  resource: https://mcp.example.com\n  api_keys:\n    - {{sha256: {SHA_A}, subject: agent}}\nadmin:\n  address: 127.0.0.1:9090\n  auth:\n    tokens:\n      - {{name: ops, sha256: {SHA_A}, permission: write}}\n"
    );
    assert_err(&y, "admin.auth.tokens[0].sha256", "auth.api_keys[0]");
}

#[test]
fn empty_admin_auth_is_refused() {
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  auth: {}\n"),
        "admin.auth",
        "tokens and/or jwt",
    );
}

#[test]
fn jwt_grants_need_auth_jwt() {
    assert_err(
        &with_admin("  address: 127.0.0.1:9090\n  auth:\n    jwt:\n      write: {roles: [ops]}\n"),
        "admin.auth.jwt",
        "needs auth.jwt",
    );
}

#[test]
fn jwt_grants_must_name_someone() {
    let y = |jwt: &str| {
        format!("{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{jwt}")
    };
    assert_err(
        &y("      read: {}\n"),
        "admin.auth.jwt.read",
        "at least one",
    );
    assert_err(
        &y("      write: {roles: []}\n"),
        "admin.auth.jwt.write",
        "at least one",
    );
    assert_err(&y("      issuer: null\n"), "admin.auth.jwt", "grant read");
    let c = from_yaml(&y(
        "      read: {groups: [sre]}\n      write: {roles: [gateway-admin]}\n",
    ))
    .unwrap();
    let j = c.admin.unwrap().auth.unwrap().jwt.unwrap();
    assert_eq!(j.issuer, "https://idp.example.com");
    assert_eq!(j.audience, "https://mcp.example.com/admin");
    let none: Vec<String> = vec![];
    let roles = vec!["gateway-admin".to_string()];
    let groups = vec!["sre".to_string()];
    let caller = |groups, roles| crate::config::Caller {
        issuer: "https://idp.example.com",
        subject: "x",
        groups,
        roles,
        agent: None,
    };
    assert_eq!(
        j.permission(&caller(&none, &roles)),
        Some(AdminPermission::Write)
    );
    assert_eq!(
        j.permission(&caller(&groups, &none)),
        Some(AdminPermission::Read)
    );
    assert_eq!(j.permission(&caller(&none, &none)), None);
}

#[test]
fn jwt_grant_subjects_belong_to_the_admin_issuer() {
    let y = |jwt: &str| {
        format!("{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{jwt}")
    };
    assert_err(
        &y("      write: {subjects: [\"https://other.example.com#alice\"]}\n"),
        "admin.auth.jwt.write.subjects[0]",
        "only subjects of admin.auth.jwt.issuer",
    );
    assert_err(
        &y("      write: {subjects: [\"api-key#ci\"]}\n"),
        "admin.auth.jwt.write.subjects[0]",
        "only subjects of admin.auth.jwt.issuer",
    );
    // Qualified with the admin issuer, or bare: the same subject.
    for s in ["https://idp.example.com#alice", "alice"] {
        let c = from_yaml(&y(&format!("      write: {{subjects: [\"{s}\"]}}\n"))).unwrap();
        let j = c.admin.unwrap().auth.unwrap().jwt.unwrap();
        let alice = crate::config::Caller {
            issuer: "https://idp.example.com",
            subject: "alice",
            groups: &[],
            roles: &[],
            agent: None,
        };
        assert_eq!(j.permission(&alice), Some(AdminPermission::Write), "{s}");
    }
    // Groups of an issuer whose groups are not trusted could never match.
    let untrusted = y("      write: {roles: [ops]}\n").replace(
        "issuers: [https://idp.example.com]",
        "issuers: [https://idp.example.com]\n    group_issuers: []",
    );
    assert_err(&untrusted, "admin.auth.jwt.write", "group_issuers");
}

#[test]
fn the_admin_audience_path_is_reserved_while_admin_jwts_are_accepted() {
    let y = format!(
        "{BASE}{JWT_AUTH}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n      write: {{roles: [ops]}}\n"
    );
    let route = y.replace("      - path: /mcp", "      - path: /admin");
    assert_err(&route, "listeners[0].routes[0].path", "reserved");
    let vs = format!(
        "{y}virtual_servers:\n  - {{ name: a, route: /admin, access: {{ roles: [x] }} }}\n"
    );
    assert_err(&vs, "virtual_servers[0].route", "reserved");
    // Without admin JWTs the path is an ordinary one.
    let plain = BASE.replace("      - path: /mcp", "      - path: /admin");
    assert!(from_yaml(&plain).is_ok());
}

#[test]
fn jwt_issuer_must_be_configured_and_is_required_with_several() {
    let two = JWT_AUTH
        .replace(
            "issuers: [https://idp.example.com]",
            "issuers: [https://idp.example.com, https://other.example.com]\n    group_issuers: [https://idp.example.com]",
        )
        .replace(
            "        algorithms: [RS256]",
            "        algorithms: [RS256]\n        issuer: https://idp.example.com",
        );
    let y = |auth: &str, iss: &str| {
        format!("{BASE}{auth}admin:\n  address: 127.0.0.1:9090\n  auth:\n    jwt:\n{iss}      write: {{subjects: [alice]}}\n")
    };
    assert_err(
        &y(&two, ""),
        "admin.auth.jwt.issuer",
        "more than one issuer",
    );
    assert_err(
        &y(JWT_AUTH, "      issuer: https://evil.example.com\n"),
        "admin.auth.jwt.issuer",
        "not one of auth.jwt.issuers",
    );
    let c = from_yaml(&y(&two, "      issuer: https://other.example.com\n")).unwrap();
    assert_eq!(
        c.admin.unwrap().auth.unwrap().jwt.unwrap().issuer,
        "https://other.example.com"
    );
}

#[test]
fn admin_address_must_differ_from_listeners() {
    assert_err(
        &format!("{BASE}admin:\n  address: 127.0.0.1:8080\n"),
        "admin.address",
        "also a listener address",
    );
}
