//! A case on a broker whose Maximum QoS is below the QoS the case uses without declaring it
//! (`requires: [qos1]`/`[qos2]`). The runner never sends a PUBLISH above the Maximum QoS
//! (MQTT-3.2.2-11), nor a will above it (MQTT-3.2.2-12): the case runs with those capped, when
//! its point survives; else it is skipped, with the reason. Subscriptions keep the QoS they
//! request: a server MUST accept a SUBSCRIBE above its Maximum QoS and grant less
//! (MQTT-3.2.2-10, MQTT-3.8.4-6), which the `subscribe` step accepts.

use reference_broker::codec::{PacketType, QoS};

use crate::scenario::{ClientPacket, ExpectStep, LoadedCase, Qos, Step, SubackExpect, Version};

/// What to do with a case under a Maximum QoS.
#[derive(Debug)]
pub enum QosFit {
    /// The case sends nothing above the Maximum QoS.
    Fits,
    /// The case runs with its QoS capped (the case as changed).
    Capped(Box<LoadedCase>),
    /// The case's point needs a QoS above the Maximum QoS: why it is skipped.
    Skip(String),
}

/// The highest QoS of the PUBLISH packets and wills of `case` under `version`.
pub fn used_qos(case: &LoadedCase, version: Version) -> u8 {
    let wills = case
        .scenario
        .clients
        .values()
        .filter_map(|c| c.will.as_ref().map(|w| w.qos.0 as u8));
    let steps = steps_of(case, version).flat_map(|s| -> Vec<u8> {
        match s {
            Step::Publish(p) => vec![p.qos.0 as u8],
            Step::Send(s) if s.packet == ClientPacket::Publish => vec![s.qos.0 as u8],
            _ => Vec::new(),
        }
    });
    wills.chain(steps).max().unwrap_or(0)
}

fn steps_of(case: &LoadedCase, version: Version) -> impl Iterator<Item = &Step> {
    case.scenario
        .steps
        .iter()
        .filter(move |s| s.only().is_none_or(|v| v == version))
}

/// The QoS whose flow an acknowledgement belongs to (PUBACK 1; PUBREC, PUBREL, PUBCOMP 2;
/// anything else 0).
fn ack_qos(kind: PacketType) -> u8 {
    match kind {
        PacketType::PubAck => 1,
        PacketType::PubRec | PacketType::PubRel | PacketType::PubComp => 2,
        _ => 0,
    }
}

/// Why an expectation only holds above QoS `max`, if it does.
fn expectation_needs(e: &ExpectStep, max: u8) -> Option<String> {
    // With `granted`, `qos` is the published QoS, capped with the PUBLISH it names.
    if let Some(q) = e.qos.filter(|q| q.0 as u8 > max && e.granted.is_none()) {
        return Some(format!("expects a delivery at QoS {}", q.0 as u8));
    }
    if ack_qos(e.packet.0) > max {
        return Some(format!("expects a {:?}", e.packet.0));
    }
    let granted_above = e
        .codes
        .as_ref()
        .is_some_and(|codes| codes.iter().any(|c| c.0 .0 > max && c.0 .0 <= 2));
    granted_above.then(|| "expects a SUBACK granting more".to_string())
}

/// Why the case's point needs QoS above `max` under `version`, if it does.
fn point_needs(case: &LoadedCase, version: Version, max: u8) -> Option<String> {
    steps_of(case, version).find_map(|s| match s {
        Step::Expect(e) => expectation_needs(e, max),
        Step::ExpectOneOf(o) => o
            .alternatives
            .iter()
            .flatten()
            .find_map(|e| expectation_needs(e, max)),
        Step::Send(s) => match s.packet {
            kind if ack_qos(kind.packet_type()) > max => {
                Some(format!("sends a {:?} by hand", s.packet))
            }
            ClientPacket::Publish if s.qos.0 as u8 > max => {
                Some(format!("sends a QoS {} PUBLISH by hand", s.qos.0 as u8))
            }
            _ => None,
        },
        Step::Subscribe(s) => match &s.expect {
            Some(SubackExpect::Codes(codes)) => codes
                .iter()
                .any(|c| c.0 .0 > max && c.0 .0 <= 2)
                .then(|| "expects a SUBACK granting more".to_string()),
            _ => None,
        },
        Step::Publish(p) if p.qos.0 as u8 > max && p.expect.reason.is_some() => {
            Some("expects a reason code in the acknowledgement".into())
        }
        Step::SendRaw(_) => None,
        _ => None,
    })
}

