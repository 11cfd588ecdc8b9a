//! Socket.IO v5 packets and their text encoding (the default parser).
//!
//! Protocol description, section "Packet encoding": `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`.
//! The namespace is written only when it is not `/`; binary packets (types 5 and 6) carry the number of
//! binary attachments that follow as separate Engine.IO binary messages, with
//! `{"_placeholder":true,"num":N}` in the JSON where each one belongs.
//!
//! The decoder accepts what the reference parser accepts and checks the payload shape per type as it does:
//! CONNECT carries an object (or nothing), DISCONNECT nothing, CONNECT_ERROR a string or an object, EVENT a
//! non-empty array starting with a string that is not a reserved event name (or a number), ACK an array.

use bytes::Bytes;

use crate::error::DecodeError;
use crate::json::write_string;
use crate::value::Value;

/// The packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `0`: join a namespace (client) / accepted (server).
    Connect = 0,
    /// `1`: leave a namespace.
    Disconnect = 1,
    /// `2`: an event.
    Event = 2,
    /// `3`: an acknowledgement.
    Ack = 3,
    /// `4`: joining a namespace was refused.
    ConnectError = 4,
    /// `5`: an event with binary attachments.
    BinaryEvent = 5,
    /// `6`: an acknowledgement with binary attachments.
    BinaryAck = 6,
}

impl PacketType {
    fn from_digit(c: u8) -> Option<Self> {
        Some(match c {
            b'0' => PacketType::Connect,
            b'1' => PacketType::Disconnect,
            b'2' => PacketType::Event,
            b'3' => PacketType::Ack,
            b'4' => PacketType::ConnectError,
            b'5' => PacketType::BinaryEvent,
            b'6' => PacketType::BinaryAck,
            _ => return None,
        })
    }

    /// Whether packets of this type carry binary attachments.
    pub fn is_binary(self) -> bool {
        matches!(self, PacketType::BinaryEvent | PacketType::BinaryAck)
    }

    /// The type without its binary marker: EVENT for BINARY_EVENT, ACK for BINARY_ACK. Decoders return
    /// packets with this type once the attachments are in place, so a match on a decoded packet needs no
    /// `Event | BinaryEvent`.
    pub fn plain(self) -> Self {
        match self {
            PacketType::BinaryEvent => PacketType::Event,
            PacketType::BinaryAck => PacketType::Ack,
            k => k,
        }
    }
}

/// Event names the reference refuses to receive (they are the server's own events).
pub const RESERVED_EVENTS: &[&str] =
    &["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"];

/// One Socket.IO packet, with binary values in place (not as placeholders).
///
/// Whether it goes out as EVENT or BINARY_EVENT (ACK or BINARY_ACK) is decided when it is encoded, from
/// whether its data holds binary; `kind` may be given as either.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// The type.
    pub kind: PacketType,
    /// The namespace, `/` by default.
    pub nsp: String,
    /// The acknowledgement id.
    pub id: Option<u64>,
    /// The data: the CONNECT auth or reply object, the event array `[name, ...args]`, the ack arguments,
    /// the CONNECT_ERROR object; `None` when absent.
    pub data: Option<Value>,
}

impl Packet {
    /// A CONNECT packet with optional data.
    pub fn connect(nsp: impl Into<String>, data: Option<Value>) -> Self {
        Packet { kind: PacketType::Connect, nsp: nsp.into(), id: None, data }
    }

    /// A DISCONNECT packet.
    pub fn disconnect(nsp: impl Into<String>) -> Self {
        Packet { kind: PacketType::Disconnect, nsp: nsp.into(), id: None, data: None }
    }

    /// An EVENT packet: `[event, ...args]`.
    pub fn event(nsp: impl Into<String>, event: &str, args: Vec<Value>, id: Option<u64>) -> Self {
        let mut data = Vec::with_capacity(args.len() + 1);
        data.push(Value::from(event));
        data.extend(args);
        Packet { kind: PacketType::Event, nsp: nsp.into(), id, data: Some(Value::Array(data)) }
    }

    /// An ACK packet with these arguments.
    pub fn ack(nsp: impl Into<String>, id: u64, args: Vec<Value>) -> Self {
        Packet { kind: PacketType::Ack, nsp: nsp.into(), id: Some(id), data: Some(Value::Array(args)) }
    }

    /// A CONNECT_ERROR packet `{"message": ..., "data"?: ...}`.
    pub fn connect_error(nsp: impl Into<String>, message: &str, data: Option<Value>) -> Self {
        let mut o = crate::value::Map::new();
        o.insert("message".into(), Value::from(message));
        if let Some(d) = data {
            o.insert("data".into(), d);
        }
        Packet { kind: PacketType::ConnectError, nsp: nsp.into(), id: None, data: Some(Value::Object(o)) }
    }

