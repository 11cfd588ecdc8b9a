//! Parsers: how packets become Engine.IO messages and back. The wire format is swappable, as the
//! reference's `parser` option: [`JsonParser`] (the default `socket.io-parser` format) and, behind the
//! `msgpack` feature, [`crate::msgpack::MsgpackParser`] (`socket.io-msgpack-parser`).

use bytes::Bytes;
use engineio_proto::{ByteString, Frame, Message};

use crate::error::DecodeError;
use crate::json::write_string;
use crate::packet::{ArgsPacket, Packet, TextPart, decode_text, write_args_text};
use crate::value::Value;

/// A wire format for packets.
pub trait Parser: Send + Sync + 'static {
    /// Encodes a packet as the Engine.IO messages that carry it, in order.
    fn encode(&self, packet: &Packet) -> Vec<Message>;
    /// Encodes a packet straight into the Engine.IO frames it travels in.
    fn encode_frames(&self, packet: &Packet) -> Frames {
        Frames::from_messages(&self.encode(packet))
    }
    /// Encodes an EVENT or ACK packet from its parts, without building a [`Packet`] (what an emit or an
    /// acknowledgement sends); the same frames as [`Parser::encode_frames`] of the equivalent packet.
    fn encode_args(&self, nsp: &str, packet: ArgsPacket<'_>, args: &[Value]) -> Frames {
        self.encode_frames(&packet.to_packet(nsp, args))
    }
    /// Encodes the CONNECT reply `{"sid":...,"pid"?:...}` that accepts a client into `nsp`.
    fn encode_connect_reply(&self, nsp: &str, sid: &str, pid: Option<&str>) -> Frames {
        let mut reply = crate::value::Map::new();
        reply.insert("sid".into(), Value::from(sid));
        if let Some(pid) = pid {
            reply.insert("pid".into(), Value::from(pid));
        }
        self.encode_frames(&Packet::connect(nsp, Some(Value::Object(reply))))
    }
    /// A decoder for one connection (it may hold a partial packet between messages). Decoded packets have
    /// their plain type ([`crate::PacketType::plain`]): EVENT and ACK, binary or not.
    fn decoder(&self) -> Box<dyn Decoder>;
}

/// Turns a connection's incoming messages into packets.
pub trait Decoder: Send {
    /// Takes one message; returns a packet once one is complete.
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError>;
    /// Whether a binary packet is waiting for attachments.
    fn is_reconstructing(&self) -> bool;
}

/// The Engine.IO frames of one encoded packet: most packets are one frame, a packet with binary
/// attachments is its text frame followed by one binary frame per attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frames {
    /// A single frame.
    One(Frame),
    /// Several frames, to be sent together and in order.
    Many(Vec<Frame>),
}

impl Frames {
    /// The frames of Engine.IO message packets.
    pub fn from_messages(messages: &[Message]) -> Frames {
        match messages {
            [one] => Frames::One(Frame::from_message(one)),
            many => Frames::Many(many.iter().map(Frame::from_message).collect()),
        }
    }

    /// A text frame (`out`, which starts with the message type digit `4`) and its attachments.
    fn text_with_attachments(out: String, attachments: Vec<Bytes>) -> Frames {
        let text = Frame::Text(ByteString::from(out));
        if attachments.is_empty() {
            return Frames::One(text);
        }
        let mut frames = Vec::with_capacity(1 + attachments.len());
        frames.push(text);
        frames.extend(attachments.into_iter().map(Frame::Binary));
        Frames::Many(frames)
    }

    /// The frames, in order.
    pub fn as_slice(&self) -> &[Frame] {
        match self {
            Frames::One(f) => std::slice::from_ref(f),
            Frames::Many(v) => v,
        }
    }

    /// The frames, in order, as a vector.
    pub fn into_vec(self) -> Vec<Frame> {
        match self {
            Frames::One(f) => vec![f],
            Frames::Many(v) => v,
        }
    }
}

impl IntoIterator for Frames {
    type Item = Frame;
    type IntoIter = FramesIter;

    fn into_iter(self) -> FramesIter {
        match self {
            Frames::One(f) => FramesIter::One(Some(f)),
            Frames::Many(v) => FramesIter::Many(v.into_iter()),
        }
    }
}

impl<'a> IntoIterator for &'a Frames {
    type Item = &'a Frame;
    type IntoIter = std::slice::Iter<'a, Frame>;

    fn into_iter(self) -> Self::IntoIter {
        self.as_slice().iter()
    }
}

