//! Criterion benches for the request-path hot spots. Each group names the production path it
//! stands in for. Run: `cargo bench --bench hot_paths`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mcp_gateway::config::HostPolicy;
use mcp_gateway::config::DEFAULT_MAX_JSON_DEPTH as DEPTH;
use mcp_gateway::{guard, mcp::jsonrpc, mcp::strict};

/// A typical small `tools/call` (about 190 bytes).
fn small_call() -> Vec<u8> {
    br#"{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"github__list_issues","arguments":{"repo":"org/repo","state":"open","labels":["bug","p1"]},"_meta":{"progressToken":"t-17"}}}"#.to_vec()
}

/// A `tools/call` carrying a 60 KiB string argument (a file's contents, say).
fn big_call() -> Vec<u8> {
    serde_json::json!({"jsonrpc":"2.0","id":18,"method":"tools/call",
        "params":{"name":"echo","arguments":{"text":"x".repeat(60 * 1024)}}})
    .to_string()
    .into_bytes()
}

/// `request_filter` step 7, first half: the strict pass (duplicate keys at any depth, depth
/// bound, lone surrogates) that every POST body takes before its envelope is read. Measured
/// alone on the same bodies as `jsonrpc_parse` (whose numbers include it), plus a 60 KiB body
/// of many small keys, where duplicate detection (not string scanning) dominates.
fn strict_pass(c: &mut Criterion) {
    let (small, big) = (small_call(), big_call());
    let rows: serde_json::Map<String, serde_json::Value> = (0..3000)
        .map(|i| (format!("field_{i}"), serde_json::json!(i)))
        .collect();
    let keys = serde_json::json!({"jsonrpc":"2.0","id":19,"method":"tools/call",
        "params":{"name":"echo","arguments":rows}})
    .to_string()
    .into_bytes();
    let mut g = c.benchmark_group("strict_check");
    for (name, body) in [
        ("tools_call_small", &small),
        ("tools_call_60k_string", &big),
        ("tools_call_60k_3000_keys", &keys),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| strict::check(black_box(body), DEPTH)));
    }
    g.finish();
}

/// `request_filter` step 7: parse the JSON-RPC envelope of a tools/call (borrowed, zero-copy),
/// against the naive alternative of building a full `serde_json::Value`.
fn parse(c: &mut Criterion) {
    let (small, big) = (small_call(), big_call());
    let mut g = c.benchmark_group("jsonrpc_parse");
    g.bench_function("tools_call_small/borrowed", |b| {
        b.iter(|| jsonrpc::parse(black_box(&small), DEPTH))
    });
    g.bench_function("tools_call_small/value_tree", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&small)))
    });
    g.bench_function("tools_call_60k/borrowed", |b| {
        b.iter(|| jsonrpc::parse(black_box(&big), DEPTH))
    });
    g.bench_function("tools_call_60k/value_tree", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&big)))
    });
    g.finish();
}

/// Virtual-server `tools/call`: restore the upstream's tool name in the body. In place
/// (`replace_tool_name`, what the gateway does) against the `serde_json::Value` round trip it
/// replaced (parse, edit, serialize, parse again for the spans).
fn tool_rewrite(c: &mut Criterion) {
    let body = small_call();
    let call = jsonrpc::parse(&body, DEPTH).expect("valid call");
    let mut g = c.benchmark_group("vserver_tool_rewrite");
    g.bench_function("in_place", |b| {
        b.iter(|| jsonrpc::replace_tool_name(black_box(&body), &call, "list_issues"))
    });
    g.bench_function("value_round_trip", |b| {
        b.iter(|| {
            let mut v: serde_json::Value = serde_json::from_slice(black_box(&body)).ok()?;
            v.get_mut("params")?
                .as_object_mut()?
                .insert("name".into(), "list_issues".into());
            let out = serde_json::to_vec(&v).ok()?;
            jsonrpc::parse(&out, DEPTH).ok()
        })
    });
    g.finish();
}