    /// The event name of an EVENT packet.
    pub fn event_name(&self) -> Option<&str> {
        match (&self.kind, &self.data) {
            (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => a.first()?.as_str(),
            _ => None,
        }
    }

    /// Takes an EVENT packet apart: its name (a numeric name as its decimal text) and its arguments,
    /// without copying them. `None` for other packets or an event without a name.
    pub fn into_event(self) -> Option<(String, Vec<Value>)> {
        if self.kind.plain() != PacketType::Event {
            return None;
        }
        let Some(Value::Array(mut data)) = self.data else { return None };
        if !matches!(data.first(), Some(Value::String(_) | Value::Number(_))) {
            return None;
        }
        let name = match data.remove(0) {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        Some((name, data))
    }

    /// The arguments of an ACK packet, without copying them. `None` for other packets.
    pub fn into_ack_args(self) -> Option<Vec<Value>> {
        if self.kind.plain() != PacketType::Ack {
            return None;
        }
        match self.data {
            Some(Value::Array(a)) => Some(a),
            _ => Some(Vec::new()),
        }
    }

    /// Encodes as the text part and the binary attachments of the default parser.
    pub fn encode_text(&self) -> (String, Vec<Bytes>) {
        let mut out = String::with_capacity(self.text_size_hint());
        let mut attachments = Vec::new();
        self.write_text(&mut out, &mut attachments);
        (out, attachments)
    }

    /// Appends the text part of this packet to `out` (the binary attachments go to `attachments`).
    pub fn write_text(&self, out: &mut String, attachments: &mut Vec<Bytes>) {
        let body = match &self.data {
            Some(d) => Body::Value(d),
            None => Body::None,
        };
        write_packet_text(out, self.kind, &self.nsp, self.id, body, attachments);
    }

    /// About how many bytes the text part takes (enough for most packets without binary).
    pub fn text_size_hint(&self) -> usize {
        HEADER_SIZE_HINT + self.nsp.len() + self.data.as_ref().map_or(0, Value::size_hint)
    }
}

/// Room for the type digit, an attachment count, the namespace's comma and an ack id.
const HEADER_SIZE_HINT: usize = 24;

/// An EVENT or ACK packet given by its parts (see [`write_args_text`] and
/// [`Parser::encode_args`](crate::Parser::encode_args)): what an emit or an acknowledgement sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgsPacket<'a> {
    /// An EVENT `[name, ...args]`, with an ack id if the sender waits for an acknowledgement.
    Event {
        /// The event name.
        name: &'a str,
        /// The acknowledgement id.
        ack_id: Option<u64>,
    },
    /// An ACK `[...args]` answering the ack id.
    Ack {
        /// The acknowledgement id being answered.
        id: u64,
    },
}

impl ArgsPacket<'_> {
    /// The same packet as a [`Packet`] (copying the arguments).
    pub fn to_packet(self, nsp: &str, args: &[Value]) -> Packet {
        match self {
            ArgsPacket::Event { name, ack_id } => Packet::event(nsp, name, args.to_vec(), ack_id),
            ArgsPacket::Ack { id } => Packet::ack(nsp, id, args.to_vec()),
        }
    }

    /// About how many bytes the text part of this packet takes.
    pub fn text_size_hint(self, nsp: &str, args: &[Value]) -> usize {
        let name = match self {
            ArgsPacket::Event { name, .. } => name.len() + 3,
            ArgsPacket::Ack { .. } => 0,
        };
        HEADER_SIZE_HINT + nsp.len() + name + 2 + args.iter().map(|a| a.size_hint() + 1).sum::<usize>()
    }
}

/// Appends the text part of an EVENT or ACK packet built from its parts to `out`, exactly as
/// [`Packet::write_text`] would write the equivalent [`Packet`] (binary arguments go to `attachments`,
/// and the packet becomes BINARY_EVENT / BINARY_ACK).
pub fn write_args_text(
    out: &mut String,
    nsp: &str,
    packet: ArgsPacket<'_>,
    args: &[Value],
    attachments: &mut Vec<Bytes>,
) {
    let (kind, id, head) = match packet {
        ArgsPacket::Event { name, ack_id } => (PacketType::Event, ack_id, Some(name)),
        ArgsPacket::Ack { id } => (PacketType::Ack, Some(id), None),
    };
    write_packet_text(out, kind, nsp, id, Body::Args { head, args }, attachments);
}

/// The data of a packet being written.
enum Body<'a> {
    None,
    Value(&'a Value),
    /// An array: an optional event name, then the arguments.
    Args {
        head: Option<&'a str>,
        args: &'a [Value],
    },
}

