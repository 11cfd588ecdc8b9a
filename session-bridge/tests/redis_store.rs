//! The Redis store against a real `redis-server` (started here on a free port): connect-redis's key,
//! value and TTL rules, touch, destroy, and recovery after Redis restarts.

use std::time::{Duration, SystemTime};

use redis::AsyncCommands;
use session_bridge::{CookieSettings, RedisStore, SessionData, SessionStore, StoreError};
use test_redis::Redis;

fn session(max_age: Option<Duration>) -> SessionData {
    let mut settings = CookieSettings::default();
    settings.max_age = max_age;
    let mut d = SessionData::new(&settings);
    d.0.insert("user".into(), "alice".into());
    d
}

#[tokio::test]
async fn stores_sessions_as_connect_redis_does() {
    let redis = Redis::start();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    let mut raw = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();

    let data = session(Some(Duration::from_secs(3600)));
    store.set("abc", &data).await.unwrap();
    let json: String = raw.get("sess:abc").await.unwrap();
    assert_eq!(json, data.to_json(), "the value is the session's JSON");
    assert!(json.starts_with(r#"{"cookie":{"originalMaxAge":3600000,"expires":""#), "{json}");
    let ttl: i64 = raw.ttl("sess:abc").await.unwrap();
    assert!((3590..=3600).contains(&ttl), "TTL from cookie.expires: {ttl}");
    assert_eq!(store.get("abc").await.unwrap(), Some(data.clone()));

    // No expiry: 86400 s.
    store.set("forever", &session(None)).await.unwrap();
    let ttl: i64 = raw.ttl("sess:forever").await.unwrap();
    assert!((86390..=86400).contains(&ttl), "{ttl}");

    // Already expired: the key is deleted.
    let mut dead = data.clone();
    if let Some(serde_json::Value::Object(c)) = dead.0.get_mut("cookie") {
        c.insert("expires".into(), "2000-01-01T00:00:00.000Z".into());
    }
    store.set("abc", &dead).await.unwrap();
    assert!(!raw.exists::<_, bool>("sess:abc").await.unwrap());

    // Touch sets the TTL again; destroy deletes.
    store.set("t", &session(Some(Duration::from_secs(100)))).await.unwrap();
    store.touch("t", &session(Some(Duration::from_secs(5000)))).await.unwrap();
    let ttl: i64 = raw.ttl("sess:t").await.unwrap();
    assert!((4990..=5000).contains(&ttl), "{ttl}");
    store.destroy("t").await.unwrap();
    assert_eq!(store.get("t").await.unwrap(), None);

    // A session written by another app (the Node side) is read as it is.
    let node_json = r#"{"cookie":{"originalMaxAge":3600000,"expires":"2099-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"bob","count":4}"#;
    let _: () = raw.set("sess:fromnode", node_json).await.unwrap();
    let got = store.get("fromnode").await.unwrap().unwrap();
    assert_eq!(got.0["count"], 4);
    assert_eq!(got.to_json(), node_json, "key order and values survive the round trip");
    assert_eq!(got.expires(), Some(SystemTime::UNIX_EPOCH + Duration::from_millis(4_070_908_800_000)));

    // A prefix of one's own.
    let prefixed = RedisStore::connect(&redis.url()).await.unwrap().with_prefix("app:");
    prefixed.set("x", &data).await.unwrap();
    assert!(raw.exists::<_, bool>("app:x").await.unwrap());

    // Garbage under a session key is a format error, not a crash.
    let _: () = raw.set("sess:garbage", "not json").await.unwrap();
    assert!(matches!(store.get("garbage").await, Err(StoreError::Format(_))));
}

#[tokio::test]
async fn errors_while_redis_is_down_then_recovers() {
    let mut redis = Redis::start();
    let port = redis.port();
    let store = RedisStore::connect(&redis.url()).await.unwrap();
    store.set("a", &session(None)).await.unwrap();
    redis.stop();
    let err = tokio::time::timeout(Duration::from_secs(10), store.get("a")).await.expect("fails in time, not hangs");
    assert!(matches!(err, Err(StoreError::Backend(_))), "{err:?}");
    let _redis = Redis::start_on(port);
    // The connection manager reconnects by itself.
    let mut last = None;
    for _ in 0..100 {
        match store.set("b", &session(None)).await {
            Ok(()) => {
                last = None;
                break;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(last, None, "the store works again after Redis is back");
    assert!(store.get("b").await.unwrap().is_some());
}

#[tokio::test]
async fn an_expired_record_still_in_redis_is_loaded_as_express_session_with_connect_redis_does() {
    // express-session does not look at `cookie.expires` when it loads a session, and connect-redis
    // returns whatever Redis holds: a record past its `expires` whose key is still there is used.
    let redis = Redis::start();
    let store = std::sync::Arc::new(RedisStore::connect(&redis.url()).await.unwrap());
    let mut raw = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let record = r#"{"cookie":{"originalMaxAge":1000,"expires":"2000-01-01T00:00:00.000Z","httpOnly":true,"path":"/"},"user":"carol"}"#;
    let _: () = raw.set_ex("sess:stale", record, 60).await.unwrap();
    let bridge = session_bridge::SessionBridge::new(session_bridge::BridgeConfig::new(vec!["k".into()], store));
    let mut headers = http::HeaderMap::new();
    let cookie = format!("connect.sid={}", session_bridge::signature::cookie_value("stale", "k"));
    headers.insert("cookie", cookie.parse().unwrap());
    let session = bridge.load(&headers).await.unwrap().expect("loaded, as express-session does");
    assert_eq!(session.get_as::<String>("user").as_deref(), Some("carol"));
    session.reload().await.expect("reload finds it too");
    assert!(raw.exists::<_, bool>("sess:stale").await.unwrap(), "not removed");
    // Once Redis drops the key, it is gone.
    let _: () = raw.del("sess:stale").await.unwrap();
    assert_eq!(session.reload().await, Err(session_bridge::SessionError::NotFound));
}
