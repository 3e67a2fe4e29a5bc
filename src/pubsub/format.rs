//! How `sub` prints a message: the payload (as text, hex or base64), `topic payload` with
//! `-v`, one JSON object with `--json`, or a mosquitto_sub `-F` format string.

use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

use reference_broker::codec::{Properties, Publish, QoS};
use serde_json::{json, Map, Value};

/// How payload bytes are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Encoding {
    /// As they are (invalid UTF-8 replaced in text lines).
    #[default]
    Text,
    /// Lowercase hex.
    Hex,
    /// Standard base64.
    Base64,
}

/// `bytes` in `encoding`.
pub fn encode(bytes: &[u8], encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Text => bytes.to_vec(),
        Encoding::Hex => hex(bytes).into_bytes(),
        Encoding::Base64 => base64(bytes).into_bytes(),
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Standard base64 (RFC 4648, padded) of `bytes`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                s.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                s.push('=');
            }
        }
    }
    s
}

/// The default output of a message: the payload, or `topic payload` with `verbose`.
pub fn line(m: &Publish, verbose: bool, encoding: Encoding) -> Vec<u8> {
    let payload = match encoding {
        Encoding::Text => String::from_utf8_lossy(&m.payload)
            .into_owned()
            .into_bytes(),
        other => encode(&m.payload, other),
    };
    if verbose {
        let mut out = format!("{} ", &*m.topic).into_bytes();
        out.extend_from_slice(&payload);
        out
    } else {
        payload
    }
}

/// A message rendered by a mosquitto_sub `-F` format string: `%t` topic, `%p` payload
/// (in `encoding`), `%x`/`%X` payload hex, `%l` length, `%q` QoS, `%r` retain, `%m` packet
/// id, `%j` JSON, `%I` ISO 8601 time, `%U` Unix time, `%C` content type, `%E` message expiry,
/// `%F` payload format, `%R` response topic, `%D` correlation data (hex), `%S` subscription
/// identifiers, `%A` topic alias, `%P` user properties, `%%`; escapes `\n`, `\t`, `\r`, `\\`,
/// `\0`, `\e`, `\a`.
pub fn template(format: &str, m: &Publish, encoding: Encoding, now: SystemTime) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = format.chars();
    let text = |out: &mut Vec<u8>, s: &str| out.extend_from_slice(s.as_bytes());
    let p: &Properties = &m.properties;
    while let Some(c) = chars.next() {
        match c {
            '%' => match chars.next() {
                Some('t') => text(&mut out, &m.topic),
                Some('p') => out.extend_from_slice(&encode(&m.payload, encoding)),
                Some('x') => text(&mut out, &hex(&m.payload)),
                Some('X') => text(&mut out, &hex(&m.payload).to_uppercase()),
                Some('l') => text(&mut out, &m.payload.len().to_string()),
                Some('q') => text(&mut out, &m.qos.as_u8().to_string()),
                Some('r') => text(&mut out, if m.retain { "1" } else { "0" }),
                Some('m') => text(&mut out, &m.packet_id.to_string()),
                Some('j') => text(&mut out, &message_json(m).to_string()),
                Some('I') => text(&mut out, &iso8601(now)),
                Some('U') => {
                    let d = now.duration_since(UNIX_EPOCH).unwrap_or_default();
                    text(
                        &mut out,
                        &format!("{}.{:09}", d.as_secs(), d.subsec_nanos()),
                    );
                }
                Some('C') => text(&mut out, p.content_type.as_deref().unwrap_or("")),
                Some('E') => {
                    if let Some(v) = p.message_expiry_interval {
                        text(&mut out, &v.to_string());
                    }
                }
                Some('F') => {
                    if let Some(v) = p.payload_format_indicator {
                        text(&mut out, &v.to_string());
                    }
                }
                Some('R') => text(&mut out, p.response_topic.as_deref().unwrap_or("")),
                Some('D') => text(&mut out, &hex(p.correlation_data.as_deref().unwrap_or(&[]))),
                Some('S') => {
                    let ids: Vec<String> = p
                        .subscription_identifiers
                        .iter()
                        .map(ToString::to_string)
                        .collect();
                    text(&mut out, &ids.join(","));
                }
                Some('A') => {
                    if let Some(v) = p.topic_alias {
                        text(&mut out, &v.to_string());
                    }
                }
                Some('P') => {
                    let pairs: Vec<String> = p
                        .user_properties
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect();
                    text(&mut out, &pairs.join(" "));
                }
                Some('%') => out.push(b'%'),
                Some(other) => text(&mut out, &format!("%{other}")),
                None => out.push(b'%'),
            },
            '\\' => match chars.next() {
                Some('n') => out.push(b'\n'),
                Some('t') => out.push(b'\t'),
                Some('r') => out.push(b'\r'),
                Some('0') => out.push(0),
                Some('e') => out.push(0x1b),
                Some('a') => out.push(0x07),
                Some('\\') => out.push(b'\\'),
                Some(other) => text(&mut out, &format!("\\{other}")),
                None => out.push(b'\\'),
            },
            c => text(&mut out, c.encode_utf8(&mut [0; 4])),
        }
    }
    out
}

