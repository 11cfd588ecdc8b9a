//! Session stores: where session data lives between requests.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use crate::data::SessionData;
pub use crate::data::StoreError;

/// A boxed future.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Where sessions live, as express-session's `Store`: `get`, `set`, `touch`, `destroy`, with expiry taken
/// from the session's `cookie.expires`.
pub trait SessionStore: Send + Sync + 'static {
    /// The session, or `None` if it does not exist or expired.
    fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>>;
    /// Creates or replaces a session.
    fn set<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Extends a session's life to its (refreshed) `cookie.expires`.
    fn touch<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Removes a session.
    fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The in-memory store: sessions as JSON text, dropped when they expire (on read, and by a periodic sweep).
#[derive(Debug, Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<String, (String, Option<SystemTime>)>>,
}

impl MemoryStore {
    /// An empty store, with a task that sweeps expired sessions every `interval` while the store lives.
    pub fn with_sweeper(interval: Duration) -> Arc<MemoryStore> {
        let store = Arc::new(MemoryStore::default());
        let weak: Weak<MemoryStore> = Arc::downgrade(&store);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                match weak.upgrade() {
                    Some(store) => store.sweep(SystemTime::now()),
                    None => return,
                }
            }
        });
        store
    }

    /// Drops the sessions expired at `now`.
    pub fn sweep(&self, now: SystemTime) {
        self.sessions.lock().expect("poisoned").retain(|_, (_, exp)| exp.is_none_or(|e| e > now));
    }

    /// The number of stored sessions.
    pub fn len(&self) -> usize {
        self.sessions.lock().expect("poisoned").len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl SessionStore for MemoryStore {
    fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
        let found = {
            let mut map = self.sessions.lock().expect("poisoned");
            match map.get(sid) {
                Some((_, Some(exp))) if *exp <= SystemTime::now() => {
                    map.remove(sid);
                    None
                }
                Some((json, _)) => Some(json.clone()),
                None => None,
            }
        };
        Box::pin(async move { found.map(|j| SessionData::from_json(&j)).transpose() })
    }

    fn set<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>> {
        self.sessions.lock().expect("poisoned").insert(sid.to_owned(), (data.to_json(), data.expires()));
        Box::pin(async { Ok(()) })
    }

    fn touch<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>> {
        if let Some(entry) = self.sessions.lock().expect("poisoned").get_mut(sid) {
            *entry = (data.to_json(), data.expires());
        }
        Box::pin(async { Ok(()) })
    }

    fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.sessions.lock().expect("poisoned").remove(sid);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(feature = "redis")]
pub use redis_store::RedisStore;

#[cfg(feature = "redis")]
mod redis_store {
    use redis::AsyncCommands;
    use redis::aio::ConnectionManager;

    use super::{BoxFuture, SessionStore, StoreError};
    use crate::data::SessionData;

    /// connect-redis's format: key `sess:<id>` (prefix configurable), value the session's JSON, `SET ... EX`
    /// with the seconds until `cookie.expires` (or 86400), `EXPIRE` on touch, `DEL` on destroy. A Node app
    /// using connect-redis and this store share sessions both ways. Reconnects on its own after Redis
    /// restarts; while Redis is down every call fails with [`StoreError::Backend`].
    #[derive(Clone)]
    pub struct RedisStore {
        conn: ConnectionManager,
        prefix: String,
        default_ttl: u64,
    }

    impl std::fmt::Debug for RedisStore {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("RedisStore").field("prefix", &self.prefix).finish_non_exhaustive()
        }
    }

    fn backend(e: redis::RedisError) -> StoreError {
        StoreError::Backend(e.to_string())
    }

    impl RedisStore {
        /// Connects to `url` (for example `redis://127.0.0.1:6379`) with connect-redis's defaults.
        pub async fn connect(url: &str) -> Result<Self, StoreError> {
            let client = redis::Client::open(url).map_err(backend)?;
            let conn = ConnectionManager::new(client).await.map_err(backend)?;
            Ok(RedisStore { conn, prefix: "sess:".into(), default_ttl: 86_400 })
        }

        /// Sets the key prefix (default `sess:`).
        pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
            self.prefix = prefix.into();
            self
        }

        /// Sets the TTL of sessions without `cookie.expires` (default 86400 s).
        pub fn with_default_ttl(mut self, secs: u64) -> Self {
            self.default_ttl = secs;
            self
        }

        fn key(&self, sid: &str) -> String {
            format!("{}{sid}", self.prefix)
        }
    }

    impl SessionStore for RedisStore {
        fn get<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<Option<SessionData>, StoreError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let raw: Option<String> = conn.get(self.key(sid)).await.map_err(backend)?;
                raw.map(|j| SessionData::from_json(&j)).transpose()
            })
        }

        fn set<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let ttl = data.ttl_secs(self.default_ttl);
                if ttl > 0 {
                    let _: () = conn.set_ex(self.key(sid), data.to_json(), ttl as u64).await.map_err(backend)?;
                } else {
                    let _: () = conn.del(self.key(sid)).await.map_err(backend)?;
                }
                Ok(())
            })
        }

        fn touch<'a>(&'a self, sid: &'a str, data: &'a SessionData) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let ttl = data.ttl_secs(self.default_ttl);
                let _: () = conn.expire(self.key(sid), ttl).await.map_err(backend)?;
                Ok(())
            })
        }

        fn destroy<'a>(&'a self, sid: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
            Box::pin(async move {
                let mut conn = self.conn.clone();
                let _: () = conn.del(self.key(sid)).await.map_err(backend)?;
                Ok(())
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::CookieSettings;

    #[tokio::test]
    async fn memory_store_expires_sessions() {
        let store = MemoryStore::default();
        let live = SessionData::new(&CookieSettings { max_age: Some(Duration::from_secs(60)), ..Default::default() });
        let mut dead = live.clone();
        if let Some(serde_json::Value::Object(c)) = dead.0.get_mut("cookie") {
            c.insert("expires".into(), "2000-01-01T00:00:00.000Z".into());
        }
        store.set("a", &live).await.unwrap();
        store.set("b", &dead).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Some(live));
        assert_eq!(store.get("b").await.unwrap(), None);
        store.set("b", &dead).await.unwrap();
        store.sweep(SystemTime::now());
        assert_eq!(store.len(), 1);
        store.destroy("a").await.unwrap();
        assert!(store.is_empty());
    }
}