fn cap(q: &mut Qos, max: QoS) {
    if q.0 > max {
        q.0 = max;
    }
}

/// How `case` runs under `version` on a broker whose Maximum QoS is `max` (`source` says who
/// says so, for the skip reason).
pub fn fit(case: &LoadedCase, version: Version, max: u8, source: &str) -> QosFit {
    // Only a case that needs no QoS above the maximum is judged on such a broker: a delivery
    // or a SUBACK above it cannot come, whether the case publishes above it or not.
    if let Some(why) = point_needs(case, version, max) {
        return QosFit::Skip(format!(
            "{why}, but the broker's Maximum QoS is {max} ({source})"
        ));
    }
    if used_qos(case, version) <= max {
        return QosFit::Fits;
    }
    let Some(limit) = QoS::from_u8(max) else {
        return QosFit::Fits;
    };
    let mut capped = case.clone();
    let scenario = std::sync::Arc::make_mut(&mut capped.scenario);
    for client in scenario.clients.values_mut() {
        if let Some(w) = client.will.as_mut() {
            cap(&mut w.qos, limit);
        }
    }
    for step in &mut scenario.steps {
        match step {
            Step::Publish(p) => cap(&mut p.qos, limit),
            Step::Send(s) if s.packet == ClientPacket::Publish => cap(&mut s.qos, limit),
            Step::Expect(e) if e.granted.is_some() => {
                if let Some(q) = e.qos.as_mut() {
                    cap(q, limit);
                }
            }
            _ => {}
        }
    }
    // Reports show tags: a capped run says so.
    scenario.tags.push(format!("qos-capped-{max}"));
    scenario.description = format!(
        "{} (Run with QoS capped at {max}: the broker's Maximum QoS ({source}).)",
        scenario.description.trim_end()
    );
    QosFit::Capped(Box::new(capped))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn case(steps: &str) -> LoadedCase {
        let text = format!(
            "name: c\nversions: [\"3.1.1\", \"5\"]\nclients: {{a: {{will: {{topic: w, qos: 1}}}}, b: {{}}}}\nsteps:\n{steps}"
        );
        crate::scenario::parse_str(&text, std::path::Path::new("f.yaml"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn incidental_qos_is_capped_everywhere_it_is_sent() {
        let c = case(
            "  - connect: {client: a}\n  - subscribe: {client: b, filters: [{filter: t, qos: 2}]}\n  - publish: {client: a, topic: t, payload: x, qos: 1}\n  - expect: {client: b, topic: t, payload: x}\n",
        );
        assert_eq!(used_qos(&c, Version::V5), 1);
        let QosFit::Capped(capped) = fit(&c, Version::V5, 0, "the profile") else {
            panic!("expected a capped case");
        };
        assert_eq!(used_qos(&capped, Version::V5), 0);
        // The subscription keeps its QoS 2 request (MQTT-3.2.2-10: a lower grant is legal).
        let Step::Subscribe(s) = &capped.scenario.steps[1] else {
            panic!("a subscribe step");
        };
        assert_eq!(s.filters[0].qos.0 as u8, 2);
        assert!(capped.scenario.description.contains("capped at 0"));
        assert!(capped.scenario.tags.contains(&"qos-capped-0".to_string()));
        assert!(matches!(fit(&c, Version::V5, 2, "x"), QosFit::Fits));
    }

    #[test]
    fn a_point_that_needs_the_qos_is_skipped_with_the_reason() {
        let c = case(
            "  - connect: {client: a}\n  - publish: {client: a, topic: t, qos: 1, await_ack: false}\n  - expect: {client: a, packet: puback}\n",
        );
        let QosFit::Skip(why) = fit(
            &c,
            Version::V311,
            0,
            "a SUBSCRIBE at QoS 2 was granted QoS 0",
        ) else {
            panic!("expected a skip");
        };
        assert!(why.contains("Maximum QoS is 0"), "{why}");
        let delivered = case(
            "  - subscribe: {client: b, filters: [{filter: t, qos: 1}]}\n  - expect: {client: b, topic: t, qos: 1}\n",
        );
        assert!(matches!(
            fit(&delivered, Version::V5, 0, "x"),
            QosFit::Skip(_)
        ));
    }
}