/// The frames of a [`Frames`], in order (no allocation for a single frame).
#[derive(Debug)]
pub enum FramesIter {
    /// The one frame, until taken.
    One(Option<Frame>),
    /// Several.
    Many(std::vec::IntoIter<Frame>),
}

impl Iterator for FramesIter {
    type Item = Frame;

    fn next(&mut self) -> Option<Frame> {
        match self {
            FramesIter::One(f) => f.take(),
            FramesIter::Many(it) => it.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            FramesIter::One(f) => usize::from(f.is_some()),
            FramesIter::Many(it) => it.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for FramesIter {}

/// The default parser: text packets with binary attachments in separate binary messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonParser {
    /// The most attachments a binary packet may announce (default 10); more is a decode error.
    pub max_attachments: usize,
}

impl Default for JsonParser {
    fn default() -> Self {
        Self { max_attachments: 10 }
    }
}

impl Parser for JsonParser {
    fn encode(&self, packet: &Packet) -> Vec<Message> {
        let (text, attachments) = packet.encode_text();
        let mut out = Vec::with_capacity(1 + attachments.len());
        out.push(Message::from(text));
        out.extend(attachments.into_iter().map(Message::Binary));
        out
    }

    /// Writes the Engine.IO message digit, the header and the JSON into one buffer sized up front.
    fn encode_frames(&self, packet: &Packet) -> Frames {
        let mut out = String::with_capacity(1 + packet.text_size_hint());
        out.push('4');
        let mut attachments = Vec::new();
        packet.write_text(&mut out, &mut attachments);
        Frames::text_with_attachments(out, attachments)
    }

    fn encode_args(&self, nsp: &str, packet: ArgsPacket<'_>, args: &[Value]) -> Frames {
        let mut out = String::with_capacity(1 + packet.text_size_hint(nsp, args));
        out.push('4');
        let mut attachments = Vec::new();
        write_args_text(&mut out, nsp, packet, args, &mut attachments);
        Frames::text_with_attachments(out, attachments)
    }

    /// Written straight into one text frame, without building a [`Value`].
    fn encode_connect_reply(&self, nsp: &str, sid: &str, pid: Option<&str>) -> Frames {
        let mut out = String::with_capacity(48 + nsp.len());
        out.push_str("40");
        if nsp != "/" {
            out.push_str(nsp);
            out.push(',');
        }
        out.push_str("{\"sid\":");
        write_string(sid, &mut out);
        if let Some(pid) = pid {
            out.push_str(",\"pid\":");
            write_string(pid, &mut out);
        }
        out.push('}');
        Frames::One(Frame::Text(ByteString::from(out)))
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(JsonDecoder::new(self.max_attachments))
    }
}

/// Assembles packets of the default format, attachments included.
#[derive(Debug)]
pub struct JsonDecoder {
    max_attachments: usize,
    /// A binary packet waiting for its attachments: boxed, as it is rare and every connection keeps a
    /// decoder (16 bytes instead of some 150).
    pending: Option<Box<(TextPart, Vec<Bytes>)>>,
}

impl JsonDecoder {
    /// A decoder that accepts at most `max_attachments` per packet.
    pub fn new(max_attachments: usize) -> Self {
        Self { max_attachments, pending: None }
    }

    fn complete(part: TextPart, attachments: Vec<Bytes>) -> Result<Packet, DecodeError> {
        let mut packet = part.packet;
        // Only binary packets have placeholders: in any other packet, an object that looks like one is
        // data, kept as it is (as the reference does).
        if !packet.kind.is_binary() {
            return Ok(packet);
        }
        if let Some(data) = &mut packet.data {
            data.resolve_placeholders(&attachments).map_err(|_| DecodeError::MissingAttachment)?;
        }
        packet.kind = packet.kind.plain();
        Ok(packet)
    }
}

impl Decoder for JsonDecoder {
    fn decode(&mut self, message: Message) -> Result<Option<Packet>, DecodeError> {
        match message {
            Message::Text(text) => {
                if self.pending.is_some() {
                    return Err(DecodeError::UnexpectedText);
                }
                let part = decode_text(&text, self.max_attachments)?;
                if part.attachments == 0 {
                    return Self::complete(part, Vec::new()).map(Some);
                }
                let n = part.attachments;
                self.pending = Some(Box::new((part, Vec::with_capacity(n))));
                Ok(None)
            }
            Message::Binary(bytes) => {
                let Some(mut pending) = self.pending.take() else {
                    return Err(DecodeError::UnexpectedBinary);
                };
                pending.1.push(bytes);
                if pending.1.len() < pending.0.attachments {
                    self.pending = Some(pending);
                    return Ok(None);
                }
                let (part, attachments) = *pending;
                Self::complete(part, attachments).map(Some)
            }
        }
    }

    fn is_reconstructing(&self) -> bool {
        self.pending.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::Value;

    #[test]
    fn assembles_binary_packets() {
        let parser = JsonParser::default();
        let mut d = parser.decoder();
        let text = "52-[\"message\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]";
        assert_eq!(d.decode(Message::from(text)), Ok(None));
        assert!(d.is_reconstructing());
        assert_eq!(d.decode(Message::Binary(Bytes::from_static(b"a"))), Ok(None));
        let p = d.decode(Message::Binary(Bytes::from_static(b"b"))).unwrap().unwrap();
        assert_eq!(
            p.data,
            Some(Value::Array(vec![
                Value::from("message"),
                Value::Binary(Bytes::from_static(b"a")),
                Value::Binary(Bytes::from_static(b"b")),
            ]))
        );
        assert_eq!(parser.encode(&p).len(), 3);
    }

    #[test]
    fn decoded_binary_packets_have_the_plain_type() {
        let mut d = JsonParser::default().decoder();
        d.decode(Message::from("51-[\"up\",{\"_placeholder\":true,\"num\":0}]")).unwrap();
        let p = d.decode(Message::Binary(Bytes::from_static(b"x"))).unwrap().unwrap();
        assert_eq!(p.kind, crate::PacketType::Event);
        d.decode(Message::from("61-7[{\"_placeholder\":true,\"num\":0}]")).unwrap();
        let p = d.decode(Message::Binary(Bytes::from_static(b"y"))).unwrap().unwrap();
        assert_eq!((p.kind, p.id), (crate::PacketType::Ack, Some(7)));
        // Encoding still marks binary packets as such.
        assert!(matches!(&JsonParser::default().encode(&p)[0], Message::Text(t) if t.starts_with("61-7")));
    }

    #[test]
    fn the_connect_reply_is_frames_of_the_parser() {
        struct Generic;
        impl Parser for Generic {
            fn encode(&self, packet: &Packet) -> Vec<Message> {
                JsonParser::default().encode(packet)
            }
            fn decoder(&self) -> Box<dyn Decoder> {
                JsonParser::default().decoder()
            }
        }
        let json = JsonParser::default();
        for (nsp, pid) in [("/", None), ("/custom", Some("p\"q"))] {
            let fast = json.encode_connect_reply(nsp, "abc", pid);
            assert_eq!(fast, Generic.encode_connect_reply(nsp, "abc", pid), "{nsp}");
        }
        assert_eq!(
            json.encode_connect_reply("/custom", "abc", Some("p")),
            Frames::One(Frame::Text("40/custom,{\"sid\":\"abc\",\"pid\":\"p\"}".into()))
        );
    }

    #[test]
    fn frames_iterate_in_order() {
        let one = Frames::One(Frame::Text("4a".into()));
        let many = Frames::Many(vec![Frame::Text("4b".into()), Frame::Binary(Bytes::from_static(b"c"))]);
        assert_eq!((&one).into_iter().count(), 1);
        assert_eq!(one.clone().into_iter().collect::<Vec<_>>(), vec![Frame::Text("4a".into())]);
        let it = many.clone().into_iter();
        assert_eq!(it.len(), 2);
        assert_eq!(it.collect::<Vec<_>>(), many.as_slice().to_vec());
        let mut n = 0;
        for f in &many {
            n += f.len();
        }
        assert_eq!(n, 3);
    }

    #[test]
    fn rejects_out_of_order_input() {
        let mut d = JsonParser::default().decoder();
        assert_eq!(d.decode(Message::Binary(Bytes::new())), Err(DecodeError::UnexpectedBinary));
        d.decode(Message::from("51-[\"a\",{\"_placeholder\":true,\"num\":0}]")).unwrap();
        assert_eq!(d.decode(Message::from("2[\"a\"]")), Err(DecodeError::UnexpectedText));
        let mut d = JsonParser::default().decoder();
        d.decode(Message::from("51-[\"a\",{\"_placeholder\":true,\"num\":3}]")).unwrap();
        assert_eq!(d.decode(Message::Binary(Bytes::new())), Err(DecodeError::MissingAttachment));
    }

    #[test]
    fn placeholders_only_in_binary_packets() {
        let mut d = JsonParser::default().decoder();
        let p = d.decode(Message::from("2[\"a\",{\"_placeholder\":true,\"num\":0}]")).unwrap().unwrap();
        assert_eq!(p.data.unwrap().as_array().unwrap()[1].get("num"), Some(&Value::from(0)));
    }
}