/// Sessions and the digests that key the in-memory tables: seal (initialize), open (first
/// request of a session on a replica), verify (every request: cached after the first), and
/// the keyed digest against the SHA-256 it replaced, for a 300-byte bearer token.
fn sessions(c: &mut Criterion) {
    use mcp_gateway::session::{SessionClaims, SessionKeys};
    let keys = SessionKeys::from_bytes(&[7u8; 32]).expect("key");
    let claims = SessionClaims {
        server: "support-scope".into(),
        issuer: "https://idp.test".into(),
        subject: "alice@example.com".into(),
        expires: u64::MAX / 2,
        caps: 0,
    };
    let token = keys.seal(&claims).expect("seal");
    let mut g = c.benchmark_group("session");
    g.bench_function("seal", |b| b.iter(|| keys.seal(black_box(&claims))));
    g.bench_function("open", |b| b.iter(|| keys.open(black_box(&token), 1_000)));
    g.bench_function("verify_cached", |b| {
        b.iter(|| {
            keys.verify(
                black_box(&token),
                1_000,
                "support-scope",
                ("https://idp.test", "alice@example.com"),
            )
        })
    });
    g.finish();
    let jwt = "x".repeat(300);
    let mut g = c.benchmark_group("token_digest_300B");
    g.bench_function("siphash13_keyed_128", |b| {
        b.iter(|| {
            mcp_gateway::digest::keyed(&[b"https://mcp.example.com", black_box(jwt.as_bytes())])
        })
    });
    g.bench_function("sha256", |b| {
        b.iter(|| {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(b"https://mcp.example.com");
            ctx.update(black_box(jwt.as_bytes()));
            ctx.finish()
        })
    });
    g.finish();
}

/// `request_filter` steps 2-3: the header guard every request passes.
fn guards(c: &mut Criterion) {
    let hosts = HostPolicy::List(vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]);
    let origins = vec!["http://localhost:6274".to_string()];
    c.bench_function("guard/host+origin+media", |b| {
        b.iter(|| {
            guard::check_host(black_box(Some("127.0.0.1:8080")), &hosts).ok();
            guard::check_origin(black_box(None), &origins, None).ok();
            guard::check_post_headers(
                black_box(Some("application/json")),
                black_box(Some("application/json, text/event-stream")),
            )
            .ok();
        })
    });
}

/// Error answers the gateway writes itself (`respond::reject`).
fn error_body(c: &mut Criterion) {
    c.bench_function("jsonrpc/error_response", |b| {
        b.iter(|| {
            jsonrpc::error_response(
                black_box(Some(b"17")),
                -32000,
                black_box("upstream \"demo\" failed: connection refused"),
                None,
            )
        })
    });
}

/// `request_filter` step 3: authenticate a JWT. A miss verifies the signature (RS256 with a
/// 2048-bit key, EdDSA); a hit is the verified-token cache lookup every repeat request takes.
fn auth(c: &mut Criterion) {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keys");
    let yaml = format!(
        r#"
listeners:
  - address: 127.0.0.1:1
    routes: [{{ path: /mcp, upstream: up }}]
upstreams:
  - name: up
    url: http://127.0.0.1:2/mcp
auth:
  resource: https://mcp.test
  cache_max_entries: 1000000
  jwt:
    issuers: [https://idp.test]
    audiences: [https://mcp.test/mcp]
    keys:
      - jwks_file: {}
        algorithms: [RS256]
"#,
        dir.join("rsa-jwks.json").display()
    );
    let config = mcp_gateway::config::from_yaml(&yaml).expect("bench config");
    let route = config.listeners[0].routes[0].clone();
    let authn = mcp_gateway::auth::Authenticator::new(
        config.auth.as_ref().expect("auth"),
        &|_| Err("no secrets in this bench".into()),
        &mcp_gateway::http_client::HttpClient::default(),
        &Default::default(),
    )
    .expect("authenticator");
    let pem = std::fs::read(dir.join("rsa-private.pem")).expect("key");
    let key = EncodingKey::from_rsa_pem(&pem).expect("pem");
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("rsa1".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mint = |sub: String| {
        let claims = serde_json::json!({"iss": "https://idp.test", "aud": "https://mcp.test/mcp",
            "sub": sub, "exp": now + 3600, "scope": "mcp:tools"});
        jsonwebtoken::encode(&header, &claims, &key).expect("sign")
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let hot = format!("Bearer {}", mint("alice".into()));
    fn creds(v: &str) -> mcp_gateway::auth::Credentials<'_> {
        mcp_gateway::auth::Credentials {
            authorization: Some(v),
            api_key: None,
        }
    }
    let mut g = c.benchmark_group("auth_jwt_rs256");
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            rt.block_on(authn.authenticate(creds(black_box(&hot)), route.resource_url.as_deref()))
        })
    });
    // Fresh tokens: every iteration verifies a signature.
    let fresh: Vec<String> = (0..256)
        .map(|i| format!("Bearer {}", mint(format!("u{i}"))))
        .collect();
    let mut i = 0usize;
    g.bench_function("cache_miss_verify", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            // A different cache key per iteration (the cache is keyed by route URL + token;
            // the audience is fixed in config) defeats the cache without minting in the loop.
            let mut r = route.clone();
            r.resource_url = Some(format!("https://mcp.test/mcp#{i}"));
            let _ = rt.block_on(
                authn.authenticate(creds(&fresh[i % fresh.len()]), r.resource_url.as_deref()),
            );
        })
    });
    g.finish();
}