/// `t` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC).
fn iso8601(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_micros()
    )
}

/// A message as a JSON object: topic, payload (text, or `payload_hex`), qos, retain, dup,
/// and the MQTT 5 properties that are set.
pub fn message_json(m: &Publish) -> Value {
    let mut obj = Map::new();
    obj.insert("topic".into(), json!(*m.topic));
    match std::str::from_utf8(&m.payload) {
        Ok(text) => obj.insert("payload".into(), json!(text)),
        Err(_) => obj.insert("payload_hex".into(), json!(hex(&m.payload))),
    };
    obj.insert("qos".into(), json!(m.qos.as_u8()));
    obj.insert("retain".into(), json!(m.retain));
    obj.insert("dup".into(), json!(m.dup));
    if m.qos != QoS::AtMostOnce {
        obj.insert("packet_id".into(), json!(m.packet_id));
    }
    let props = properties_json(&m.properties);
    if !props.is_empty() {
        obj.insert("properties".into(), Value::Object(props));
    }
    Value::Object(obj)
}

/// The PUBLISH properties that are set, by their snake_case names.
fn properties_json(p: &Properties) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(v) = p.payload_format_indicator {
        m.insert("payload_format_indicator".into(), json!(v));
    }
    if let Some(v) = p.message_expiry_interval {
        m.insert("message_expiry_interval".into(), json!(v));
    }
    if let Some(v) = &p.content_type {
        m.insert("content_type".into(), json!(**v));
    }
    if let Some(v) = &p.response_topic {
        m.insert("response_topic".into(), json!(**v));
    }
    if let Some(v) = &p.correlation_data {
        m.insert("correlation_data_hex".into(), json!(hex(v)));
    }
    if !p.subscription_identifiers.is_empty() {
        m.insert(
            "subscription_identifiers".into(),
            json!(p.subscription_identifiers),
        );
    }
    if let Some(v) = p.topic_alias {
        m.insert("topic_alias".into(), json!(v));
    }
    if !p.user_properties.is_empty() {
        let pairs: Vec<Value> = p
            .user_properties
            .iter()
            .map(|(k, v)| json!([**k, **v]))
            .collect();
        m.insert("user_properties".into(), Value::Array(pairs));
    }
    m
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use super::*;

    fn message() -> Publish {
        let mut p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "sensor/1/temperature".into(),
            packet_id: 3,
            properties: Default::default(),
            payload: Bytes::from_static(b"21.5"),
        };
        p.properties
            .user_properties
            .push(("unit".into(), "C".into()));
        p.properties.message_expiry_interval = Some(60);
        p
    }

    #[test]
    fn json_line_has_flags_and_properties() {
        let mut p = message();
        assert_eq!(
            message_json(&p).to_string(),
            r#"{"dup":false,"packet_id":3,"payload":"21.5","properties":{"message_expiry_interval":60,"user_properties":[["unit","C"]]},"qos":1,"retain":true,"topic":"sensor/1/temperature"}"#
        );
        assert_eq!(line(&p, true, Encoding::Text), b"sensor/1/temperature 21.5");
        p.payload = Bytes::from_static(&[0xff, 0x00]);
        assert!(message_json(&p)
            .to_string()
            .contains(r#""payload_hex":"ff00""#));
        assert_eq!(line(&p, false, Encoding::Hex), b"ff00");
        assert_eq!(line(&p, false, Encoding::Base64), b"/wA=");
    }

    #[test]
    fn format_strings_follow_mosquitto_sub() {
        let at = UNIX_EPOCH + Duration::new(1_700_000_000, 5_000);
        let out = template(
            "%t q%q r%r id=%m %l B %p %x %P %E %%\\t|%I %U",
            &message(),
            Encoding::Text,
            at,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "sensor/1/temperature q1 r1 id=3 4 B 21.5 32312e35 unit:C 60 %\t|2023-11-14T22:13:20.000005Z 1700000000.000005000"
        );
        assert_eq!(
            template("%p", &message(), Encoding::Base64, at),
            b"MjEuNQ=="
        );
    }

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
    }
}
