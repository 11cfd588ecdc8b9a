//! What a store keeps: a session's data in express-session's form ([`SessionData`], its `cookie` object
//! included), the session cookie's attributes ([`CookieSettings`]), and [`StoreError`]. A leaf below the
//! stores and the session handle.

use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use crate::time::{from_iso, to_iso};

/// A store failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend failed (connection lost, command refused).
    #[error("session store backend: {0}")]
    Backend(String),
    /// A stored value is not a session.
    #[error("stored session is malformed: {0}")]
    Format(String),
}

/// The stored form of a session: a JSON object whose `cookie` member describes the cookie (and so the
/// expiry), as express-session stores it. Everything else is the application's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SessionData(pub Map<String, Value>);

impl SessionData {
    /// New data with a cookie object: `max_age` (None: a browser-session cookie), `path`, `httpOnly`, ...
    pub fn new(cookie: &CookieSettings) -> Self {
        let mut c = Map::new();
        let expires = cookie.max_age.map(|d| SystemTime::now() + d);
        c.insert("originalMaxAge".into(), cookie.max_age.map_or(Value::Null, |d| Value::from(d.as_millis() as u64)));
        c.insert("expires".into(), expires.map_or(Value::Null, |t| Value::from(to_iso(t))));
        if cookie.secure {
            c.insert("secure".into(), Value::Bool(true));
        }
        c.insert("httpOnly".into(), Value::Bool(cookie.http_only));
        if let Some(d) = &cookie.domain {
            c.insert("domain".into(), Value::from(d.clone()));
        }
        c.insert("path".into(), Value::from(cookie.path.clone()));
        if let Some(s) = cookie.same_site {
            c.insert("sameSite".into(), Value::from(same_site_str(s)));
        }
        let mut data = Map::new();
        data.insert("cookie".into(), Value::Object(c));
        SessionData(data)
    }

    /// Parses the stored JSON text.
    pub fn from_json(text: &str) -> Result<Self, StoreError> {
        match serde_json::from_str(text).map_err(|e| StoreError::Format(e.to_string()))? {
            Value::Object(m) => Ok(SessionData(m)),
            _ => Err(StoreError::Format("a session is a JSON object".into())),
        }
    }

    /// The JSON text to store.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("a JSON map always serializes")
    }

    /// When the cookie expires (`cookie.expires`), if it does.
    pub fn expires(&self) -> Option<SystemTime> {
        self.0.get("cookie")?.get("expires")?.as_str().and_then(from_iso)
    }

    /// Whether the session has expired at `now`.
    pub fn is_expired_at(&self, now: SystemTime) -> bool {
        self.expires().is_some_and(|e| e <= now)
    }

    /// Moves `cookie.expires` to now + `cookie.originalMaxAge` (express-session's `touch`/rolling).
    pub fn refresh_expiry(&mut self) {
        let Some(Value::Object(cookie)) = self.0.get_mut("cookie") else { return };
        if let Some(ms) = cookie.get("originalMaxAge").and_then(Value::as_u64) {
            cookie.insert("expires".into(), Value::from(to_iso(SystemTime::now() + Duration::from_millis(ms))));
        }
    }

    /// The seconds a store should keep this session: until `cookie.expires` (rounded up), or `default`.
    pub fn ttl_secs(&self, default: u64) -> i64 {
        match self.expires() {
            Some(e) => match e.duration_since(SystemTime::now()) {
                Ok(d) => d.as_millis().div_ceil(1000) as i64,
                Err(_) => 0,
            },
            None => default as i64,
        }
    }
}

fn same_site_str(s: cookie::SameSite) -> &'static str {
    match s {
        cookie::SameSite::Strict => "strict",
        cookie::SameSite::Lax => "lax",
        cookie::SameSite::None => "none",
    }
}

/// The attributes of the session cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieSettings {
    /// The cookie name (default `connect.sid`).
    pub name: String,
    /// `Path` (default `/`).
    pub path: String,
    /// `Domain`.
    pub domain: Option<String>,
    /// `HttpOnly` (default true).
    pub http_only: bool,
    /// `Secure` (default false; forced on by `SameSite=None`).
    pub secure: bool,
    /// `SameSite` (default none set, as express-session).
    pub same_site: Option<cookie::SameSite>,
    /// `Max-Age`/`Expires` (default: a browser-session cookie).
    pub max_age: Option<Duration>,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            name: "connect.sid".into(),
            path: "/".into(),
            domain: None,
            http_only: true,
            secure: false,
            same_site: None,
            max_age: None,
        }
    }
}

impl CookieSettings {
    /// The `Set-Cookie` value for a session id signed with `secret` (`SameSite=None` forces `Secure`).
    pub fn set_cookie(&self, sid: &str, secret: &str) -> String {
        let mut c = cookie::Cookie::new(self.name.clone(), crate::signature::cookie_value(sid, secret));
        c.set_path(self.path.clone());
        if let Some(age) = self.max_age {
            c.set_expires(cookie::time::OffsetDateTime::from(SystemTime::now() + age));
        }
        if let Some(d) = &self.domain {
            c.set_domain(d.clone());
        }
        c.set_http_only(self.http_only);
        c.set_secure(self.secure || self.same_site == Some(cookie::SameSite::None));
        c.set_same_site(self.same_site);
        // The value is already URI-encoded: write it as it is.
        c.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_data_has_the_express_cookie_shape() {
        let settings = CookieSettings {
            max_age: Some(Duration::from_secs(3600)),
            same_site: Some(cookie::SameSite::Lax),
            ..CookieSettings::default()
        };
        let d = SessionData::new(&settings);
        let json = d.to_json();
        assert!(json.starts_with(r#"{"cookie":{"originalMaxAge":3600000,"expires":""#), "{json}");
        assert!(json.ends_with(r#"Z","httpOnly":true,"path":"/","sameSite":"lax"}}"#), "{json}");
        let ttl = d.ttl_secs(86400);
        assert!((3599..=3600).contains(&ttl), "{ttl}");
        assert_eq!(SessionData::new(&CookieSettings::default()).ttl_secs(86400), 86400);
    }

    #[test]
    fn set_cookie_header() {
        let s = CookieSettings { same_site: Some(cookie::SameSite::None), ..CookieSettings::default() };
        let v = s.set_cookie("abc", "secret");
        assert!(v.starts_with("connect.sid=s%3Aabc."), "{v}");
        let attrs: Vec<&str> = v.split("; ").skip(1).collect();
        for a in ["Path=/", "HttpOnly", "Secure", "SameSite=None"] {
            assert!(attrs.contains(&a), "{a} missing (SameSite=None forces Secure): {v}");
        }
        let s = CookieSettings { max_age: Some(Duration::from_secs(60)), ..CookieSettings::default() };
        let v = s.set_cookie("abc", "secret");
        assert!(v.split("; ").any(|a| a.starts_with("Expires=") && a.ends_with(" GMT")), "{v}");
        assert!(!v.contains("Secure"));
    }
}