/// `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`. The header is written for a packet without
/// binary first; if the data turned out to hold some, the type becomes the binary one and the attachment
/// count goes in after it (a rare case, paid for with one shift of the text).
fn write_packet_text(
    out: &mut String,
    kind: PacketType,
    nsp: &str,
    id: Option<u64>,
    body: Body<'_>,
    attachments: &mut Vec<Bytes>,
) {
    let start = out.len();
    let (kind, carries_binary) = match kind {
        PacketType::Event | PacketType::BinaryEvent => (PacketType::Event, true),
        PacketType::Ack | PacketType::BinaryAck => (PacketType::Ack, true),
        k => (k, false),
    };
    out.push(char::from(b'0' + kind as u8));
    if nsp != "/" && !nsp.is_empty() {
        out.push_str(nsp);
        out.push(',');
    }
    if let Some(id) = id {
        write_u64(id, out);
    }
    let before = attachments.len();
    match body {
        Body::None => {}
        Body::Value(d) if carries_binary => d.write_json(out, attachments),
        Body::Value(d) => d.write_json_inline(out),
        Body::Args { head, args } => {
            out.push('[');
            if let Some(name) = head {
                write_string(name, out);
            }
            for (i, a) in args.iter().enumerate() {
                if i > 0 || head.is_some() {
                    out.push(',');
                }
                if carries_binary {
                    a.write_json(out, attachments);
                } else {
                    a.write_json_inline(out);
                }
            }
            out.push(']');
        }
    }
    let count = attachments.len() - before;
    if count > 0 {
        let binary = if kind == PacketType::Event { PacketType::BinaryEvent } else { PacketType::BinaryAck };
        let mut head = String::with_capacity(4);
        head.push(char::from(b'0' + binary as u8));
        write_u64(count as u64, &mut head);
        head.push('-');
        out.replace_range(start..start + 1, &head);
    }
}

/// Writes an integer in decimal without going through `fmt`.
pub(crate) fn write_u64(mut n: u64, out: &mut String) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &buf[i..] {
        out.push(char::from(d));
    }
}

/// The text part of a packet, decoded: the packet with placeholders still in its data, and the number of
/// attachments still to come.
#[derive(Debug, Clone, PartialEq)]
pub struct TextPart {
    /// The packet, its data still holding placeholder objects if `attachments > 0`.
    pub packet: Packet,
    /// How many binary attachments follow.
    pub attachments: usize,
}

/// Decodes the text part of a packet. `max_attachments` bounds the announced attachment count.
pub fn decode_text(s: &str, max_attachments: usize) -> Result<TextPart, DecodeError> {
    let b = s.as_bytes();
    let kind = b.first().and_then(|&c| PacketType::from_digit(c)).ok_or(DecodeError::UnknownType)?;
    let mut i = 1;
    let mut attachments = 0;
    if kind.is_binary() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == start || i >= b.len() || b[i] != b'-' {
            return Err(DecodeError::InvalidAttachments);
        }
        attachments = s[start..i].parse::<usize>().map_err(|_| DecodeError::InvalidAttachments)?;
        // A binary packet has at least one attachment (the reference refuses `50-`).
        if attachments == 0 {
            return Err(DecodeError::InvalidAttachments);
        }
        if attachments > max_attachments {
            return Err(DecodeError::TooManyAttachments);
        }
        i += 1;
    }
    let mut nsp = "/".to_owned();
    if b.get(i) == Some(&b'/') {
        let start = i;
        while i < b.len() && b[i] != b',' {
            i += 1;
        }
        nsp = s[start..i].to_owned();
        if i < b.len() {
            i += 1; // the comma
        }
    }
    let mut id = None;
    if b.get(i).is_some_and(u8::is_ascii_digit) {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        id = Some(s[start..i].parse::<u64>().map_err(|_| DecodeError::InvalidAckId)?);
    }
    let data = if i < b.len() {
        Some(serde_json::from_str::<Value>(&s[i..]).map_err(|_| DecodeError::InvalidJson)?)
    } else {
        None
    };
    if !payload_valid(kind, data.as_ref()) {
        return Err(DecodeError::InvalidPayload);
    }
    Ok(TextPart { packet: Packet { kind, nsp, id, data }, attachments })
}

