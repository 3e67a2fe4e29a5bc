//! Rendering a connection trace for reports, with credentials redacted.

use reference_broker::client::{
    dropped_line, hex, Direction, PacketDisplay, Trace, TraceEntry, TraceEvent,
};
use reference_broker::codec::reason::v3;
use reference_broker::codec::{ConnAck, Packet, ProtocolVersion, ReasonCode};

/// A packet as shown in reports, one line as MQTT people read it (the reference client's
/// [`PacketDisplay`]: `PUBLISH topic="a/b" qos=1 id=4 retain=0 dup=0 payload="m4" (2 B)`,
/// properties by name); CONNECT user names and authentication data are replaced, passwords
/// are never shown.
pub fn redacted(packet: &Packet) -> String {
    match packet {
        Packet::Connect(c)
            if c.username.is_some() || c.properties.authentication_data.is_some() =>
        {
            let mut c = c.clone();
            if c.username.is_some() {
                c.username = Some("<redacted>".into());
            }
            if c.properties.authentication_data.is_some() {
                c.properties.authentication_data = Some(bytes::Bytes::from_static(b"<redacted>"));
            }
            PacketDisplay(&Packet::Connect(c)).to_string()
        }
        other => PacketDisplay(other).to_string(),
    }
}

/// A CONNACK as shown in reports under MQTT 3.1.x: its return code named by the 3.1.1 table,
/// not by the MQTT 5 reason code of the same value.
fn connack_v3(c: &ConnAck) -> String {
    format!(
        "CONNACK session_present={} return_code={}",
        u8::from(c.session_present),
        v3_return_code(c.code)
    )
}

/// A CONNACK as one report line: `connack_v3` for MQTT 3.1.x, else the packet form.
pub fn connack(c: &ConnAck, v3: bool) -> String {
    if v3 {
        connack_v3(c)
    } else {
        PacketDisplay(&Packet::ConnAck(c.clone())).to_string()
    }
}

/// A 3.1.x CONNACK return code with its 3.1.1 name: `0x04 (bad user name or password)`.
pub fn v3_return_code(code: ReasonCode) -> String {
    match v3::connack_name(code) {
        Some(name) => format!("0x{:02X} ({name})", code.0),
        None => format!("0x{:02X}", code.0),
    }
}

/// One line per kept trace entry: `+0.012s -> CONNECT {...}`, with one line
/// `... 12,345 packets/events not kept ...` where the bounded trace dropped entries. The
/// protocol version of the trace's CONNECT decides how CONNACK codes are named.
pub fn render(trace: &Trace) -> Vec<String> {
    let mut version = None;
    let (head, dropped, tail) = trace.parts();
    let mut lines: Vec<String> = head.iter().map(|e| line(e, &mut version)).collect();
    if dropped > 0 {
        lines.push(dropped_line(dropped));
    }
    lines.extend(tail.map(|e| line(e, &mut version)));
    lines
}

/// One trace entry as a report line.
fn line(e: &TraceEntry, version: &mut Option<ProtocolVersion>) -> String {
    let arrow = match e.direction {
        Direction::Sent => "->",
        Direction::Received => "<-",
    };
    let what = match &e.event {
        TraceEvent::Packet(Packet::ConnAck(c))
            if version.is_some_and(|v: ProtocolVersion| !v.is_v5()) =>
        {
            connack_v3(c)
        }
        TraceEvent::Packet(p) => {
            if let Packet::Connect(c) = p {
                *version = Some(c.protocol);
            }
            redacted(p)
        }
        TraceEvent::Raw(bytes) => format!("raw {} B: {}", bytes.len(), hex(bytes, 64)),
        TraceEvent::Closed(why) => format!("closed: {why}"),
        TraceEvent::Note(n) => format!("# {n}"),
    };
    format!("+{:.3}s {arrow} {what}", e.at.as_secs_f64())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn connack_codes_are_named_by_the_version_of_the_connect() {
        use reference_broker::codec::{Connect, ReasonCode};
        let trace_for = |protocol| {
            let mut t = Trace::default();
            let connect = Connect {
                protocol,
                clean_start: true,
                keep_alive: 0,
                client_id: "c".into(),
                will: None,
                username: None,
                password: None,
                properties: Default::default(),
            };
            t.push(
                std::time::Duration::ZERO,
                Direction::Sent,
                TraceEvent::Packet(Packet::Connect(Box::new(connect))),
            );
            let ack = ConnAck {
                code: ReasonCode(4),
                ..ConnAck::default()
            };
            t.push(
                std::time::Duration::ZERO,
                Direction::Received,
                TraceEvent::Packet(Packet::ConnAck(ack)),
            );
            render(&t)
        };
        let v311 = trace_for(ProtocolVersion::V3_1_1);
        assert!(
            v311[1].contains("0x04 (bad user name or password)"),
            "{v311:?}"
        );
        let v5 = trace_for(ProtocolVersion::V5);
        assert!(!v5[1].contains("bad user name"), "{v5:?}");
    }
}
