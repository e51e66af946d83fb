//! `quotas[]`: rate, concurrency and budget limits.

use std::time::Duration;

use super::{assert_err, BASE};
use crate::config::from_yaml;
use crate::quota::{Backend, Cost, OnRedisError};

fn with(quotas: &str) -> String {
    format!("{BASE}quotas:\n{quotas}")
}

const REDIS: &str = "redis: { url: \"redis://127.0.0.1:6379\" }\n";

#[test]
fn a_limit_is_validated_into_its_kinds() {
    let c = from_yaml(&format!(
        "{REDIS}{}",
        with(
            r#"  - name: per-user
    key: [subject, tool]
    tools: ["demo.*"]
    rate: { requests: 100, per: 1m, burst: 20 }
    concurrency: 4
    budget:
      units: 100000
      per: 1d
      cost:
        - { tools: [demo.search], units: 5 }
        - { tools: [demo.fetch], metered: response_tokens }
    backend: redis
    on_redis_error: fail_closed
  - { name: global, rate: { requests: 10, per: 1s } }
"#
        )
    ))
    .unwrap();
    let l = &c.quotas[0];
    assert!(l.key.subject && l.key.tool && !l.key.group);
    let r = l.rate.unwrap();
    assert_eq!(
        (r.requests, r.per, r.burst),
        (100, Duration::from_secs(60), 20)
    );
    assert_eq!(l.concurrency, Some(4));
    let b = l.budget.as_ref().unwrap();
    assert_eq!(b.cost_of("demo", "search"), Cost::Units(5));
    assert_eq!(b.cost_of("demo", "fetch"), Cost::ResponseTokens);
    assert_eq!(b.cost_of("demo", "other"), Cost::Units(1));
    assert_eq!(
        (l.backend, l.on_redis_error),
        (Backend::Redis, OnRedisError::FailClosed)
    );
    let g = &c.quotas[1];
    assert_eq!(g.rate.unwrap().burst, 10, "burst defaults to requests");
    assert_eq!(
        (g.backend, g.on_redis_error),
        (Backend::Memory, OnRedisError::FailOpen)
    );
    assert!(g.applies_to("demo", "anything"));
}

#[test]
fn names_are_names_and_unique() {
    let q = |n: &str| format!("  - {{ name: {n}, concurrency: 1 }}\n");
    assert_err(
        &with(&q("\"a b\"")),
        "quotas[0].name",
        "invalid or duplicate name",
    );
    assert_err(
        &with(&format!("{}{}", q("a"), q("a"))),
        "quotas[1].name",
        "invalid or duplicate name",
    );
}

#[test]
fn too_many_limits_are_refused() {
    let many: String = (0..65)
        .map(|i| format!("  - {{ name: l{i}, concurrency: 1 }}\n"))
        .collect();
    assert_err(&with(&many), "quotas", "at most 64");
}

#[test]
fn key_parts_are_known_and_listed_once() {
    assert_err(
        &with("  - { name: a, key: [session], concurrency: 1 }\n"),
        "quotas[0].key[0]",
        "use subject, agent, group",
    );
    assert_err(
        &with("  - { name: a, key: [subject, subject], concurrency: 1 }\n"),
        "quotas[0].key[1]",
        "listed twice",
    );
}

#[test]
fn tool_patterns_are_parsed_and_name_an_upstream() {
    assert_err(
        &with("  - { name: a, tools: [nodot], concurrency: 1 }\n"),
        "quotas[0].tools[0]",
        "no '.'",
    );
    assert_err(
        &with("  - { name: a, tools: [other.x], concurrency: 1 }\n"),
        "quotas[0].tools[0]",
        "matches no configured upstream",
    );
}

#[test]
fn a_limit_must_limit_something() {
    assert_err(
        &with("  - { name: a }\n"),
        "quotas[0]",
        "give rate, concurrency or budget",
    );
}

#[test]
fn rates_are_bounded() {
    let r = |rate: &str| with(&format!("  - {{ name: a, rate: {rate} }}\n"));
    assert_err(
        &r("{ requests: 0, per: 1s }"),
        "quotas[0].rate.requests",
        "at least 1",
    );
    assert_err(
        &r("{ requests: 2000000, per: 1s }"),
        "quotas[0].rate.requests",
        "per second",
    );
    assert_err(
        &r("{ requests: 1, per: 500ms }"),
        "quotas[0].rate.per",
        "whole seconds",
    );
    assert_err(&r("{ requests: 1, per: 40d }"), "quotas[0].rate.per", "31d");
    assert_err(
        &r("{ requests: 5, per: 1s, burst: 0 }"),
        "quotas[0].rate.burst",
        "at least 1",
    );
    assert_err(
        &r("{ requests: 5 }"),
        "quotas[0].rate",
        "missing field `per`",
    );
}

#[test]
fn concurrency_is_bounded() {
    assert_err(
        &with("  - { name: a, concurrency: 0 }\n"),
        "quotas[0].concurrency",
        "between 1 and",
    );
}

#[test]
fn budgets_need_units_a_window_and_one_cost_per_entry() {
    let b = |budget: &str| with(&format!("  - {{ name: a, budget: {budget} }}\n"));
    assert_err(
        &b("{ units: 0, per: 1h }"),
        "quotas[0].budget.units",
        "at least 1",
    );
    assert_err(
        &b("{ units: 5, per: 0s }"),
        "quotas[0].budget.per",
        "whole seconds",
    );
    assert_err(
        &b("{ units: 5, per: 1h, cost: [{ tools: [], units: 1 }] }"),
        "quotas[0].budget.cost[0].tools",
        "name the tools",
    );
    assert_err(
        &b("{ units: 5, per: 1h, cost: [{ tools: [x.y], units: 1 }] }"),
        "quotas[0].budget.cost[0].tools[0]",
        "matches no configured upstream",
    );
    assert_err(
        &b("{ units: 5, per: 1h, cost: [{ tools: [demo.y], units: 1, metered: response_tokens }] }"),
        "quotas[0].budget.cost[0]",
        "exactly one of units or metered",
    );
    assert_err(
        &b("{ units: 5, per: 1h, cost: [{ tools: [demo.y] }] }"),
        "quotas[0].budget.cost[0]",
        "exactly one of units or metered",
    );
    assert_err(
        &b("{ units: 5, per: 1h, cost: [{ tools: [demo.y], metered: bytes }] }"),
        "quotas[0].budget.cost[0].metered",
        "response_tokens",
    );
}

#[test]
fn redis_backends_need_the_redis_section_and_fail_modes_need_redis() {
    assert_err(
        &with("  - { name: a, concurrency: 1, backend: disk }\n"),
        "quotas[0].backend",
        "use memory or redis",
    );
    assert_err(
        &with("  - { name: a, concurrency: 1, backend: redis }\n"),
        "quotas[0].backend",
        "needs the top-level redis section",
    );
    assert_err(
        &with("  - { name: a, concurrency: 1, on_redis_error: fail_closed }\n"),
        "quotas[0].on_redis_error",
        "only applies to backend: redis",
    );
    assert_err(
        &format!(
            "{REDIS}{}",
            with("  - { name: a, concurrency: 1, backend: redis, on_redis_error: maybe }\n")
        ),
        "quotas[0].on_redis_error",
        "use fail_open or fail_closed",
    );
}

#[test]
fn unknown_fields_name_their_path() {
    assert_err(
        &with("  - { name: a, concurrency: 1, per_user: true }\n"),
        "quotas[0].per_user",
        "unknown field",
    );
}
