//! The packet matcher: does a received packet match an `expect` pattern? Returns every
//! difference, so a failure report shows expected vs received field by field.

use std::fmt;

use reference_broker::codec::{Auth, Disconnect, Packet, Properties, ReasonCode};

use super::prefix::Prefixer;
use crate::scenario::{Code, ExpectStep, PropName, PropsSpec, Version};

/// One field that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The field name as in the scenario.
    pub field: String,
    /// What the scenario expects.
    pub expected: String,
    /// What the packet carries.
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: expected {}, received {}",
            self.field, self.expected, self.actual
        )
    }
}

/// A CONNACK code as the broker must send it under `version`: 3.1.1 has only return codes
/// 0..=5, so an MQTT 5 reason code in a scenario is mapped to the closest one.
pub fn connack_code(code: ReasonCode, version: Version) -> ReasonCode {
    match version {
        Version::V311 if code.0 >= 0x80 => code.to_v3_connack(),
        _ => code,
    }
}

/// A SUBACK code under `version`: 3.1.1 knows only 0, 1, 2 and 0x80 (Failure).
pub fn suback_code(code: ReasonCode, version: Version) -> ReasonCode {
    match version {
        Version::V311 if code.0 >= 0x80 => ReasonCode(0x80),
        _ => code,
    }
}

/// A 3.1.1 CONNACK return code, shown with its 3.1.1 name in a mismatch.
#[derive(PartialEq)]
struct V3ReturnCode(ReasonCode);

impl fmt::Debug for V3ReturnCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::run::trace::v3_return_code(self.0))
    }
}

struct Diff<'a> {
    out: Vec<Mismatch>,
    kind: &'a str,
}

impl Diff<'_> {
    fn field<T: fmt::Debug + PartialEq>(&mut self, name: &str, expected: Option<T>, actual: T) {
        if let Some(expected) = expected {
            if expected != actual {
                self.out.push(Mismatch {
                    field: name.to_string(),
                    expected: format!("{expected:?}"),
                    actual: format!("{actual:?}"),
                });
            }
        }
    }

    fn not_applicable(&mut self, name: &str, given: bool) {
        if given {
            self.out.push(Mismatch {
                field: name.to_string(),
                expected: format!("a field of {}", self.kind),
                actual: format!("{} has no {name}", self.kind),
            });
        }
    }

    fn properties(
        &mut self,
        spec: Option<&PropsSpec>,
        absent: &[PropName],
        present: &[PropName],
        actual: &Properties,
        prefix: &Prefixer,
    ) {
        if let Some(spec) = spec {
            for m in spec.mismatches(actual, &|t| prefix.topic(t)) {
                self.out.push(Mismatch {
                    field: format!("properties.{}", m.name),
                    expected: m.expected,
                    actual: m.actual,
                });
            }
        }
        for name in absent {
            if name.is_present(actual) {
                self.out.push(Mismatch {
                    field: format!("properties.{}", name.name()),
                    expected: "absent".into(),
                    actual: "present".into(),
                });
            }
        }
        for name in present {
            if !name.is_present(actual) {
                self.out.push(Mismatch {
                    field: format!("properties.{}", name.name()),
                    expected: "present (any value)".into(),
                    actual: "absent".into(),
                });
            }
        }
    }
}

fn codes(
    list: &Option<Vec<Code>>,
    map: impl Fn(ReasonCode) -> ReasonCode,
) -> Option<Vec<ReasonCode>> {
    list.as_ref().map(|l| l.iter().map(|c| map(c.0)).collect())
}