/// `N` realistic tool definitions (name, ~100-character description, an `inputSchema` with
/// three properties) split evenly over upstreams `github` and `crm`.
fn tools_snapshot(n: usize) -> mcp_gateway::registry::Snapshot {
    use mcp_gateway::registry::{Health, Snapshot, UpstreamTools};
    let defs = |upstream: &str, count: usize| -> Vec<serde_json::Value> {
        (0..count)
            .map(|i| {
                serde_json::json!({
                    "name": format!("list_{upstream}_records_{i}"),
                    "description": format!(
                        "List the {upstream} records of page {i}, newest first, filtered by state \
                         and owner; returns at most limit items."
                    ),
                    "inputSchema": {
                        "type": "object",
                        "properties": {
                            "state": {"type": "string", "enum": ["open", "closed", "all"],
                                      "description": "Which records to include."},
                            "owner": {"type": "string", "description": "Login of the owner."},
                            "limit": {"type": "integer", "minimum": 1, "maximum": 100,
                                      "description": "Largest number of records returned."}
                        },
                        "required": ["state"]
                    },
                    "annotations": {"readOnlyHint": true}
                })
            })
            .collect()
    };
    let up = |tools| UpstreamTools {
        health: Health::Up,
        tools,
        refreshed: None,
        quarantined: Vec::new(),
        offers: Default::default(),
        modern: false,
    };
    Snapshot {
        generation: 1,
        upstreams: [
            ("github".to_string(), up(defs("github", n / 2))),
            ("crm".to_string(), up(defs("crm", n - n / 2))),
        ]
        .into_iter()
        .collect(),
    }
}

/// A virtual server over both upstreams with one rule, so callers fall into two principal
/// classes: everyone sees `github.*` (half the tools), group `eng` also sees `crm.*` (the
/// rest, minus the few a deny pattern hides), so every entry passes allow and deny checks.
const TOOLS_LIST_CONFIG: &str = r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{ path: /mcp, upstream: github }]
upstreams:
  - { name: github, url: "http://127.0.0.1:2/mcp" }
  - { name: crm, url: "http://127.0.0.1:3/mcp" }
virtual_servers:
  - name: support
    route: /v/support/mcp
    allow_tools: ["github.*"]
    deny_tools: ["crm.*_13"]
    rules:
      - groups: [eng]
        allow_tools: ["crm.*"]
"#;

