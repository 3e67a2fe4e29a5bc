//! A timestamped record of everything a connection sent and received, printable as a
//! readable exchange for failure reports.

use std::collections::VecDeque;
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

/// How many entries a trace keeps from the start of a connection.
pub const TRACE_HEAD: usize = 50;
/// How many of the latest entries a trace keeps.
pub const TRACE_TAIL: usize = 50;

/// The trace of one connection, bounded: it keeps the first [`TRACE_HEAD`] and the last
/// [`TRACE_TAIL`] entries and counts the ones in between, so a broker that floods a
/// connection cannot make its trace grow without limit.
///
/// `Display` prints one line per kept entry, for example:
///
/// ```text
/// +0.012s  -> CONNECT v5 client_id="a" clean_start keep_alive=60
/// +0.015s  <- CONNACK session_present=0 reason=0x00 (Success)
/// ... 12,345 packets/events not kept ...
/// +2.000s  <- closed by broker
/// ```
#[derive(Debug, Clone)]
pub struct Trace {
    head: Vec<TraceEntry>,
    tail: VecDeque<TraceEntry>,
    dropped: u64,
    head_max: usize,
    tail_max: usize,
}

impl Default for Trace {
    fn default() -> Trace {
        Trace::bounded(TRACE_HEAD, TRACE_TAIL)
    }
}

impl Trace {
    /// A trace that keeps the first `head` and the last `tail` entries.
    pub fn bounded(head: usize, tail: usize) -> Trace {
        Trace {
            head: Vec::new(),
            tail: VecDeque::new(),
            dropped: 0,
            head_max: head,
            tail_max: tail,
        }
    }

    /// Append an entry.
    pub fn push(&mut self, at: Duration, direction: Direction, event: TraceEvent) {
        self.push_entry(TraceEntry {
            at,
            direction,
            event,
        });
    }

    /// Append an entry; past the head, the oldest entry of the tail is counted and dropped.
    pub fn push_entry(&mut self, entry: TraceEntry) {
        if self.dropped == 0 && self.tail.is_empty() && self.head.len() < self.head_max {
            self.head.push(entry);
            return;
        }
        self.tail.push_back(entry);
        if self.tail.len() > self.tail_max {
            self.tail.pop_front();
            self.dropped += 1;
        }
    }

    /// Append every entry of `other`, `offset` later (a later connection of the same
    /// session); what `other` dropped is counted here too.
    pub fn append(&mut self, other: &Trace, offset: Duration) {
        let shifted = |e: &TraceEntry| TraceEntry {
            at: e.at + offset,
            ..e.clone()
        };
        for e in &other.head {
            self.push_entry(shifted(e));
        }
        if other.dropped > 0 {
            // The gap of `other` joins this one: what follows goes to the tail.
            self.dropped += other.dropped;
        }
        for e in &other.tail {
            self.push_entry(shifted(e));
        }
    }

    /// Number of entries kept.
    pub fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0 && self.dropped == 0
    }

    /// Entries recorded but not kept (between the first and the last ones).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Entries ever recorded (kept or not).
    pub fn total(&self) -> u64 {
        self.len() as u64 + self.dropped
    }

    /// The kept entries in order (the first ones, then the last ones).
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &TraceEntry> {
        self.head.iter().chain(self.tail.iter())
    }

    /// The kept entries numbered `from` or later (0 is the first entry ever recorded), so a
    /// reader that printed the first `from` entries can print only the new ones.
    pub fn since(&self, from: u64) -> impl Iterator<Item = &TraceEntry> {
        let head_len = self.head.len() as u64;
        let tail_start = head_len + self.dropped;
        let skip_head = usize::try_from(from.min(head_len)).unwrap_or(usize::MAX);
        let skip_tail = usize::try_from(from.saturating_sub(tail_start)).unwrap_or(usize::MAX);
        self.head
            .iter()
            .skip(skip_head)
            .chain(self.tail.iter().skip(skip_tail))
    }

    /// The kept entries split where entries were dropped: (first ones, dropped count, last
    /// ones).
    pub fn parts(&self) -> (&[TraceEntry], u64, impl Iterator<Item = &TraceEntry>) {
        (&self.head, self.dropped, self.tail.iter())
    }

    /// The packets that went in `direction`, in order (kept entries only).
    pub fn packets(&self, direction: Direction) -> impl Iterator<Item = &Packet> {
        self.iter().filter_map(move |e| match &e.event {
            TraceEvent::Packet(p) if e.direction == direction => Some(p),
            _ => None,
        })
    }
}

/// The line that stands for the entries a trace did not keep.
pub fn dropped_line(dropped: u64) -> String {
    format!("... {} packets/events not kept ...", thousands(dropped))
}

/// `12345` as `12,345`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (head, dropped, tail) = self.parts();
        for entry in head {
            writeln!(f, "{entry}")?;
        }
        if dropped > 0 {
            writeln!(f, "{}", dropped_line(dropped))?;
        }
        for entry in tail {
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

    fn note(i: u64) -> TraceEvent {
        TraceEvent::Note(format!("n{i}"))
    }

    #[test]
    fn a_trace_keeps_its_first_and_last_entries_and_counts_the_rest() {
        let mut t = Trace::bounded(2, 3);
        for i in 0..10 {
            t.push(Duration::ZERO, Direction::Received, note(i));
        }
        let kept: Vec<String> = t.iter().map(|e| e.to_string()).collect();
        assert_eq!(kept.len(), 5);
        assert!(
            kept[0].ends_with("n0") && kept[1].ends_with("n1"),
            "{kept:?}"
        );
        assert!(
            kept[2].ends_with("n7") && kept[4].ends_with("n9"),
            "{kept:?}"
        );
        assert_eq!((t.dropped(), t.total()), (5, 10));
        assert!(t.to_string().contains("... 5 packets/events not kept ..."));
        let new: Vec<String> = t.since(8).map(|e| e.to_string()).collect();
        assert_eq!(new.len(), 2);
        assert!(new[0].ends_with("n8"), "{new:?}");
        assert_eq!(t.since(1).count(), 4);
    }

    #[test]
    fn appending_keeps_the_gap() {
        let mut a = Trace::bounded(2, 2);
        let mut b = Trace::bounded(1, 1);
        for i in 0..5 {
            b.push(Duration::ZERO, Direction::Received, note(i));
        }
        a.push(Duration::ZERO, Direction::Sent, note(100));
        a.append(&b, Duration::from_secs(1));
        assert_eq!(a.dropped(), 3);
        let kept: Vec<String> = a.iter().map(|e| e.to_string()).collect();
        assert_eq!(kept.len(), 3, "{kept:?}");
        assert!(
            kept[2].starts_with("+1.000s") && kept[2].ends_with("n4"),
            "{kept:?}"
        );
        assert_eq!(thousands(12345), "12,345");
        assert_eq!(thousands(999), "999");
    }

    #[test]
    fn hex_truncates() {
        assert_eq!(hex(&[1, 2, 3], 2), "01 02 ...");
    }
}
