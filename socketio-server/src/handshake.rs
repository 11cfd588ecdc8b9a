//! What a socket knows of the request that opened its connection, as the reference's `socket.handshake`.

use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use http::request;
use serde::{Deserialize, Serialize};
use socketio_proto::Value;

/// The handshake of a socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handshake {
    /// Request headers (lower-case names; repeated headers joined with `, `).
    pub headers: HashMap<String, String>,
    /// When the connection was made, as a date string.
    pub time: String,
    /// The client's address.
    pub address: String,
    /// Whether the request was cross-origin (it carried an `Origin`).
    pub xdomain: bool,
    /// Whether the connection is over TLS.
    pub secure: bool,
    /// When the connection was made, in milliseconds since the epoch.
    pub issued: u64,
    /// The request URL (path and query).
    pub url: String,
    /// The query parameters, percent-decoded (`+` read as a space); for a repeated key, the last value.
    pub query: HashMap<String, String>,
    /// The CONNECT packet's auth payload (an empty object when none was sent).
    pub auth: Value,
}

impl Handshake {
    /// The handshake of a connection made at `at`.
    pub(crate) fn new(req: &request::Parts, auth: Value, at: SystemTime) -> Self {
        let mut headers: HashMap<String, String> = HashMap::new();
        for (name, value) in &req.headers {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            headers
                .entry(name.as_str().to_owned())
                .and_modify(|e| {
                    e.push_str(", ");
                    e.push_str(&v);
                })
                .or_insert(v);
        }
        // Decoded as the reference's `URLSearchParams` (`+` is a space, `%XX` decoded); for a repeated key
        // the last value wins, as when the reference turns the pairs into an object.
        let query = engineio_proto::handshake::query_pairs(req.uri.query().unwrap_or(""))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let now = at;
        let issued = now.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let address =
            req.extensions.get::<engineio_server::RemoteAddr>().map(|a| a.0.ip().to_string()).unwrap_or_default();
        Handshake {
            xdomain: req.headers.contains_key(http::header::ORIGIN),
            secure: req.uri.scheme_str() == Some("https"),
            time: httpdate(now),
            address,
            issued,
            url: req.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default(),
            query,
            headers,
            auth,
        }
    }
}

fn httpdate(t: SystemTime) -> String {
    // The reference uses `new Date().toString()`; an RFC 7231 date carries the same information.
    let secs = t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = secs / 86400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = socketio_proto::date::civil_from_days(days as i64);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][(mo - 1) as usize];
    format!("{wd}, {d:02} {mon} {y} {h:02}:{m:02}:{s:02} GMT")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_decoded_as_the_reference_does() {
        let req =
            http::Request::get("/socket.io/?EIO=4&transport=polling&token=%26a&room=f%20g&x=a+b&dup=1&dup=2&bad=%zz")
                .body(())
                .unwrap()
                .into_parts()
                .0;
        let h = Handshake::new(&req, Value::Null, UNIX_EPOCH);
        assert_eq!(h.query["token"], "&a");
        assert_eq!(h.query["room"], "f g");
        assert_eq!(h.query["x"], "a b");
        assert_eq!(h.query["dup"], "2");
        assert_eq!(h.query["bad"], "%zz");
        assert_eq!(h.query["EIO"], "4");
        assert_eq!(h.url, "/socket.io/?EIO=4&transport=polling&token=%26a&room=f%20g&x=a+b&dup=1&dup=2&bad=%zz");
    }

    #[test]
    fn dates() {
        assert_eq!(httpdate(UNIX_EPOCH), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(
            httpdate(UNIX_EPOCH + std::time::Duration::from_secs(1_795_000_000)),
            "Wed, 18 Nov 2026 11:06:40 GMT"
        );
    }
}