/// `tools/list` on a virtual server (`proxy::vserver`) for 20, 200 and 2000 tools.
fn tools_list(c: &mut Criterion) {
    use mcp_gateway::registry::catalog::{self, Catalog};
    let config = mcp_gateway::config::from_yaml(TOOLS_LIST_CONFIG).expect("bench config");
    let vs = &config.virtual_servers[0];
    let groups = vec!["eng".to_string()];
    let mut g = c.benchmark_group("tools_list");
    for n in [20usize, 200, 2000] {
        let snapshot = tools_snapshot(n);
        g.throughput(Throughput::Elements(n as u64));
        // The registry-change path: the first request after a refresh that bumped the
        // generation rebuilds the virtual server's catalog (`Catalogs::get` ->
        // `Catalog::build`): exposed names, collision check, every definition copied with
        // overrides applied. Includes dropping it, as replacing the old catalog does.
        g.bench_with_input(BenchmarkId::new("catalog_build", n), &n, |b, _| {
            b.iter(|| Catalog::build(&config, vs, black_box(&snapshot)))
        });
        // The per-request hot path: every later `tools/list` computes the caller's principal
        // class and takes the pre-serialized answer for it (cache hit + `Bytes` clone).
        let warm = Catalog::build(&config, vs, &snapshot);
        let bob = |subject| mcp_gateway::config::Caller {
            issuer: "https://idp.test",
            subject,
            groups: &groups,
            roles: &[],
            agent: None,
        };
        let primed = warm.tools_json(vs, catalog::class_of(vs, &bob("bob")));
        assert!(!primed.is_empty());
        g.bench_with_input(BenchmarkId::new("warm", n), &n, |b, _| {
            b.iter(|| {
                let class = catalog::class_of(vs, &bob(black_box("bob")));
                warm.tools_json(vs, class)
            })
        });
        // For comparison: the first `tools/list` of a class on a fresh catalog filters every
        // entry and serializes the visible definitions (the catalog is built outside the
        // timing, and dropped outside it too).
        g.bench_with_input(BenchmarkId::new("cold", n), &n, |b, _| {
            b.iter_batched_ref(
                || Catalog::build(&config, vs, &snapshot),
                |cat| {
                    let class = catalog::class_of(vs, &bob(black_box("bob")));
                    cat.tools_json(vs, class)
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

/// Every per-replica table (verified tokens, opened sessions, revocations, identity caches):
/// `store::BoundedMap` at its production size (100,000 entries, digest keys). `get` is the
/// per-request cost; `insert_full` is a new key into a full map of live entries (evicts the
/// one closest to expiry). `mutex_hashmap` is the bare `Mutex<HashMap>` the tables were
/// before, for the cost of the expiry index; `get_2_threads` is two threads on one map (ns
/// per get, wall clock), for the cost of one lock instead of shards.
fn bounded_map(c: &mut Criterion) {
    use mcp_gateway::store::BoundedMap;
    use std::collections::HashMap;
    use std::sync::Mutex;
    const N: u128 = 100_000;
    let key = |i: u128| mcp_gateway::digest::keyed(&[i.to_le_bytes().as_slice()]);
    let map: BoundedMap<u128, u64> = BoundedMap::new(N as usize);
    let plain: Mutex<HashMap<u128, u64>> = Mutex::new(HashMap::new());
    for i in 0..N {
        map.insert(key(i), 1, 1_000 + (i as u64 % 600), 0);
        if let Ok(mut m) = plain.lock() {
            m.insert(key(i), 1);
        }
    }
    let probe = key(N / 2);
    let mut g = c.benchmark_group("bounded_map");
    g.bench_function("get", |b| b.iter(|| map.get(black_box(&probe), 10)));
    g.bench_function("get/mutex_hashmap", |b| {
        b.iter(|| {
            plain
                .lock()
                .ok()
                .and_then(|m| m.get(black_box(&probe)).copied())
        })
    });
    g.bench_function("get_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters {
                            black_box(map.get(black_box(&probe), 10));
                        }
                    });
                }
            });
            start.elapsed() / 2
        })
    });
    // Last: it replaces the entries the gets above probe.
    let mut next = N;
    g.bench_function("insert_full", |b| {
        b.iter(|| {
            next += 1;
            map.insert(key(next), 1, 2_000 + (next as u64 % 600), 10);
        })
    });
    g.finish();
}

