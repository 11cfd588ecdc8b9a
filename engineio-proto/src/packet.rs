//! Engine.IO v4 packets and their encoding on the wire.
//!
//! See the protocol description, section "Packet encoding": a text packet is one ASCII digit (the packet
//! type) followed by its data; a binary message travels as a binary WebSocket frame, or as `b` followed
//! by base64 inside a polling payload (see [`crate::payload`]) and in the WebSocket text frames of a client
//! that cannot use binary frames (`forceBase64`, see [`Frame::into_text`]).
//!
//! A [`Frame`] is an *encoded* packet. Outgoing data is kept as frames so that one encoding can be shared
//! by every recipient of a broadcast (the bytes are reference counted), and so that the same frame serves
//! both transports: a text frame is exactly the text of a polling payload entry.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::error::DecodeError;
pub use crate::packet_type::PacketType;

/// The data of a message packet: UTF-8 text or raw bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Message {
    /// A text message (`4` followed by the text).
    Text(ByteString),
    /// A binary message (a binary WebSocket frame, or `b<base64>` in a polling payload).
    Binary(Bytes),
}

impl Message {
    /// The length of the data in bytes.
    pub fn len(&self) -> usize {
        match self {
            Message::Text(t) => t.len(),
            Message::Binary(b) => b.len(),
        }
    }

    /// Whether the data is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message::Text(ByteString::from(s))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message::Text(ByteString::from(s))
    }
}

impl From<Bytes> for Message {
    fn from(b: Bytes) -> Self {
        Message::Binary(b)
    }
}

impl From<Vec<u8>> for Message {
    fn from(b: Vec<u8>) -> Self {
        Message::Binary(Bytes::from(b))
    }
}

/// One Engine.IO packet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Packet {
    /// The open packet; its data is the handshake JSON (see [`crate::handshake::OpenPacket`]).
    Open(ByteString),
    /// Close the session.
    Close,
    /// A heartbeat ping.
    Ping,
    /// A heartbeat pong.
    Pong,
    /// The upgrade probe `2probe`, sent by the client on the new transport.
    PingProbe,
    /// The probe reply `3probe`, sent by the server on the new transport.
    PongProbe,
    /// Application data.
    Message(Message),
    /// The client has paused the old transport and switches to the new one.
    Upgrade,
    /// No operation.
    Noop,
}

const PROBE: &str = "probe";

impl Packet {
    /// The type digit of this packet.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Open(_) => PacketType::Open,
            Packet::Close => PacketType::Close,
            Packet::Ping | Packet::PingProbe => PacketType::Ping,
            Packet::Pong | Packet::PongProbe => PacketType::Pong,
            Packet::Message(_) => PacketType::Message,
            Packet::Upgrade => PacketType::Upgrade,
            Packet::Noop => PacketType::Noop,
        }
    }

    /// Encodes this packet as a WebSocket frame (and as a polling payload entry, see [`Frame`]).
    pub fn encode(&self) -> Frame {
        match self {
            Packet::Message(Message::Binary(b)) => Frame::Binary(b.clone()),
            Packet::Message(Message::Text(t)) => Frame::message(t),
            Packet::Open(json) => Frame::Text(prefixed(b'0', json)),
            Packet::PingProbe => Frame::Text(ByteString::from_static("2probe")),
            Packet::PongProbe => Frame::Text(ByteString::from_static("3probe")),
            Packet::Close => Frame::Text(ByteString::from_static("1")),
            Packet::Ping => Frame::Text(ByteString::from_static("2")),
            Packet::Pong => Frame::Text(ByteString::from_static("3")),
            Packet::Upgrade => Frame::Text(ByteString::from_static("5")),
            Packet::Noop => Frame::Text(ByteString::from_static("6")),
        }
    }

    /// Decodes a text packet (a WebSocket text frame, or one text entry of a polling payload).
    ///
    /// The data of a message is a zero-copy slice of `text`. Packets other than open and message carry no
    /// data, except `probe` on ping and pong; anything else is [`DecodeError::UnexpectedData`].
    pub fn decode_text(text: ByteString) -> Result<Packet, DecodeError> {
        let bytes = text.as_bytes();
        let Some(&first) = bytes.first() else {
            return Err(DecodeError::Empty);
        };
        if first == b'b' {
            // A binary message written as `b` + base64: in a polling payload, and on a WebSocket from a
            // client that cannot send binary frames (`forceBase64`), as the reference's `decodePacket`.
            let data = STANDARD.decode(&bytes[1..]).map_err(|_| DecodeError::InvalidBase64)?;
            return Ok(Packet::Message(Message::Binary(Bytes::from(data))));
        }
        let kind = PacketType::from_byte(first).ok_or(DecodeError::UnknownType(first))?;
        let data = &text[1..];
        let no_data = |p: Packet| {
            if data.is_empty() { Ok(p) } else { Err(DecodeError::UnexpectedData(kind)) }
        };
        match kind {
            PacketType::Message => Ok(Packet::Message(Message::Text(text.slice_ref(data)))),
            PacketType::Open => Ok(Packet::Open(text.slice_ref(data))),
            PacketType::Ping if data == PROBE => Ok(Packet::PingProbe),
            PacketType::Pong if data == PROBE => Ok(Packet::PongProbe),
            PacketType::Ping => no_data(Packet::Ping),
            PacketType::Pong => no_data(Packet::Pong),
            PacketType::Close => no_data(Packet::Close),
            PacketType::Upgrade => no_data(Packet::Upgrade),
            PacketType::Noop => no_data(Packet::Noop),
        }
    }

    /// Decodes a frame as received on a WebSocket: text is a packet, binary is a binary message.
    pub fn decode_frame(frame: Frame) -> Result<Packet, DecodeError> {
        match frame {
            Frame::Text(t) => Packet::decode_text(t),
            Frame::Binary(b) => Ok(Packet::Message(Message::Binary(b))),
        }
    }
}