/// Every difference between `expect` and `packet` (empty: the packet matches).
pub fn mismatches(
    expect: &ExpectStep,
    packet: &Packet,
    version: Version,
    prefix: &Prefixer,
) -> Vec<Mismatch> {
    let kind = format!("{:?}", packet.packet_type());
    let mut d = Diff {
        out: Vec::new(),
        kind: &kind,
    };
    if packet.packet_type() != expect.packet.0 {
        d.out.push(Mismatch {
            field: "packet".into(),
            expected: format!("{:?}", expect.packet.0),
            actual: kind.clone(),
        });
        return d.out;
    }
    let reason = expect.reason.map(|c| c.0);
    let publish_fields = expect.topic.is_some()
        || expect.payload.is_some()
        || expect.payload_hex.is_some()
        || expect.qos.is_some()
        || expect.retain.is_some()
        || expect.dup.is_some();
    match packet {
        Packet::Publish(p) => {
            // [MQTT-4.7.3-1] topics are compared exactly, after the run prefix.
            d.field(
                "topic",
                expect.topic.as_deref().map(|t| prefix.topic(t)),
                p.topic.to_string(),
            );
            if let Some(text) = &expect.payload {
                if p.payload != text.0 {
                    d.out.push(Mismatch {
                        field: "payload".into(),
                        expected: format!("{:?}", text.as_str()),
                        actual: format!("{:?}", String::from_utf8_lossy(&p.payload)),
                    });
                }
            }
            d.field(
                "payload_hex",
                expect.payload_hex.as_ref().map(|h| &h.0[..]),
                &p.payload[..],
            );
            d.field("qos", expect.qos.map(|q| q.0.as_u8()), p.qos.as_u8());
            d.field("retain", expect.retain, p.retain);
            d.field("dup", expect.dup, p.dup);
            d.field("packet_id", expect.packet_id, p.packet_id);
            d.not_applicable("reason", reason.is_some());
            d.not_applicable("codes", expect.codes.is_some());
            d.not_applicable("session_present", expect.session_present.is_some());
        }
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("codes", expect.codes.is_some());
            d.not_applicable("session_present", expect.session_present.is_some());
            d.field("packet_id", expect.packet_id, r.packet_id);
            d.field("reason", reason, r.reason);
        }
        Packet::ConnAck(c) => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("codes", expect.codes.is_some());
            d.not_applicable("packet_id", expect.packet_id.is_some());
            match version {
                Version::V5 => d.field("reason", reason, c.code),
                // Named by the 3.1.1 table: 0x02 is "identifier rejected", not "Granted QoS 2".
                Version::V311 => d.field(
                    "reason",
                    reason.map(|r| V3ReturnCode(connack_code(r, version))),
                    V3ReturnCode(c.code),
                ),
            }
            d.field("session_present", expect.session_present, c.session_present);
        }
        Packet::SubAck(s) => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("reason", reason.is_some());
            d.not_applicable("session_present", expect.session_present.is_some());
            d.field("packet_id", expect.packet_id, s.packet_id);
            d.field(
                "codes",
                codes(&expect.codes, |c| suback_code(c, version)),
                s.reason_codes.clone(),
            );
        }
        Packet::UnsubAck(u) => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("reason", reason.is_some());
            d.not_applicable("session_present", expect.session_present.is_some());
            d.field("packet_id", expect.packet_id, u.packet_id);
            if version == Version::V5 {
                d.field("codes", codes(&expect.codes, |c| c), u.reason_codes.clone());
            }
        }
        Packet::Disconnect(Disconnect { reason: code, .. })
        | Packet::Auth(Auth { reason: code, .. }) => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("codes", expect.codes.is_some());
            d.not_applicable("packet_id", expect.packet_id.is_some());
            d.field("reason", reason, *code);
        }
        Packet::PingResp | Packet::PingReq => {
            d.not_applicable("topic/payload/qos/retain/dup", publish_fields);
            d.not_applicable("reason", reason.is_some());
            d.not_applicable("packet_id", expect.packet_id.is_some());
            d.not_applicable("properties", expect.properties.is_some());
        }
        Packet::Connect(_) | Packet::Subscribe(_) | Packet::Unsubscribe(_) => {
            d.not_applicable("fields", publish_fields || reason.is_some());
        }
    }
    if let Some(properties) = compared_properties(packet) {
        d.properties(
            expect.properties.as_ref(),
            &expect.absent,
            &expect.present,
            properties,
            prefix,
        );
    }
    d.out
}

