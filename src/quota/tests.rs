//! The engine on its own: limits built from YAML, a manual clock, no sockets.

use super::*;

const S: u64 = 1_000_000_000;

fn limits(quotas: &str) -> Vec<Limit> {
    let yaml = format!(
        "listeners: [{{address: '127.0.0.1:1', auth: none, routes: [{{path: /mcp, upstream: up}}]}}]\nupstreams: [{{name: up, url: 'http://127.0.0.1:2/mcp'}}]\nquotas:\n{quotas}"
    );
    crate::config::from_yaml(&yaml).unwrap().quotas
}

fn engine() -> (Quotas, Clock) {
    let q = Quotas::new(Metrics::new().unwrap());
    let clock = Clock::manual(1_000 * S);
    q.set_clock(clock.clone());
    (q, clock)
}

fn alice(groups: &[String]) -> Call<'_> {
    Call {
        issuer: "api-key",
        subject: "alice",
        groups,
        upstream: "up",
        tool: "echo",
        ..Call::default()
    }
}

#[tokio::test]
async fn a_rate_allows_exactly_its_burst_then_one_per_interval() {
    let l = limits("  - {name: r, key: [subject], rate: {requests: 3, per: 3s}}\n");
    let (q, clock) = engine();
    for _ in 0..3 {
        q.check(&l, None, &alice(&[])).await.unwrap();
    }
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    assert_eq!(
        e,
        Reject::QuotaExceeded {
            limit: "r".into(),
            kind: QuotaKind::Rate,
            quota: 3,
            window: 3,
            retry_after: 1
        }
    );
    // Another subject has its own counter.
    let bob = Call {
        subject: "bob",
        ..alice(&[])
    };
    q.check(&l, None, &bob).await.unwrap();
    clock.advance(std::time::Duration::from_secs(1));
    q.check(&l, None, &alice(&[])).await.unwrap();
    assert!(q.check(&l, None, &alice(&[])).await.is_err());
}

#[tokio::test]
async fn a_limit_covers_only_its_tools_and_groups_count_separately() {
    let l = limits("  - {name: g, key: [group], tools: [up.echo], rate: {requests: 1, per: 1m}}\n");
    let (q, _) = engine();
    let other = Call {
        tool: "add",
        ..alice(&[])
    };
    for _ in 0..3 {
        q.check(&l, None, &other).await.unwrap();
    }
    let a = ["red".to_string()];
    let b = ["red".to_string(), "blue".to_string()];
    q.check(&l, None, &alice(&a)).await.unwrap();
    // "red" is spent; a caller in red and blue is refused by red's counter.
    assert!(q.check(&l, None, &alice(&b)).await.is_err());
    let c = ["blue".to_string()];
    q.check(&l, None, &alice(&c)).await.unwrap();
    // Callers without a group share one counter.
    q.check(&l, None, &alice(&[])).await.unwrap();
    assert!(q.check(&l, None, &alice(&[])).await.is_err());
}

#[tokio::test]
async fn permits_go_back_when_the_held_call_ends() {
    let l = limits("  - {name: c, key: [subject], concurrency: 1}\n");
    let (q, _) = engine();
    let held = q.check(&l, None, &alice(&[])).await.unwrap();
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    assert!(
        matches!(
            e,
            Reject::QuotaExceeded {
                kind: QuotaKind::Concurrency,
                ..
            }
        ),
        "{e:?}"
    );
    drop(held);
    let mut held = q.check(&l, None, &alice(&[])).await.unwrap();
    held.finish(10);
    q.check(&l, None, &alice(&[])).await.unwrap();
}

#[tokio::test]
async fn budgets_charge_fixed_costs_now_and_metered_ones_at_the_end() {
    let l = limits(
        "  - name: b\n    key: [subject]\n    budget:\n      units: 10\n      per: 1h\n      cost:\n        - {tools: [up.add], units: 4}\n        - {tools: [up.echo], metered: response_tokens}\n",
    );
    let (q, clock) = engine();
    let add = Call {
        tool: "add",
        ..alice(&[])
    };
    q.check(&l, None, &add).await.unwrap();
    q.check(&l, None, &add).await.unwrap();
    // 8 of 10 spent: another 4 does not fit, but a metered call (needs 1 left) does.
    assert!(q.check(&l, None, &add).await.is_err());
    let mut held = q.check(&l, None, &alice(&[])).await.unwrap();
    held.finish(9); // 3 tokens: 11 spent
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    let Reject::QuotaExceeded {
        kind: QuotaKind::Budget,
        retry_after,
        ..
    } = e
    else {
        panic!("{e:?}")
    };
    // The clock stands at 1,000 s after the epoch: the hour window ends 2,600 s later.
    assert_eq!(retry_after, 2_600);
    clock.advance(std::time::Duration::from_secs(retry_after));
    q.check(&l, None, &add).await.unwrap();
}