/// `request_filter` step 7: `decision::decide` on a plain route (the credential step only)
/// and on a virtual-server `tools/call` (visibility, availability, the rename and pinned
/// arguments spliced, credential). Issue 12's policy, quota and approval steps are measured
/// here as they land.
fn decision(c: &mut Criterion) {
    use std::io::Write as _;
    use std::sync::Arc;

    use mcp_gateway::decision::{self, Exchange, Message, RetrySafety, SessionBinding, Target};
    use mcp_gateway::registry::catalog::Catalog;
    use mcp_gateway::registry::{Health, Snapshot, UpstreamTools};

    let mut secret = tempfile::NamedTempFile::new().expect("temp file");
    secret.write_all(b"s3cret").expect("write");
    let yaml = format!(
        r#"
listeners:
  - address: 127.0.0.1:1
    auth: none
    routes: [{{ path: /mcp, upstream: github }}]
upstreams:
  - name: github
    url: "http://127.0.0.1:2/mcp"
    auth: {{ mode: static, secret: "file:{}" }}
virtual_servers:
  - name: s
    route: /v/s/mcp
    allow_tools: ["github.*"]
    tools:
      github.list_issues: {{ pinned: {{ org: acme }} }}
"#,
        secret.path().display()
    );
    let config = mcp_gateway::config::from_yaml(&yaml).expect("config");
    let http = mcp_gateway::http_client::HttpClient::default();
    let rt = mcp_gateway::state::Runtime::new(config, &http, Default::default()).expect("runtime");
    let mut snap = Snapshot {
        generation: 1,
        ..Default::default()
    };
    snap.upstreams.insert(
        "github".into(),
        UpstreamTools {
            health: Health::Up,
            tools: vec![
                serde_json::json!({"name": "list_issues", "inputSchema": {"type": "object"}}),
            ],
            refreshed: None,
            quarantined: vec![],
            offers: Default::default(),
            modern: false,
        },
    );
    let server = Arc::new(rt.config.virtual_servers[0].clone());
    let catalog = Arc::new(Catalog::build(&rt.config, &server, &snap));
    let (position, _) = catalog.resolve("github__list_issues").expect("entry");
    let upstream = rt.upstreams.by_name("github").expect("upstream").clone();
    let route = Target::route(upstream.clone(), Exchange::Message);
    let tool = Target {
        upstream,
        exchange: Exchange::Message,
        tool: Some(decision::ToolTarget {
            server,
            catalog: catalog.clone(),
            position,
            class: 0,
            retry: RetrySafety::Unsafe,
            modern_client: None,
        }),
        session: SessionBinding::Client,
        item: None,
    };
    let body = bytes::Bytes::from(small_call());
    let call = jsonrpc::parse(&body, DEPTH).expect("parse");
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio");
    let message = Message {
        body: &body,
        call: Some(&call),
        headers: None,
    };
    let approvals = mcp_gateway::approval::Approvals::default();
    // The same configuration with an approval rule: on another tool (what every call a
    // rule does not cover pays), and on this one (a pending approval, memory store).
    let with_rule = |tools: &str| {
        let yaml = format!("{yaml}approvals: {{ rules: [{{ tools: [\"{tools}\"] }}] }}\n");
        let config = mcp_gateway::config::from_yaml(&yaml).expect("config");
        mcp_gateway::state::Runtime::new(config, &http, Default::default()).expect("runtime")
    };
    let (elsewhere, here) = (with_rule("github.delete_*"), with_rule("github.*"));
    let quotas =
        mcp_gateway::quota::Quotas::new(mcp_gateway::metrics::Metrics::new().expect("metrics"));
    let parked = mcp_gateway::proxy::mrtr::ParkedCalls::default();
    let stores = decision::Stores {
        approvals: &approvals,
        quotas: &quotas,
        parked: &parked,
    };
    let mut g = c.benchmark_group("decide");
    g.bench_function("plain_route", |b| {
        b.iter(|| {
            tokio.block_on(decision::decide(
                black_box(&route),
                message,
                None,
                &rt,
                stores,
            ))
        })
    });
    g.bench_function("plain_route_approval_rule_elsewhere", |b| {
        b.iter(|| {
            tokio.block_on(decision::decide(
                black_box(&route),
                message,
                None,
                &elsewhere,
                stores,
            ))
        })
    });
    g.bench_function("plain_route_approval_pending", |b| {
        b.iter(|| {
            tokio.block_on(decision::decide(
                black_box(&route),
                message,
                None,
                &here,
                stores,
            ))
        })
    });
    g.bench_function("vserver_tool_call_pinned", |b| {
        b.iter(|| {
            tokio.block_on(decision::decide(
                black_box(&tool),
                message,
                None,
                &rt,
                stores,
            ))
        })
    });
    g.finish();
}

