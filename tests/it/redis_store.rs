//! The shared store's connection handling against a real `redis-server`: commands go
//! through, a killed Redis is reported (and failed fast during the back-off), and a
//! restarted one is used again without restarting the gateway's store.
#![allow(clippy::unwrap_used)] // test code: a panic is a test failure

use std::time::Duration;

use mcp_gateway::store::redis::{RedisStore, BACKOFF};

use crate::common::redis::RedisServer;

fn store(url: &str) -> RedisStore {
    let yaml = format!(
        "listeners: [{{address: '127.0.0.1:1', auth: none, routes: [{{path: /mcp, upstream: u}}]}}]\nupstreams: [{{name: u, url: 'http://127.0.0.1:2/mcp'}}]\nredis: {{url: '{url}', timeout: 200ms, pool: 2}}\n"
    );
    let c = mcp_gateway::config::from_yaml(&yaml).unwrap();
    RedisStore::new(c.redis.as_ref().unwrap(), None).unwrap()
}

async fn incr(s: &RedisStore, key: &str) -> Result<i64, mcp_gateway::store::redis::Unavailable> {
    let key = s.key(&["t", key]);
    s.run(|mut c| async move {
        redis::cmd("INCR")
            .arg(&key)
            .query_async::<i64>(&mut c)
            .await
    })
    .await
}

#[tokio::test]
async fn the_store_survives_redis_going_away_and_coming_back() {
    let mut server = RedisServer::start();
    let s = store(&server.url());
    assert_eq!(incr(&s, "n").await.unwrap(), 1);
    assert_eq!(
        incr(&s, "n").await.unwrap(),
        2,
        "round-robin connections share one Redis"
    );

    server.kill();
    let e = incr(&s, "n").await.unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("127.0.0.1:{}", server.port)),
        "{e}"
    );
    assert!(s.backing_off());
    let e = incr(&s, "n").await.unwrap_err();
    assert!(e.cause.contains("back-off"), "{e}");

    server.restart();
    // Bounded: the back-off, then the connection manager reconnects.
    let deadline = std::time::Instant::now() + BACKOFF * 10;
    let v = loop {
        match incr(&s, "n").await {
            Ok(v) => break v,
            Err(e) => assert!(std::time::Instant::now() < deadline, "never recovered: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(v, 1, "a restarted Redis is empty (no persistence)");
}
