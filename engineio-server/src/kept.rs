//! What a session keeps of its handshake request, for as long as it lives.
//!
//! The request line and the extensions are kept as they are; the headers are packed into one buffer of
//! their text instead of a `HeaderMap`, which costs about a hundred bytes per header slot (a browser's
//! handshake carries a dozen headers or more: some 2.5 KB per connection as a map, some 700 bytes packed).
//! The full request, a `request::Parts` with its `HeaderMap`, is rebuilt the first time it is asked for
//! and kept from then on: a server whose code never reads a session's headers never pays for them.

use std::sync::{Arc, OnceLock};

use http::header::{HeaderName, HeaderValue};
use http::{Extensions, HeaderMap, Request, request};

/// Ends a header's name in the packed buffer (a name never holds it).
const NAME_END: u8 = b':';
/// Starts the value of a header marked sensitive (a value never holds a control byte but tab).
const SENSITIVE: u8 = 0x01;
/// Ends a header's value (a value never holds it).
const VALUE_END: u8 = b'\n';

pub(crate) struct KeptRequest {
    /// The request without its headers (an empty `HeaderMap` allocates nothing).
    head: request::Parts,
    /// `name:value\n` for each header in the map's order; a sensitive value starts with [`SENSITIVE`].
    headers: Box<[u8]>,
    full: OnceLock<Arc<request::Parts>>,
}

impl KeptRequest {
    /// Keeps what a session needs of `parts`, copied out of any shared buffer (hyper hands out the URI and
    /// header values as slices of the connection's read buffer, which would otherwise stay allocated).
    pub(crate) fn new(parts: &request::Parts) -> Self {
        let (mut head, ()) = Request::new(()).into_parts();
        head.method = parts.method.clone();
        head.uri = parts.uri.to_string().parse().unwrap_or_else(|_| parts.uri.clone());
        head.version = parts.version;
        head.extensions = parts.extensions.clone();
        let size = parts.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 3).sum();
        let mut headers = Vec::with_capacity(size);
        for (name, value) in &parts.headers {
            headers.extend_from_slice(name.as_str().as_bytes());
            headers.push(NAME_END);
            if value.is_sensitive() {
                headers.push(SENSITIVE);
            }
            headers.extend_from_slice(value.as_bytes());
            headers.push(VALUE_END);
        }
        KeptRequest { head, headers: headers.into_boxed_slice(), full: OnceLock::new() }
    }

    /// The request's extensions, without rebuilding the request.
    pub(crate) fn extensions(&self) -> &Extensions {
        &self.head.extensions
    }

    /// The full request, rebuilt on first use.
    pub(crate) fn parts(&self) -> &Arc<request::Parts> {
        self.full.get_or_init(|| {
            let mut parts = self.head.clone();
            parts.headers = self.header_map();
            Arc::new(parts)
        })
    }

    fn header_map(&self) -> HeaderMap {
        let lines = self.headers.split(|&b| b == VALUE_END).filter(|l| !l.is_empty());
        let mut map = HeaderMap::with_capacity(self.headers.iter().filter(|&&b| b == VALUE_END).count());
        for line in lines {
            let Some(colon) = line.iter().position(|&b| b == NAME_END) else { continue };
            let (name, value) = (&line[..colon], &line[colon + 1..]);
            let (sensitive, value) = match value.split_first() {
                Some((&SENSITIVE, rest)) => (true, rest),
                _ => (false, value),
            };
            // Both were valid when packed, so these do not fail.
            let (Ok(name), Ok(mut value)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
                continue;
            };
            value.set_sensitive(sensitive);
            map.append(name, value);
        }
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Tag(&'static str);

    #[test]
    fn the_rebuilt_request_is_the_one_kept() {
        let mut cookie = HeaderValue::from_static("sid=abc; theme=dark");
        cookie.set_sensitive(true);
        let request = Request::get("/socket.io/?EIO=4&transport=websocket&x=%C3%A9")
            .header("host", "example.com:3000")
            .header("x-many", "one")
            .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36")
            .header("x-many", "two: with a colon")
            .header("cookie", cookie)
            .header("x-empty", "")
            .header("x-obs", HeaderValue::from_bytes(b"caf\xe9\tok").unwrap())
            .extension(Tag("from a middleware"))
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let kept = KeptRequest::new(&parts);
        assert_eq!(kept.extensions().get::<Tag>(), Some(&Tag("from a middleware")));
        assert!(kept.full.get().is_none(), "nothing is rebuilt until asked for");
        let rebuilt = kept.parts();
        assert_eq!(rebuilt.method, parts.method);
        assert_eq!(rebuilt.uri, parts.uri);
        assert_eq!(rebuilt.version, parts.version);
        assert_eq!(rebuilt.extensions.get::<Tag>(), Some(&Tag("from a middleware")));
        let pairs = |m: &HeaderMap| -> Vec<(String, Vec<u8>, bool)> {
            m.iter().map(|(n, v)| (n.to_string(), v.as_bytes().to_vec(), v.is_sensitive())).collect()
        };
        assert_eq!(pairs(&rebuilt.headers), pairs(&parts.headers));
        assert_eq!(rebuilt.headers.get_all("x-many").iter().count(), 2);
        assert!(rebuilt.headers["cookie"].is_sensitive());
        assert!(Arc::ptr_eq(rebuilt, kept.parts()), "rebuilt once");
    }

    /// Kept boxed by every session: at most 256 bytes keeps it in jemalloc's 256-byte class, where the
    /// `Arc<request::Parts>` it replaced was (without its `HeaderMap`'s allocations).
    #[test]
    fn a_kept_request_stays_in_the_256_byte_class() {
        let size = std::mem::size_of::<KeptRequest>();
        assert!(size <= 256, "{size}");
    }

    #[test]
    fn a_request_without_headers_keeps_an_empty_buffer() {
        let (parts, ()) = Request::get("/socket.io/?EIO=4").body(()).unwrap().into_parts();
        let kept = KeptRequest::new(&parts);
        assert!(kept.headers.is_empty());
        assert!(kept.parts().headers.is_empty());
    }
}