/// `decide` step 6: the in-memory quota check of one `tools/call` (target: under 2 µs), then
/// the permit's release as the request ends. `one_limit`: rate + concurrency + budget on one
/// counter; `three_limits`: three such limits (subject, subject+tool, global); `many_keys`:
/// one limit over 10,000 subjects (spread over the shards); `not_covered`: limits exist but
/// none covers the tool.
fn quota(c: &mut Criterion) {
    use mcp_gateway::quota::{Call, Clock, Quotas};

    let limit = |name: &str, key: &str, tools: &str| {
        format!(
            "  - {{ name: {name}, key: [{key}], tools: [{tools}], rate: {{ requests: 1000000, per: 1s }}, concurrency: 100000, budget: {{ units: 1000000000000, per: 1d }} }}\n"
        )
    };
    let yaml = |quotas: &str| {
        format!(
            "listeners: [{{address: '127.0.0.1:1', auth: none, routes: [{{path: /mcp, upstream: github}}]}}]\nupstreams: [{{name: github, url: 'http://127.0.0.1:2/mcp'}}]\nquotas:\n{quotas}"
        )
    };
    let limits = |quotas: &str| {
        mcp_gateway::config::from_yaml(&yaml(quotas))
            .expect("config")
            .quotas
    };
    let one = limits(&limit("per-user", "subject", "\"github.*\""));
    let three = limits(&format!(
        "{}{}{}",
        limit("per-user", "subject", "\"github.*\""),
        limit("per-tool", "subject, tool", "\"github.*\""),
        limit("global", "", "\"*.*\"")
    ));
    let other = limits(&limit("other", "subject", "github.other_tool"));
    let q = Quotas::new(mcp_gateway::metrics::Metrics::new().expect("metrics"));
    // A clock that moves 1 µs a call, as time would: the rate never refuses.
    let clock = Clock::manual(1_700_000_000_000_000_000);
    q.set_clock(clock.clone());
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio");
    let groups = vec!["bench".to_string()];
    let call = Call {
        issuer: "https://idp.example",
        subject: "alice",
        groups: &groups,
        upstream: "github",
        tool: "list_issues",
        ..Call::default()
    };
    let subjects: Vec<String> = (0..10_000).map(|i| format!("user-{i}")).collect();
    let mut g = c.benchmark_group("quota");
    for (name, limits) in [
        ("one_limit", &one),
        ("three_limits", &three),
        ("not_covered", &other),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                clock.advance(std::time::Duration::from_micros(1));
                let held = tokio.block_on(q.check(black_box(limits), None, &call));
                drop(black_box(held));
            })
        });
    }
    let mut i = 0;
    g.bench_function("many_keys", |b| {
        b.iter(|| {
            clock.advance(std::time::Duration::from_micros(1));
            i = (i + 1) % subjects.len();
            let call = Call {
                subject: &subjects[i],
                ..call
            };
            let held = tokio.block_on(q.check(black_box(&one), None, &call));
            drop(black_box(held));
        })
    });
    g.finish();
}

