//! A session: its id, its data (express-session's JSON object, `cookie` included), and the store it lives in.

use std::sync::{Arc, Mutex};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::data::StoreError;
pub use crate::data::{CookieSettings, SessionData};
use crate::store::SessionStore;

struct Inner {
    id: String,
    store: Arc<dyn SessionStore>,
    data: Mutex<SessionData>,
}

/// A session handle: shared by every socket and request of the session on this server.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("id", &self.inner.id).field("data", &self.data()).finish()
    }
}

/// Errors of session operations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The session no longer exists in the store (destroyed, or expired).
    #[error("session not found (destroyed or expired)")]
    NotFound,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Session {
    pub(crate) fn new(id: String, data: SessionData, store: Arc<dyn SessionStore>) -> Self {
        Session { inner: Arc::new(Inner { id, store, data: Mutex::new(data) }) }
    }

    /// The session id (also the name of the room its sockets are in).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// A copy of the data.
    pub fn data(&self) -> SessionData {
        self.inner.data.lock().expect("poisoned").clone()
    }

    /// A member of the data.
    pub fn get(&self, key: &str) -> Option<Value> {
        self.inner.data.lock().expect("poisoned").0.get(key).cloned()
    }

    /// A member of the data, deserialized.
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.get(key).and_then(|v| serde_json::from_value(v).ok())
    }

    /// Sets a member (saved by [`Session::save`]).
    pub fn set(&self, key: &str, value: impl Serialize) {
        let v = serde_json::to_value(value).unwrap_or(Value::Null);
        self.inner.data.lock().expect("poisoned").0.insert(key.to_owned(), v);
    }

    /// Removes a member.
    pub fn remove(&self, key: &str) {
        self.inner.data.lock().expect("poisoned").0.remove(key);
    }

    /// Replaces the data with the store's, as express-session's `reload`: every holder of this handle sees
    /// the new data. `Err(NotFound)` if the store no longer has the session (destroyed, or expired: the
    /// store decides, see [`crate::SessionBridge::load`]).
    pub async fn reload(&self) -> Result<(), SessionError> {
        match self.inner.store.get(&self.inner.id).await? {
            Some(data) => {
                *self.inner.data.lock().expect("poisoned") = data;
                Ok(())
            }
            None => Err(SessionError::NotFound),
        }
    }

    /// Writes the data to the store.
    pub async fn save(&self) -> Result<(), SessionError> {
        let data = self.data();
        self.inner.store.set(&self.inner.id, &data).await?;
        Ok(())
    }

    /// Extends the expiry by the cookie's max age and tells the store.
    pub async fn touch(&self) -> Result<(), SessionError> {
        let data = {
            let mut d = self.inner.data.lock().expect("poisoned");
            d.refresh_expiry();
            d.clone()
        };
        self.inner.store.touch(&self.inner.id, &data).await?;
        Ok(())
    }

    /// Removes the session from the store.
    pub async fn destroy(&self) -> Result<(), SessionError> {
        self.inner.store.destroy(&self.inner.id).await?;
        Ok(())
    }
}
