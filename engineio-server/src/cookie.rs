//! The Engine.IO `io` cookie, set on the polling handshake so a load balancer can keep a session on one
//! node (cookie-based sticky sessions).
//!
//! Off by default, as in the reference. [`CookieOptions::default`] gives the reference's defaults when the
//! option is `true`: `io=<sid>; Path=/; HttpOnly; SameSite=Lax`. Serialization is the `cookie` crate's;
//! the value is percent-encoded as the reference's `encodeURIComponent`.

use std::time::{Duration, SystemTime};

use cookie::Cookie;
pub use cookie::SameSite;

/// Every attribute of the `io` cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CookieOptions {
    /// The cookie name (default `io`).
    pub name: String,
    /// `Path` (default `/`); `None` omits the attribute.
    pub path: Option<String>,
    /// `Domain`.
    pub domain: Option<String>,
    /// `HttpOnly` (default true).
    pub http_only: bool,
    /// `Secure` (default false). `SameSite=None` requires it in browsers: set both.
    pub secure: bool,
    /// `SameSite` (default `Lax`); `None` here omits the attribute (not to be confused with
    /// `SameSite::None`, which writes `SameSite=None`).
    pub same_site: Option<SameSite>,
    /// `Max-Age`, in whole seconds.
    pub max_age: Option<Duration>,
    /// `Expires`.
    pub expires: Option<SystemTime>,
    /// `Partitioned` (CHIPS).
    pub partitioned: bool,
}

impl Default for CookieOptions {
    fn default() -> Self {
        Self {
            name: "io".into(),
            path: Some("/".into()),
            domain: None,
            http_only: true,
            secure: false,
            same_site: Some(SameSite::Lax),
            max_age: None,
            expires: None,
            partitioned: false,
        }
    }
}

impl CookieOptions {
    /// The `Set-Cookie` value for a session ID.
    pub fn serialize(&self, value: &str) -> String {
        let mut c = Cookie::new(self.name.clone(), value.to_owned());
        if let Some(path) = &self.path {
            c.set_path(path.clone());
        }
        if let Some(domain) = &self.domain {
            c.set_domain(domain.clone());
        }
        if self.http_only {
            c.set_http_only(true);
        }
        if self.secure {
            c.set_secure(true);
        }
        c.set_same_site(self.same_site);
        if let Some(max_age) = self.max_age {
            c.set_max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64));
        }
        if let Some(expires) = self.expires {
            c.set_expires(cookie::time::OffsetDateTime::from(expires));
        }
        if self.partitioned {
            c.set_partitioned(true);
        }
        c.encoded().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_defaults() {
        assert_eq!(CookieOptions::default().serialize("abc"), "io=abc; HttpOnly; SameSite=Lax; Path=/");
    }

    #[test]
    fn every_attribute() {
        let opts = CookieOptions {
            name: "sticky".into(),
            path: Some("/rt".into()),
            domain: Some("example.com".into()),
            http_only: false,
            secure: true,
            same_site: Some(SameSite::None),
            max_age: Some(Duration::from_secs(3600)),
            expires: Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)),
            partitioned: true,
        };
        let s = opts.serialize("a b");
        for part in [
            "sticky=a%20b",
            "SameSite=None",
            "Secure",
            "Partitioned",
            "Path=/rt",
            "Domain=example.com",
            "Max-Age=3600",
            "Expires=Fri, 15 Jan 2027 08:00:00 GMT",
        ] {
            assert!(s.split("; ").any(|p| p == part), "{part} missing from {s}");
        }
        assert!(!s.contains("HttpOnly"));
        let no_path = CookieOptions { path: None, same_site: None, ..CookieOptions::default() };
        assert_eq!(no_path.serialize("x"), "io=x; HttpOnly");
    }
}