/// `decide` step 4 with ten `policies[]` rules covering the called tool (patterns, bounds,
/// enums, a path prefix, required/forbidden, a per-caller `when` and an `allow_when`): the
/// arguments are read once, every rule checked. Compare with `decide/plain_route` (no rules).
/// Target (issue 12): under 2 µs for the policy step.
fn policy(c: &mut Criterion) {
    use mcp_gateway::decision::{self, Exchange, Message, Target};

    let rules = r#"
policies:
  - { id: r1, tools: ["github.*"], arguments: { repo: { pattern: "^org/", max_length: 100 } } }
  - { id: r2, tools: [github.list_issues], arguments: { state: { enum: [open, closed] } } }
  - { id: r3, tools: ["github.list_*"], arguments: { labels: { max_length: 10, type: array } } }
  - { id: r4, tools: ["github.*"], required: [repo] }
  - { id: r5, tools: ["github.*"], forbidden: [force, admin] }
  - { id: r6, tools: ["github.*"], arguments: { repo: { prefix: org/, deny: [org/secret] } } }
  - { id: r7, tools: ["github.*"], arguments: { /labels/0: { enum: [bug, feature, p1] } } }
  - { id: r8, tools: ["github.*"], arguments: { limit: { min: 1, max: 100, type: integer } } }
  - { id: r9, tools: ["github.*"], when: { groups: [contractors] }, forbidden: [state] }
  - { id: r10, tools: ["github.*"], allow_when: { groups: [eng] } }
"#;
    let yaml = format!(
        "listeners: [{{address: '127.0.0.1:1', auth: none, routes: [{{path: /mcp, upstream: github}}]}}]\nupstreams: [{{name: github, url: 'http://127.0.0.1:2/mcp'}}]\n{rules}"
    );
    let config = mcp_gateway::config::from_yaml(&yaml).expect("config");
    assert_eq!(config.policies.len(), 10);
    let http = mcp_gateway::http_client::HttpClient::default();
    let rt = mcp_gateway::state::Runtime::new(config, &http, Default::default()).expect("runtime");
    let upstream = rt.upstreams.by_name("github").expect("upstream").clone();
    let route = Target::route(upstream, Exchange::Message);
    // The upstream's own name: a plain route does not rename.
    let body = bytes::Bytes::from(
        String::from_utf8(small_call())
            .expect("utf-8")
            .replace("github__list_issues", "list_issues"),
    );
    let call = jsonrpc::parse(&body, DEPTH).expect("parse");
    let principal = mcp_gateway::auth::Principal {
        issuer: "https://idp".into(),
        subject: "alice".into(),
        name: None,
        groups: vec!["eng".into()],
        roles: vec![],
        scopes: vec![],
        agent: None,
        method: mcp_gateway::auth::AuthMethod::Jwt,
        expires_at: None,
        token: None,
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("tokio");
    let message = Message {
        body: &body,
        call: Some(&call),
        headers: None,
    };
    let approvals = mcp_gateway::approval::Approvals::default();
    let quotas =
        mcp_gateway::quota::Quotas::new(mcp_gateway::metrics::Metrics::new().expect("metrics"));
    let parked = mcp_gateway::proxy::mrtr::ParkedCalls::default();
    let stores = decision::Stores {
        approvals: &approvals,
        quotas: &quotas,
        parked: &parked,
    };
    assert!(tokio
        .block_on(decision::decide(
            &route,
            message,
            Some(&principal),
            &rt,
            stores
        ))
        .is_ok());
    c.bench_function("decide/plain_route_10_rules", |b| {
        b.iter(|| {
            tokio.block_on(decision::decide(
                black_box(&route),
                message,
                Some(&principal),
                &rt,
                stores,
            ))
        })
    });
}

/// The audit record of a `tools/call` (principal, redacted arguments, exact digest, the
/// call's outcome read from its response): `writer_line` is what the writer thread does per
/// record before chaining (write the line from the facts); `submit_request` queues facts
/// to the real writer thread, which builds, serializes, chains, writes and fsyncs (group
/// commit) to a file. It runs with `on_full: block`, so it measures the sustained rate:
/// when the writer falls behind, the bench waits for it.
fn audit(c: &mut Criterion) {
    use mcp_gateway::audit::{Audit, Facts};
    use mcp_gateway::auth::{AuthMethod, Principal};
    use std::sync::Arc;
    let yaml = r#"
listeners:
  - { address: 127.0.0.1:1, auth: none, routes: [{ path: /mcp, upstream: github }] }
upstreams:
  - { name: github, url: http://127.0.0.1:2/mcp }
audit:
  path: PATH
  queue: 8192
  redact:
    rules:
      - { tools: [github.*], arguments: { repo: hash, labels: drop } }
"#;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("audit.jsonl");
    let config = mcp_gateway::config::from_yaml(&yaml.replace("PATH", &path.display().to_string()))
        .unwrap_or_else(|e| panic!("{e}"));
    let Some(audit_config) = config.audit else {
        panic!("audit section");
    };
    let principal = Arc::new(Principal {
        issuer: "https://idp.example.com".into(),
        subject: "alice@example.com".into(),
        name: None,
        groups: vec!["eng".into(), "oncall".into()],
        roles: vec![],
        scopes: vec![],
        agent: Some("claude-code".into()),
        method: AuthMethod::Jwt,
        expires_at: None,
        token: None,
    });
    let body = bytes::Bytes::from(small_call());
    let facts = || Facts {
        time: std::time::SystemTime::now(),
        request_id: mcp_gateway::audit::request_id(),
        trace_id: None,
        principal: Some(principal.clone()),
        virtual_server: Some("dev".into()),
        upstream: Some("github".into()),
        tool: Some(("github__list_issues".into(), Some("list_issues".into()))),
        method: mcp_gateway::mcp::McpMethod::ToolsCall,
        body: body.clone(),
        arguments: mcp_gateway::mcp::jsonrpc::parse(&body, 64)
            .ok()
            .and_then(|c| c.arguments),
        refused_by: None,
        reject: None,
        forwarded: true,
        outcome: mcp_gateway::metrics::Outcome::Ok,
        status: Some(200),
        upstream_status: Some(200),
        response: Some((
            br#"{"jsonrpc":"2.0","id":17,"result":{"content":[{"type":"text","text":"[]"}]}}"#
                .to_vec(),
            false,
        )),
        quota: Vec::new(),
        bytes_in: body.len() as u64,
        bytes_out: 512,
        gateway_time: Some(std::time::Duration::from_micros(80)),
        upstream_time: Some(std::time::Duration::from_micros(900)),
        redaction: audit_config.redact.clone(),
        round: None,
    };
    let one = facts();
    c.bench_function("audit/writer_line", |b| {
        let mut out = Vec::with_capacity(4096);
        b.iter(|| {
            out.clear();
            black_box(&one).write(&mut out);
            out.len()
        })
    });
    let metrics = mcp_gateway::metrics::Metrics::new().unwrap_or_else(|e| panic!("{e}"));
    let trail = Audit::open(&audit_config, metrics).unwrap_or_else(|e| panic!("{e}"));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("audit/submit_request", |b| {
        b.iter(|| rt.block_on(trail.submit_request(facts())))
    });
    trail.close();
}

/// `logging()`: the metrics of one finished `tools/call` (request counter, gateway-time and
/// upstream-time histograms, five labels each), against the three-label counter and
/// one-label histograms it replaced; and `request_filter`'s W3C trace: continuing a valid
/// `traceparent` (a new span id) or starting one (trace and span ids), and rendering the
/// upstream header.
fn observability(c: &mut Criterion) {
    use mcp_gateway::mcp::McpMethod;
    use mcp_gateway::metrics::{Metrics, Outcome, RequestRecord};
    use pingora_prometheus::prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts};
    use std::time::Duration;

    let m = Metrics::new().expect("metrics");
    let record = RequestRecord {
        virtual_server: "all",
        upstream: "github",
        method: McpMethod::ToolsCall,
        tool: "github__list_issues",
        outcome: Outcome::Ok,
        added: Some(Duration::from_micros(40)),
        upstream_latency: Some(Duration::from_millis(3)),
        upstream_error: None,
        credential_mode: None,
        refused_by: None,
    };
    c.bench_function("metrics/record_tools_call", |b| {
        b.iter(|| m.record(black_box(&record)))
    });
    // The previous label sets, for the cost of the added labels.
    let requests = IntCounterVec::new(Opts::new("r", "r"), &["upstream", "method", "outcome"])
        .expect("counter");
    let added = HistogramVec::new(HistogramOpts::new("a", "a"), &["method"]).expect("histogram");
    let upstream =
        HistogramVec::new(HistogramOpts::new("u", "u"), &["upstream"]).expect("histogram");
    c.bench_function("metrics/record_tools_call_previous_labels", |b| {
        b.iter(|| {
            let r = black_box(&record);
            requests
                .with_label_values(&[r.upstream, r.method.as_label(), r.outcome.as_label()])
                .inc();
            added
                .with_label_values(&[r.method.as_label()])
                .observe(0.000_04);
            upstream.with_label_values(&[r.upstream]).observe(0.003);
        })
    });

    let incoming = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    c.bench_function("trace/continue_valid_traceparent", |b| {
        b.iter(|| {
            mcp_gateway::trace::Trace::from_headers(std::iter::once(black_box(&incoming[..])))
        })
    });
    c.bench_function("trace/start_new", |b| {
        b.iter(|| mcp_gateway::trace::Trace::from_headers(std::iter::empty()))
    });
    let t = mcp_gateway::trace::Trace::from_headers(std::iter::empty());
    c.bench_function("trace/header_value", |b| {
        b.iter(|| black_box(&t).header_value())
    });
}

/// `response_body_filter` on a virtual server's results (`vserver::results`): a JSON
/// `tools/call` result without a resource URI (the common case: one byte scan, the body
/// passed as it is), a `resources/read` result whose URI is spliced to the exposed form, and
/// an SSE chunk of whole events without one (zero copy).
fn result_uris(c: &mut Criterion) {
    use bytes::Bytes;
    use mcp_gateway::vserver::results::ResultRewriter;
    let text = Bytes::from(
        serde_json::json!({"jsonrpc":"2.0","id":17,"result":{"content":[
            {"type":"text","text":"x".repeat(2000)}],"isError":false}})
        .to_string(),
    );
    let read = Bytes::from(
        serde_json::json!({"jsonrpc":"2.0","id":18,"result":{"contents":[
            {"uri":"file:///docs/readme.md","mimeType":"text/markdown","text":"x".repeat(2000)}]}})
        .to_string(),
    );
    let sse = Bytes::from(format!(
        "event: message\ndata: {}\n\n",
        std::str::from_utf8(&text).unwrap_or("")
    ));
    c.bench_function("results/json_call_no_uri_2k", |b| {
        b.iter(|| {
            ResultRewriter::new(Some("docs"), false, None).push(black_box(text.clone()), true)
        })
    });
    c.bench_function("results/json_read_one_uri_2k", |b| {
        b.iter(|| {
            ResultRewriter::new(Some("docs"), false, None).push(black_box(read.clone()), true)
        })
    });
    c.bench_function("results/sse_call_no_uri_2k", |b| {
        b.iter(|| ResultRewriter::new(Some("docs"), true, None).push(black_box(sse.clone()), true))
    });
}

criterion_group!(
    benches,
    strict_pass,
    parse,
    tool_rewrite,
    sessions,
    guards,
    error_body,
    auth,
    tools_list,
    bounded_map,
    decision,
    policy,
    quota,
    audit,
    observability,
    result_uris
);
criterion_main!(benches);