/// The reference's `isPayloadValid`, with an absent payload allowed where the reference never checks it.
pub fn payload_valid(kind: PacketType, data: Option<&Value>) -> bool {
    match (kind, data) {
        (PacketType::Connect, None) => true,
        (PacketType::Connect, Some(d)) => matches!(d, Value::Object(_)),
        (PacketType::Disconnect, d) => d.is_none(),
        (PacketType::ConnectError, Some(d)) => matches!(d, Value::String(_) | Value::Object(_)),
        (PacketType::Event | PacketType::BinaryEvent, Some(Value::Array(a))) => match a.first() {
            Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
            Some(Value::Number(_)) => true,
            _ => false,
        },
        (PacketType::Ack | PacketType::BinaryAck, Some(d)) => matches!(d, Value::Array(_)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Result<TextPart, DecodeError> {
        decode_text(s, 10)
    }

    #[test]
    fn decodes_the_reference_examples() {
        let p = dec("0").unwrap().packet;
        assert_eq!(p, Packet::connect("/", None));
        let p = dec("0/admin,{\"token\":\"123\"}").unwrap().packet;
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.data.unwrap().get("token").unwrap().as_str(), Some("123"));
        assert_eq!(dec("1/admin,").unwrap().packet, Packet::disconnect("/admin"));
        let p = dec("2[\"foo\"]").unwrap().packet;
        assert_eq!(p.event_name(), Some("foo"));
        let p = dec("2/admin,456[\"project:delete\",123]").unwrap().packet;
        assert_eq!((p.nsp.as_str(), p.id), ("/admin", Some(456)));
        let p = dec("3/admin,456[]").unwrap().packet;
        assert_eq!(p, Packet::ack("/admin", 456, vec![]));
        let p = dec("4{\"message\":\"Not authorized\"}").unwrap().packet;
        assert_eq!(p.kind, PacketType::ConnectError);
        let part = dec("51-[\"hello\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(part.attachments, 1);
        let part = dec("61-/admin,456[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((part.attachments, part.packet.id), (1, Some(456)));
    }

    #[test]
    fn rejects_what_the_reference_rejects() {
        for (s, e) in [
            ("", DecodeError::UnknownType),
            ("7", DecodeError::UnknownType),
            ("abc", DecodeError::UnknownType),
            ("2{}", DecodeError::InvalidPayload),
            ("2abc[", DecodeError::InvalidJson),
            ("2[]", DecodeError::InvalidPayload),
            ("2[\"disconnect\"]", DecodeError::InvalidPayload),
            ("2[{}]", DecodeError::InvalidPayload),
            ("0[]", DecodeError::InvalidPayload),
            ("1{}", DecodeError::InvalidPayload),
            ("3{}", DecodeError::InvalidPayload),
            ("4[]", DecodeError::InvalidPayload),
            ("5[\"a\"]", DecodeError::InvalidAttachments),
            ("5x-[\"a\"]", DecodeError::InvalidAttachments),
            ("50-[\"a\"]", DecodeError::InvalidAttachments),
            ("511-[\"a\"]", DecodeError::TooManyAttachments),
            ("299999999999999999999999[\"a\"]", DecodeError::InvalidAckId),
        ] {
            assert_eq!(dec(s), Err(e), "{s}");
        }
    }

    #[test]
    fn encodes_like_the_reference() {
        assert_eq!(Packet::connect("/", None).encode_text().0, "0");
        assert_eq!(Packet::disconnect("/admin").encode_text().0, "1/admin,");
        let p = Packet::event("/", "foo", vec![Value::from(1), Value::from("x")], Some(12));
        assert_eq!(p.encode_text().0, "212[\"foo\",1,\"x\"]");
        let p = Packet::event("/chat", "bin", vec![Value::Binary(Bytes::from_static(b"\x01"))], None);
        let (text, att) = p.encode_text();
        assert_eq!(text, "51-/chat,[\"bin\",{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(att, vec![Bytes::from_static(b"\x01")]);
        let p = Packet::ack("/", 3, vec![Value::Binary(Bytes::from_static(b"a"))]);
        assert_eq!(p.encode_text().0, "61-3[{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(
            Packet::connect_error("/", "Invalid namespace", None).encode_text().0,
            "4{\"message\":\"Invalid namespace\"}"
        );
    }

    #[test]
    fn events_and_acks_are_taken_apart_without_copies() {
        let p = Packet::event("/", "move", vec![Value::from(1), Value::from("x")], Some(4));
        assert_eq!(p.into_event(), Some(("move".to_owned(), vec![Value::from(1), Value::from("x")])));
        // A numeric event name, as the reference allows.
        let p = dec("2[42,\"a\"]").unwrap().packet;
        assert_eq!(p.into_event(), Some(("42".to_owned(), vec![Value::from("a")])));
        assert_eq!(Packet::ack("/", 1, vec![Value::from(true)]).into_ack_args(), Some(vec![Value::from(true)]));
        assert_eq!(Packet::connect("/", None).into_event(), None);
        assert_eq!(Packet::connect("/", None).into_ack_args(), None);
        assert_eq!(PacketType::BinaryEvent.plain(), PacketType::Event);
        assert_eq!(PacketType::BinaryAck.plain(), PacketType::Ack);
        assert_eq!(PacketType::Connect.plain(), PacketType::Connect);
    }
}