fn prefixed(digit: u8, data: &str) -> ByteString {
    let mut buf = BytesMut::with_capacity(data.len() + 1);
    buf.put_u8(digit);
    buf.put_slice(data.as_bytes());
    ByteString::try_from(buf.freeze()).expect("a digit followed by UTF-8 is UTF-8")
}

/// An encoded packet, as it travels in one WebSocket frame.
///
/// Cloning a frame is cheap (a reference count), so one encoding can be queued for many sessions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Frame {
    /// A text packet: the type digit followed by its data.
    Text(ByteString),
    /// A binary message (no type digit on WebSocket; `b` + base64 in a polling payload).
    Binary(Bytes),
}

impl Frame {
    /// The frame of a text message packet: `4` followed by `text`.
    pub fn message(text: &str) -> Frame {
        Frame::Text(prefixed(b'4', text))
    }

    /// The frame of a message packet.
    pub fn from_message(message: &Message) -> Frame {
        match message {
            Message::Text(t) => Frame::message(t),
            Message::Binary(b) => Frame::Binary(b.clone()),
        }
    }

    /// This frame as a text frame: a binary message becomes `b` followed by its standard base64, the form
    /// for a WebSocket client that cannot read binary frames (query `b64`, the client option
    /// `forceBase64`); a text frame is returned as it is.
    pub fn into_text(self) -> Frame {
        match self {
            Frame::Text(_) => self,
            Frame::Binary(b) => {
                let mut buf = BytesMut::with_capacity(1 + base64::encoded_len(b.len(), true).unwrap_or(0));
                buf.put_u8(b'b');
                let start = buf.len();
                buf.resize(buf.capacity(), 0);
                let n = STANDARD.encode_slice(&b, &mut buf[start..]).expect("sized for the encoding");
                buf.truncate(start + n);
                Frame::Text(ByteString::try_from(buf.freeze()).expect("base64 is ASCII"))
            }
        }
    }

    /// The number of bytes this frame occupies on a WebSocket.
    pub fn len(&self) -> usize {
        match self {
            Frame::Text(t) => t.len(),
            Frame::Binary(b) => b.len(),
        }
    }

    /// The frame's bytes (for a text frame, its UTF-8).
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Frame::Text(t) => t.as_bytes(),
            Frame::Binary(b) => b,
        }
    }

    /// Whether it travels as a WebSocket text message (else binary).
    pub fn is_text(&self) -> bool {
        matches!(self, Frame::Text(_))
    }

    /// Whether the frame has no bytes at all (never true for a valid packet).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_every_type() {
        let cases: &[(&str, Packet)] = &[
            ("1", Packet::Close),
            ("2", Packet::Ping),
            ("3", Packet::Pong),
            ("2probe", Packet::PingProbe),
            ("3probe", Packet::PongProbe),
            ("5", Packet::Upgrade),
            ("6", Packet::Noop),
            ("4hello", Packet::Message("hello".into())),
            ("4", Packet::Message("".into())),
            ("0{}", Packet::Open("{}".into())),
        ];
        for (text, packet) in cases {
            assert_eq!(&Packet::decode_text((*text).into()).unwrap(), packet, "{text}");
            assert_eq!(packet.encode(), Frame::Text((*text).into()));
        }
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(Packet::decode_text("".into()), Err(DecodeError::Empty));
        assert_eq!(Packet::decode_text("abc".into()), Err(DecodeError::UnknownType(b'a')));
        assert_eq!(Packet::decode_text("7".into()), Err(DecodeError::UnknownType(b'7')));
        assert_eq!(Packet::decode_text("1x".into()), Err(DecodeError::UnexpectedData(PacketType::Close)));
        assert_eq!(Packet::decode_text("2probes".into()), Err(DecodeError::UnexpectedData(PacketType::Ping)));
    }

    #[test]
    fn message_data_is_a_slice_of_the_input() {
        let text = ByteString::from("4héllo");
        let Packet::Message(Message::Text(data)) = Packet::decode_text(text.clone()).unwrap() else {
            panic!("not a message")
        };
        assert_eq!(&*data, "héllo");
        assert_eq!(data.as_bytes().as_ptr(), text.as_bytes()[1..].as_ptr());
    }

    #[test]
    fn binary_frames_are_binary_messages() {
        let frame = Frame::Binary(Bytes::from_static(&[1, 2, 3]));
        assert_eq!(
            Packet::decode_frame(frame.clone()).unwrap(),
            Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3])))
        );
        assert_eq!(Packet::Message(Message::Binary(Bytes::from_static(&[1, 2, 3]))).encode(), frame);
    }
}
