//! A timestamped record of everything a connection sent and received, printable as a
//! readable exchange for failure reports.

use std::fmt::{self, Write as _};
use std::time::Duration;

use bytes::Bytes;

use crate::codec::{Packet, Properties, ProtocolVersion, PubResponse, QoS, ReasonCode};

/// How many payload bytes a trace line shows before truncating.
const PAYLOAD_PREVIEW: usize = 64;

/// Which way a trace entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker.
    Sent,
    /// Broker to client.
    Received,
}

/// What happened.
// Packet's size is the codec's business; boxing it here would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    /// A decoded packet.
    Packet(Packet),
    /// Raw bytes sent as they are (raw mode) or bytes that could not be decoded.
    Raw(Bytes),
    /// The connection closed (by whom and why).
    Closed(String),
    /// A note from the harness (fault applied, step started, ...).
    Note(String),
}

/// One entry: when (since the connection opened), which way, what.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEntry {
    /// Time since the connection was opened.
    pub at: Duration,
    /// Direction.
    pub direction: Direction,
    /// Event.
    pub event: TraceEvent,
}

/// The trace of one connection.
///
/// `Display` prints one line per entry, for example:
///
/// ```text
/// +0.012s  -> CONNECT v5 client_id="a" clean_start keep_alive=60
/// +0.015s  <- CONNACK session_present=0 reason=0x00 (Success)
/// +2.000s  <- closed by broker
/// ```
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// Entries in order.
    pub entries: Vec<TraceEntry>,
}

impl Trace {
    /// Append an entry.
    pub fn push(&mut self, at: Duration, direction: Direction, event: TraceEvent) {
        self.entries.push(TraceEntry {
            at,
            direction,
            event,
        });
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The packets that went in `direction`, in order.
    pub fn packets(&self, direction: Direction) -> impl Iterator<Item = &Packet> {
        self.entries.iter().filter_map(move |e| match &e.event {
            TraceEvent::Packet(p) if e.direction == direction => Some(p),
            _ => None,
        })
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{entry}")?;
        }
        Ok(())
    }
}

impl fmt::Display for TraceEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let arrow = match (&self.event, self.direction) {
            (TraceEvent::Note(_), _) => "--",
            (_, Direction::Sent) => "->",
            (_, Direction::Received) => "<-",
        };
        write!(f, "+{:.3}s  {arrow} ", self.at.as_secs_f64())?;
        match &self.event {
            TraceEvent::Packet(p) => write!(f, "{}", PacketDisplay(p)),
            TraceEvent::Raw(bytes) => write!(f, "raw {} B: {}", bytes.len(), hex(bytes, 256)),
            TraceEvent::Closed(why) => f.write_str(why),
            TraceEvent::Note(text) => f.write_str(text),
        }
    }
}

/// Formats a packet as one readable line (used by trace lines and error messages).
pub struct PacketDisplay<'a>(pub &'a Packet);

impl fmt::Display for PacketDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Packet::Connect(c) => {
                write!(
                    f,
                    "CONNECT {} client_id={:?} {} keep_alive={}",
                    version_name(c.protocol),
                    c.client_id,
                    if c.protocol.is_v5() {
                        if c.clean_start {
                            "clean_start"
                        } else {
                            "no_clean_start"
                        }
                    } else if c.clean_start {
                        "clean_session"
                    } else {
                        "no_clean_session"
                    },
                    c.keep_alive
                )?;
                if let Some(user) = &c.username {
                    write!(f, " username={user:?}")?;
                }
                if c.password.is_some() {
                    f.write_str(" password=<redacted>")?;
                }
                write_props(f, &c.properties)?;
                if let Some(w) = &c.will {
                    write!(
                        f,
                        " will(topic={:?} qos={} retain={} payload={}",
                        w.topic,
                        w.qos.as_u8(),
                        u8::from(w.retain),
                        payload(&w.payload)
                    )?;
                    write_props(f, &w.properties)?;
                    f.write_str(")")?;
                }
                Ok(())
            }
            Packet::ConnAck(c) => {
                write!(
                    f,
                    "CONNACK session_present={} reason={}",
                    u8::from(c.session_present),
                    c.code
                )?;
                write_props(f, &c.properties)
            }
            Packet::Publish(p) => {
                write!(f, "PUBLISH topic={:?} qos={}", p.topic, p.qos.as_u8())?;
                if p.qos != QoS::AtMostOnce {
                    write!(f, " id={}", p.packet_id)?;
                }
                write!(
                    f,
                    " retain={} dup={} payload={}",
                    u8::from(p.retain),
                    u8::from(p.dup),
                    payload(&p.payload)
                )?;
                write_props(f, &p.properties)
            }
            Packet::PubAck(r) => pub_response(f, "PUBACK", r),
            Packet::PubRec(r) => pub_response(f, "PUBREC", r),
            Packet::PubRel(r) => pub_response(f, "PUBREL", r),
            Packet::PubComp(r) => pub_response(f, "PUBCOMP", r),
            Packet::Subscribe(s) => {
                write!(f, "SUBSCRIBE id={}", s.packet_id)?;
                for sub in &s.subscriptions {
                    let o = &sub.options;
                    write!(f, " {:?}(qos={}", sub.filter, o.qos.as_u8())?;
                    if o.no_local {
                        f.write_str(" no_local")?;
                    }
                    if o.retain_as_published {
                        f.write_str(" retain_as_published")?;
                    }
                    if o.retain_handling as u8 != 0 {
                        write!(f, " retain_handling={}", o.retain_handling as u8)?;
                    }
                    f.write_str(")")?;
                }
                write_props(f, &s.properties)
            }
            Packet::SubAck(s) => {
                write!(
                    f,
                    "SUBACK id={} codes=[{}]",
                    s.packet_id,
                    codes(&s.reason_codes)
                )?;
                write_props(f, &s.properties)
            }
            Packet::Unsubscribe(u) => {
                write!(f, "UNSUBSCRIBE id={} filters={:?}", u.packet_id, u.filters)?;
                write_props(f, &u.properties)
            }
            Packet::UnsubAck(u) => {
                write!(f, "UNSUBACK id={}", u.packet_id)?;
                if !u.reason_codes.is_empty() {
                    write!(f, " codes=[{}]", codes(&u.reason_codes))?;
                }
                write_props(f, &u.properties)
            }
            Packet::PingReq => f.write_str("PINGREQ"),
            Packet::PingResp => f.write_str("PINGRESP"),
            Packet::Disconnect(d) => {
                write!(f, "DISCONNECT reason={}", d.reason)?;
                write_props(f, &d.properties)
            }
            Packet::Auth(a) => {
                write!(f, "AUTH reason={}", a.reason)?;
                write_props(f, &a.properties)
            }
        }
    }
}

fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3_1 => "v3.1",
        ProtocolVersion::V3_1_1 => "v3.1.1",
        ProtocolVersion::V5 => "v5",
    }
}

fn pub_response(f: &mut fmt::Formatter<'_>, name: &str, r: &PubResponse) -> fmt::Result {
    write!(f, "{name} id={}", r.packet_id)?;
    if r.reason != ReasonCode::SUCCESS || !r.properties.is_empty() {
        write!(f, " reason={}", r.reason)?;
    }
    write_props(f, &r.properties)
}

fn codes(codes: &[ReasonCode]) -> String {
    let mut s = String::new();
    for (i, c) in codes.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "{c}");
    }
    s
}

/// A payload as text when it is printable UTF-8, else as hex; truncated either way.
pub fn payload(bytes: &[u8]) -> String {
    let len = bytes.len();
    let shown = &bytes[..len.min(PAYLOAD_PREVIEW)];
    let more = if len > PAYLOAD_PREVIEW { "..." } else { "" };
    match std::str::from_utf8(shown) {
        Ok(text) if text.chars().all(|c| !c.is_control() || c == ' ') => {
            format!("{text:?}{more} ({len} B)")
        }
        _ => format!("0x{}{more} ({len} B)", hex_compact(shown)),
    }
}

fn hex_compact(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Bytes as space-separated hex, truncated after `max` bytes.
pub fn hex(bytes: &[u8], max: usize) -> String {
    let mut s = String::with_capacity(bytes.len().min(max) * 3);
    for (i, b) in bytes.iter().take(max).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{b:02x}");
    }
    if bytes.len() > max {
        s.push_str(" ...");
    }
    s
}

/// Append ` [name=value ...]` for every property set; nothing when none is.
fn write_props(f: &mut fmt::Formatter<'_>, p: &Properties) -> fmt::Result {
    if p.is_empty() {
        return Ok(());
    }
    let mut items: Vec<String> = Vec::new();
    macro_rules! num {
        ($($field:ident),*) => {
            $(if let Some(v) = p.$field { items.push(format!(concat!(stringify!($field), "={}"), v)); })*
        };
    }
    macro_rules! text {
        ($($field:ident),*) => {
            $(if let Some(v) = &p.$field { items.push(format!(concat!(stringify!($field), "={:?}"), v)); })*
        };
    }
    macro_rules! bin {
        ($($field:ident),*) => {
            $(if let Some(v) = &p.$field { items.push(format!(concat!(stringify!($field), "={}"), payload(v))); })*
        };
    }
    num!(payload_format_indicator, message_expiry_interval);
    text!(content_type, response_topic);
    bin!(correlation_data);
    if !p.subscription_identifiers.is_empty() {
        items.push(format!(
            "subscription_identifiers={:?}",
            p.subscription_identifiers
        ));
    }
    num!(session_expiry_interval);
    text!(assigned_client_identifier);
    num!(server_keep_alive);
    text!(authentication_method);
    bin!(authentication_data);
    num!(
        request_problem_information,
        will_delay_interval,
        request_response_information
    );
    text!(response_information, server_reference, reason_string);
    num!(
        receive_maximum,
        topic_alias_maximum,
        topic_alias,
        maximum_qos,
        retain_available
    );
    for (k, v) in &p.user_properties {
        items.push(format!("user({k:?}={v:?})"));
    }
    num!(
        maximum_packet_size,
        wildcard_subscription_available,
        subscription_identifier_available,
        shared_subscription_available
    );
    write!(f, " [{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_text_and_hex() {
        assert_eq!(payload(b"21.5"), "\"21.5\" (4 B)");
        assert_eq!(payload(&[0, 255]), "0x00ff (2 B)");
        let long = vec![b'a'; 100];
        assert_eq!(payload(&long), format!("\"{}\"... (100 B)", "a".repeat(64)));
        assert_eq!(payload(b"a\nb"), "0x610a62 (3 B)");
    }

    #[test]
    fn hex_truncates() {
        assert_eq!(hex(&[1, 2, 3], 2), "01 02 ...");
    }
}
