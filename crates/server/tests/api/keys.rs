//! The key lifecycle over HTTP: expiry, rotation with a grace period, per-key rates,
//! address lists, the in-memory cache and the last use.

use crate::{TestApp, problem, spawn_app_with};
use leadflow_core::config::Config;
use leadflow_core::keys::{ApiKey, ApiToken, Scope};
use std::time::Duration;
use time::OffsetDateTime;

async fn spawn(cache: Duration) -> TestApp {
    let mut config = Config::default();
    config.server.key_cache_ttl = cache;
    spawn_app_with(config).await
}

/// Stores a read key shaped by `shape` and returns its token.
async fn key(app: &TestApp, name: &str, shape: impl FnOnce(ApiKey) -> ApiKey) -> ApiToken {
    let token = ApiToken::generate().unwrap();
    let key = shape(ApiKey::new(name, &token, vec![Scope::Read], OffsetDateTime::now_utc()));
    app.store.create_key(key, token.hash()).await.unwrap();
    token
}

async fn get(app: &TestApp, token: &ApiToken) -> reqwest::Response {
    app.http.get(app.url("/v1/leads")).bearer_auth(token.reveal()).send().await.unwrap()
}

#[tokio::test]
async fn an_expired_key_is_401_and_one_not_yet_expired_works() {
    let app = spawn(Duration::ZERO).await;
    let now = OffsetDateTime::now_utc();
    let expired = key(&app, "old", |k| ApiKey { expires_at: Some(now - time::Duration::seconds(1)), ..k }).await;
    let body = problem(get(&app, &expired).await, 401).await;
    assert_eq!(body["code"], "unauthorized");
    let fresh = key(&app, "new", |k| ApiKey { expires_at: Some(now + time::Duration::days(1)), ..k }).await;
    assert_eq!(get(&app, &fresh).await.status(), 200);
}

#[tokio::test]
async fn a_rotated_key_works_until_its_grace_ends_and_its_successor_at_once() {
    let app = spawn(Duration::ZERO).await;
    let old_token = key(&app, "ci", |k| k).await;
    let old = app.store.key_by_hash(old_token.hash()).await.unwrap().unwrap();
    let now = OffsetDateTime::now_utc();
    let new_token = ApiToken::generate().unwrap();
    let successor = old.successor(&new_token, now, None);
    let grace = old.grace_end(now, time::Duration::hours(1));
    app.store.rotate_key(old.id, grace, successor.clone(), new_token.hash()).await.unwrap().unwrap();
    assert_eq!(get(&app, &old_token).await.status(), 200, "the old token works during the grace");
    assert_eq!(get(&app, &new_token).await.status(), 200);

    // A rotation without grace ends the old token at once.
    let newest = ApiToken::generate().unwrap();
    let now = OffsetDateTime::now_utc();
    let third = successor.successor(&newest, now, None);
    app.store
        .rotate_key(successor.id, successor.grace_end(now, time::Duration::ZERO), third, newest.hash())
        .await
        .unwrap();
    problem(get(&app, &new_token).await, 401).await;
    assert_eq!(get(&app, &newest).await.status(), 200);
}

#[tokio::test]
async fn a_key_over_its_rate_is_429_with_retry_after() {
    let app = spawn(Duration::ZERO).await;
    let limited = key(&app, "limited", |k| ApiKey { rate_limit_per_minute: Some(2), ..k }).await;
    assert_eq!(get(&app, &limited).await.status(), 200);
    assert_eq!(get(&app, &limited).await.status(), 200);
    let r = get(&app, &limited).await;
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "{retry}");
    assert_eq!(problem(r, 429).await["code"], "rate_limited");
    assert_eq!(app.get("/v1/leads").await.status(), 200, "another key has its own rate");
}

#[tokio::test]
async fn a_key_with_an_address_list_is_403_from_elsewhere() {
    let app = spawn(Duration::ZERO).await;
    let office = key(&app, "office", |k| ApiKey { allowed_ips: vec!["10.0.0.0/8".parse().unwrap()], ..k }).await;
    let body = problem(get(&app, &office).await, 403).await;
    assert!(body["detail"].as_str().unwrap().contains("address"), "{body}");
    let local = key(&app, "local", |k| ApiKey { allowed_ips: vec!["127.0.0.1".parse().unwrap()], ..k }).await;
    assert_eq!(get(&app, &local).await.status(), 200);
}

#[tokio::test]
async fn a_cached_key_is_read_again_once_its_time_is_up() {
    // A long cache: the revocation is not seen yet.
    let app = spawn(Duration::from_secs(300)).await;
    let token = key(&app, "cached", |k| k).await;
    assert_eq!(get(&app, &token).await.status(), 200);
    app.store.revoke_key("cached").await.unwrap().unwrap();
    assert_eq!(get(&app, &token).await.status(), 200, "served from the cache");

    // A short one: the revocation is seen within it.
    let app = spawn(Duration::from_millis(200)).await;
    let token = key(&app, "cached", |k| k).await;
    assert_eq!(get(&app, &token).await.status(), 200);
    app.store.revoke_key("cached").await.unwrap().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if get(&app, &token).await.status() == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the revocation never reached the server");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_keys_last_use_is_recorded() {
    let app = spawn(Duration::ZERO).await;
    let token = key(&app, "used", |k| k).await;
    assert!(app.store.key_by_hash(token.hash()).await.unwrap().unwrap().last_used_at.is_none());
    let before = OffsetDateTime::now_utc();
    assert_eq!(get(&app, &token).await.status(), 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let used = loop {
        if let Some(at) = app.store.key_by_hash(token.hash()).await.unwrap().unwrap().last_used_at {
            break at;
        }
        assert!(std::time::Instant::now() < deadline, "the last use was never written");
        tokio::task::yield_now().await;
    };
    assert!(used >= before - time::Duration::milliseconds(1), "{used} {before}");
}