/// A call waiting for its client's input (MRTR) carries its permit and metered budgets into
/// the retry: the permit stays taken until the last round ends, and each round's response
/// is charged to the same budget, without a new count.
#[tokio::test]
async fn a_carried_call_keeps_its_permit_and_meters_its_next_round() {
    let l = limits(
        "  - {name: c, key: [subject], concurrency: 1}\n  - name: m\n    key: [subject]\n    budget: {units: 10, per: 1h, cost: [{tools: [up.echo], metered: response_tokens}]}\n",
    );
    let (q, _) = engine();
    let mut first = q.check(&l, None, &alice(&[])).await.unwrap();
    let mut carried = first.carry();
    first.finish(20); // the first round's answer: 5 tokens
    assert_eq!(
        first.take_charges(),
        vec![
            Charge {
                limit: "c".into(),
                units: None,
                metered: false
            },
            Charge {
                limit: "m".into(),
                units: Some(5),
                metered: true
            },
        ]
    );
    // Still in flight: the permit went with the parked call.
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    assert!(
        matches!(
            e,
            Reject::QuotaExceeded {
                kind: QuotaKind::Concurrency,
                ..
            }
        ),
        "{e:?}"
    );
    carried.finish(24); // the retry's answer: 6 more tokens, 11 of 10 spent
    assert_eq!(
        carried.take_charges(),
        vec![Charge {
            limit: "m".into(),
            units: Some(6),
            metered: true
        }]
    );
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    assert!(
        matches!(
            e,
            Reject::QuotaExceeded {
                kind: QuotaKind::Budget,
                ..
            }
        ),
        "{e:?}"
    );
}

/// A call that never ran gets back what its check took (rate slots, fixed charges), from
/// every limit and group; one refused by a later limit or group never keeps what the earlier
/// ones took.
#[tokio::test]
async fn a_call_that_never_ran_gives_back_its_slots_and_charges() {
    let l = limits(
        "  - {name: r, key: [subject], rate: {requests: 1, per: 1m}}
  - name: b
    key: [subject]
    budget: {units: 10, per: 1h, cost: [{tools: [up.echo], units: 6}]}
",
    );
    let (q, _) = engine();
    let mut held = q.check(&l, None, &alice(&[])).await.unwrap();
    held.refund();
    assert!(held.take_charges().is_empty(), "nothing counted it");
    // Both back: the slot (1 a minute) and the 6 units (of 10) are there again, once.
    let mut again = q.check(&l, None, &alice(&[])).await.unwrap();
    assert_eq!(again.take_charges().len(), 2);
    let e = q.check(&l, None, &alice(&[])).await.unwrap_err();
    assert!(
        matches!(
            e,
            Reject::QuotaExceeded {
                kind: QuotaKind::Rate,
                ..
            }
        ),
        "{e:?}"
    );
    // A second refund gives nothing more.
    held.refund();
    assert!(q.check(&l, None, &alice(&[])).await.is_err());

    // Refused by a later limit: the earlier one keeps nothing. `late` allows no call
    // after the first, so only its refusal stands between the caller and `early`.
    let l = limits(
        "  - {name: early, key: [subject], rate: {requests: 2, per: 1m}}
  - {name: late, key: [subject], tools: [up.add], rate: {requests: 1, per: 1h}}
",
    );
    let (q, _) = engine();
    let add = Call {
        tool: "add",
        ..alice(&[])
    };
    q.check(&l, None, &add).await.unwrap(); // early 1 of 2, late 1 of 1
    for _ in 0..3 {
        let e = q.check(&l, None, &add).await.unwrap_err();
        assert!(
            matches!(&e, Reject::QuotaExceeded { limit, .. } if limit == "late"),
            "{e:?}"
        );
    }
    // `early` still has its second slot: the refused calls did not take it.
    q.check(&l, None, &alice(&[])).await.unwrap();
    assert!(q.check(&l, None, &alice(&[])).await.is_err());

    // A refund after the counter drained past the call's slot (a slow connect timeout)
    // gives nothing back: the slot came back on its own, and two more would break the burst.
    let l = limits("  - {name: r2, key: [subject], rate: {requests: 2, per: 10s}}\n");
    let (q, clock) = engine();
    let mut slow = q.check(&l, None, &alice(&[])).await.unwrap();
    clock.advance(std::time::Duration::from_secs(20));
    q.check(&l, None, &alice(&[])).await.unwrap();
    q.check(&l, None, &alice(&[])).await.unwrap();
    slow.refund();
    assert!(q.check(&l, None, &alice(&[])).await.is_err());

    // A group-keyed limit: "red" passes, "blue" refuses; red's slot goes back.
    let l = limits(
        "  - {name: g, key: [group], rate: {requests: 1, per: 1m}}
",
    );
    let (q, _) = engine();
    let blue = ["blue".to_string()];
    q.check(&l, None, &alice(&blue)).await.unwrap();
    let both = ["red".to_string(), "blue".to_string()];
    assert!(q.check(&l, None, &alice(&both)).await.is_err());
    let red = ["red".to_string()];
    q.check(&l, None, &alice(&red)).await.unwrap();
}

#[test]
fn keys_are_length_prefixed_so_parts_cannot_run_together() {
    assert_ne!(
        memory_key("l", &["a:b", "c"]),
        memory_key("l", &["a", "b:c"])
    );
    assert_eq!(memory_key("l", &["x", ""]), "1:l1:x0:");
}
