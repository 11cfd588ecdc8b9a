//! CORS for the Engine.IO endpoint, with the behaviour of the npm `cors` middleware that the reference
//! server uses, plus an Origin check that also guards the WebSocket upgrade.
//!
//! With an allow-list or a predicate, a request whose `Origin` header is not allowed is refused (polling:
//! `400 {"code":3,"message":"Bad request"}`; WebSocket: a plain 400 before any 101), which stops
//! cross-site WebSocket hijacking: browsers do not apply CORS to WebSockets, so the server has to look.
//! Requests without an `Origin` (non-browser clients) are not affected.

use std::sync::Arc;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, request};

/// Which origins may use the endpoint.
#[derive(Clone, Default)]
pub enum CorsOrigin {
    /// Any origin: `Access-Control-Allow-Origin: *`, or the request's origin when credentials are on
    /// (browsers refuse `*` with credentials).
    #[default]
    Any,
    /// Any origin, always answered with the request's own origin.
    Mirror,
    /// Exactly these origins (for example `https://app.example.com`).
    List(Vec<String>),
    /// Origins for which the predicate returns true.
    Predicate(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl std::fmt::Debug for CorsOrigin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorsOrigin::Any => f.write_str("Any"),
            CorsOrigin::Mirror => f.write_str("Mirror"),
            CorsOrigin::List(l) => f.debug_tuple("List").field(l).finish(),
            CorsOrigin::Predicate(_) => f.write_str("Predicate(..)"),
        }
    }
}

/// CORS settings; the defaults are the `cors` package's.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct CorsOptions {
    /// Allowed origins.
    pub origin: CorsOrigin,
    /// `Access-Control-Allow-Credentials: true`, so the browser sends and keeps cookies.
    pub credentials: bool,
    /// `Access-Control-Allow-Methods` on preflight (default `GET,HEAD,PUT,PATCH,POST,DELETE`).
    pub methods: Vec<Method>,
    /// `Access-Control-Allow-Headers` on preflight; `None` reflects the request's
    /// `Access-Control-Request-Headers`.
    pub allowed_headers: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers`.
    pub exposed_headers: Vec<String>,
    /// `Access-Control-Max-Age` on preflight.
    pub max_age: Option<Duration>,
}

impl Default for CorsOptions {
    fn default() -> Self {
        Self {
            origin: CorsOrigin::Any,
            credentials: false,
            methods: vec![Method::GET, Method::HEAD, Method::PUT, Method::PATCH, Method::POST, Method::DELETE],
            allowed_headers: None,
            exposed_headers: Vec::new(),
            max_age: None,
        }
    }
}

impl CorsOptions {
    /// CORS for exactly these origins, with credentials.
    pub fn with_credentials<I: IntoIterator<Item = S>, S: Into<String>>(origins: I) -> Self {
        Self {
            origin: CorsOrigin::List(origins.into_iter().map(Into::into).collect()),
            credentials: true,
            ..Self::default()
        }
    }

    /// Whether a request with this `Origin` header may go on. Requests without one always may.
    pub fn origin_allowed(&self, origin: Option<&HeaderValue>) -> bool {
        let Some(origin) = origin else { return true };
        match &self.origin {
            CorsOrigin::Any | CorsOrigin::Mirror => true,
            CorsOrigin::List(list) => origin.to_str().is_ok_and(|o| list.iter().any(|a| a == o)),
            CorsOrigin::Predicate(f) => origin.to_str().is_ok_and(|o| f(o)),
        }
    }

    /// Adds the CORS headers of an actual (non-preflight) response.
    pub fn apply(&self, req: &request::Parts, headers: &mut HeaderMap) {
        self.allow_origin(req, headers);
        if self.credentials {
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
        if !self.exposed_headers.is_empty()
            && let Ok(v) = HeaderValue::from_str(&self.exposed_headers.join(","))
        {
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, v);
        }
    }

    /// Adds the headers of a preflight (`OPTIONS`) response, answered with 204.
    pub fn apply_preflight(&self, req: &request::Parts, headers: &mut HeaderMap) {
        self.apply(req, headers);
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        if let Ok(v) = HeaderValue::from_str(&methods.join(",")) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, v);
        }
        match &self.allowed_headers {
            Some(list) => {
                if let Ok(v) = HeaderValue::from_str(&list.join(",")) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v);
                }
            }
            None => {
                if let Some(v) = req.headers.get(header::ACCESS_CONTROL_REQUEST_HEADERS) {
                    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, v.clone());
                    headers.append(header::VARY, HeaderValue::from_static("Access-Control-Request-Headers"));
                }
            }
        }
        if let Some(age) = self.max_age {
            headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age.as_secs()));
        }
    }

    fn allow_origin(&self, req: &request::Parts, headers: &mut HeaderMap) {
        let origin = req.headers.get(header::ORIGIN);
        let reflect = match &self.origin {
            CorsOrigin::Any if !self.credentials => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
                return;
            }
            CorsOrigin::Any | CorsOrigin::Mirror => origin.is_some(),
            CorsOrigin::List(_) | CorsOrigin::Predicate(_) => origin.is_some() && self.origin_allowed(origin),
        };
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if reflect && let Some(o) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, o.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(origin: Option<&str>) -> request::Parts {
        let mut b = http::Request::builder().uri("/engine.io/");
        if let Some(o) = origin {
            b = b.header("origin", o);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn any_origin_is_a_star_without_credentials() {
        let mut h = HeaderMap::new();
        CorsOptions::default().apply(&parts(Some("https://a.example")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "*");
        assert!(h.get("access-control-allow-credentials").is_none());
    }

    #[test]
    fn credentials_reflect_the_allowed_origin() {
        let cors = CorsOptions::with_credentials(["https://a.example"]);
        let mut h = HeaderMap::new();
        cors.apply(&parts(Some("https://a.example")), &mut h);
        assert_eq!(h["access-control-allow-origin"], "https://a.example");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["vary"], "Origin");
        let mut h = HeaderMap::new();
        cors.apply(&parts(Some("https://evil.example")), &mut h);
        assert!(h.get("access-control-allow-origin").is_none());
        assert!(!cors.origin_allowed(Some(&HeaderValue::from_static("https://evil.example"))));
        assert!(cors.origin_allowed(None));
    }

    #[test]
    fn preflight_lists_methods_and_reflects_headers() {
        let cors = CorsOptions { max_age: Some(Duration::from_secs(600)), ..CorsOptions::default() };
        let mut req = parts(Some("https://a.example"));
        req.headers.insert("access-control-request-headers", HeaderValue::from_static("x-token"));
        let mut h = HeaderMap::new();
        cors.apply_preflight(&req, &mut h);
        assert_eq!(h["access-control-allow-methods"], "GET,HEAD,PUT,PATCH,POST,DELETE");
        assert_eq!(h["access-control-allow-headers"], "x-token");
        assert_eq!(h["access-control-max-age"], "600");
    }

    #[test]
    fn predicate_origins() {
        let cors = CorsOptions {
            origin: CorsOrigin::Predicate(Arc::new(|o| o.ends_with(".example.com"))),
            ..CorsOptions::default()
        };
        assert!(cors.origin_allowed(Some(&HeaderValue::from_static("https://app.example.com"))));
        assert!(!cors.origin_allowed(Some(&HeaderValue::from_static("https://example.org"))));
    }
}