/// The properties an `expect` step compares: those of every packet a broker sends that
/// carries some (PINGRESP has none; CONNECT, SUBSCRIBE and UNSUBSCRIBE are never expected).
fn compared_properties(packet: &Packet) -> Option<&Properties> {
    match packet {
        Packet::Publish(p) => Some(&p.properties),
        Packet::PubAck(r) | Packet::PubRec(r) | Packet::PubRel(r) | Packet::PubComp(r) => {
            Some(&r.properties)
        }
        Packet::ConnAck(c) => Some(&c.properties),
        Packet::SubAck(s) => Some(&s.properties),
        Packet::UnsubAck(u) => Some(&u.properties),
        Packet::Disconnect(x) => Some(&x.properties),
        Packet::Auth(x) => Some(&x.properties),
        Packet::Connect(_)
        | Packet::Subscribe(_)
        | Packet::Unsubscribe(_)
        | Packet::PingReq
        | Packet::PingResp => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use reference_broker::codec::{ConnAck, PubResponse, Publish, QoS, SubAck};
    use rstest::rstest;

    fn expect(yaml: &str) -> ExpectStep {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn publish(topic: &str, payload: &str, qos: QoS, retain: bool) -> Packet {
        Packet::Publish(Publish {
            dup: false,
            qos,
            retain,
            topic: topic.into(),
            packet_id: if qos == QoS::AtMostOnce { 0 } else { 1 },
            properties: Default::default(),
            payload: Bytes::from(payload.to_string()),
        })
    }

    fn p() -> Prefixer {
        Prefixer::new("r", 0, "c")
    }

    #[test]
    fn matching_publish_has_no_mismatch() {
        let e = expect("{client: s, topic: a/b, payload: hi, qos: 1, retain: false}");
        let pkt = publish("mqttc/r-0/c/a/b", "hi", QoS::AtLeastOnce, false);
        assert_eq!(mismatches(&e, &pkt, Version::V5, &p()), vec![]);
    }

    #[rstest]
    #[case::wrong_topic("{client: s, topic: a/b}", "topic")]
    #[case::unprefixed_topic_is_not_enough("{client: s, topic: mqttc/r-0/c/x}", "topic")]
    #[case::wrong_payload("{client: s, payload: bye}", "payload")]
    #[case::wrong_payload_hex("{client: s, payload_hex: '6869ff'}", "payload_hex")]
    #[case::wrong_qos("{client: s, qos: 0}", "qos")]
    #[case::wrong_retain("{client: s, retain: true}", "retain")]
    #[case::wrong_dup("{client: s, dup: true}", "dup")]
    #[case::missing_property(
        "{client: s, properties: {message_expiry_interval: 5}}",
        "properties.message_expiry_interval"
    )]
    #[case::wrong_kind("{client: s, packet: puback}", "packet")]
    #[case::reason_on_publish("{client: s, reason: 0}", "reason")]
    fn publish_mismatch_is_reported(#[case] yaml: &str, #[case] field: &str) {
        let pkt = publish("mqttc/r-0/c/x", "hi", QoS::AtLeastOnce, false);
        let m = mismatches(&expect(yaml), &pkt, Version::V5, &p());
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].field, field);
    }

    #[test]
    fn absent_property_present_fails() {
        let mut pkt = publish("mqttc/r-0/c/x", "hi", QoS::AtMostOnce, false);
        if let Packet::Publish(p) = &mut pkt {
            p.properties.message_expiry_interval = Some(3);
        }
        let e = expect("{client: s, absent: [message_expiry_interval]}");
        let m = mismatches(&e, &pkt, Version::V5, &p());
        assert_eq!(m[0].field, "properties.message_expiry_interval");
        assert_eq!(m[0].expected, "absent");
    }

    #[test]
    fn ack_reason_and_id_are_compared() {
        let pkt = Packet::PubAck(PubResponse {
            packet_id: 4,
            reason: ReasonCode::NO_MATCHING_SUBSCRIBERS,
            properties: Default::default(),
        });
        let ok =
            expect("{client: s, packet: puback, packet_id: 4, reason: no_matching_subscribers}");
        assert!(mismatches(&ok, &pkt, Version::V5, &p()).is_empty());
        let bad = expect("{client: s, packet: puback, packet_id: 5, reason: 0}");
        let fields: Vec<_> = mismatches(&bad, &pkt, Version::V5, &p())
            .into_iter()
            .map(|m| m.field)
            .collect();
        assert_eq!(fields, vec!["packet_id", "reason"]);
    }

    #[test]
    fn connack_codes_map_to_v3_return_codes() {
        let pkt = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode(5),
            properties: Default::default(),
        });
        let e = expect("{client: s, packet: connack, reason: not_authorized}");
        assert!(mismatches(&e, &pkt, Version::V311, &p()).is_empty());
        assert_eq!(mismatches(&e, &pkt, Version::V5, &p()).len(), 1);
    }

    #[test]
    fn v3_connack_mismatches_name_codes_by_the_v3_table() {
        let pkt = Packet::ConnAck(ConnAck {
            session_present: false,
            code: ReasonCode(2),
            properties: Default::default(),
        });
        let e = expect("{client: s, packet: connack, reason: 0}");
        let m = mismatches(&e, &pkt, Version::V311, &p());
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].actual, "0x02 (identifier rejected)");
        assert_eq!(m[0].expected, "0x00 (Connection Accepted)");
    }

    #[test]
    fn suback_codes_are_compared_in_order() {
        let pkt = Packet::SubAck(SubAck {
            packet_id: 1,
            properties: Default::default(),
            reason_codes: vec![ReasonCode(1), ReasonCode(0x80)],
        });
        let ok = expect("{client: s, packet: suback, codes: [1, 0x87]}");
        assert!(mismatches(&ok, &pkt, Version::V311, &p()).is_empty());
        assert_eq!(mismatches(&ok, &pkt, Version::V5, &p()).len(), 1);
        let swapped = expect("{client: s, packet: suback, codes: [0x80, 1]}");
        assert_eq!(mismatches(&swapped, &pkt, Version::V311, &p()).len(), 1);
    }
}
