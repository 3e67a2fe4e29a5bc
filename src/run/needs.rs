//! What a case needs of a broker's limits, computed from its typed steps at plan time: the
//! deepest topic (with the run's prefix), the largest packet it sends, the highest Keep Alive,
//! how long a session must outlive its connection, and how many QoS 1/2 messages it keeps in
//! flight towards and from one client. `limits` holds these against the broker's ceilings.

use std::collections::BTreeMap;

use reference_broker::codec::{encoded_len, Packet, Properties, Publish, QoS};

use super::plan::estimated_duration;
use super::prefix::Prefixer;
use crate::scenario::{ClientPacket, ExpectStep, LoadedCase, Step, Version};

/// One need: how much, and which step or client needs it (for the skip reason).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// How much (levels, bytes, seconds, messages); `u32::MAX` for "no limit at all" (Keep
    /// Alive 0, a session that never expires).
    pub value: u32,
    /// What needs it: `step 4 (publish) sends a 2100-byte PUBLISH`.
    pub what: String,
}

/// What a case needs under one version; `None` where it needs nothing of that limit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Levels of its deepest topic name or filter, the run's prefix included.
    pub topic_levels: Option<Need>,
    /// Bytes of the largest packet it sends.
    pub packet_size: Option<Need>,
    /// The highest Keep Alive of its clients (`u32::MAX` for Keep Alive 0).
    pub keep_alive: Option<Need>,
    /// The highest Keep Alive of the CONNECT packets it sends as raw bytes (which the plan
    /// cannot lower).
    pub raw_keep_alive: Option<Need>,
    /// Seconds a session must outlive its connection (a reconnect, a delayed will).
    pub session: Option<Need>,
    /// QoS 1/2 messages in flight towards one client that does not acknowledge them itself.
    pub inflight_out: Option<Need>,
    /// QoS 1/2 PUBLISH packets in flight from one client.
    pub inflight_in: Option<Need>,
}

/// Keep the larger need.
fn raise(slot: &mut Option<Need>, value: u32, what: impl FnOnce() -> String) {
    if slot.as_ref().is_none_or(|n| value > n.value) {
        *slot = Some(Need {
            value,
            what: what(),
        });
    }
}

/// The steps of `case` under `version`, with their 1-based number in the case (as failure
/// reports number them).
fn steps(case: &LoadedCase, version: Version) -> impl Iterator<Item = (usize, &Step)> {
    case.scenario
        .steps
        .iter()
        .enumerate()
        .filter(move |(_, s)| s.only().is_none_or(|v| v == version))
        .map(|(i, s)| (i + 1, s))
}

/// A prefixer as long as the run's (a run id has 6 characters; the index up to 5 digits).
fn prefixer(case: &LoadedCase, topic_root: &str) -> Prefixer {
    Prefixer::rooted(topic_root, "000000", 99_999, &case.scenario.name)
}

/// Levels of `topic` as the broker sees it under `prefixer`: a shared subscription's
/// `$share/<group>/` is not part of its filter (MQTT 5 section 4.8.2).
fn levels(prefixer: &Prefixer, topic: &str) -> u32 {
    let full = prefixer.topic(topic);
    let filter = full
        .strip_prefix("$share/")
        .and_then(|rest| rest.split_once('/'))
        .map_or(full.as_str(), |(_, f)| f);
    u32::try_from(filter.split('/').count()).unwrap_or(u32::MAX)
}

/// The topic names and filters a step sends.
fn step_topics(step: &Step) -> Vec<&str> {
    match step {
        Step::Publish(p) => vec![p.topic.as_str()],
        Step::Subscribe(s) => s.filters.iter().map(|f| f.filter.as_str()).collect(),
        Step::Unsubscribe(u) => u.filters.iter().map(String::as_str).collect(),
        Step::Send(s) => s
            .topic
            .iter()
            .map(String::as_str)
            .chain(s.filters.iter().map(|f| f.filter.as_str()))
            .collect(),
        Step::SendRaw(r) => r.hex.topics().collect(),
        _ => Vec::new(),
    }
}

fn topic_levels(case: &LoadedCase, version: Version, p: &Prefixer, needs: &mut Needs) {
    for (n, step) in steps(case, version) {
        for topic in step_topics(step) {
            let l = levels(p, topic);
            raise(&mut needs.topic_levels, l, || {
                format!(
                    "step {n} ({}) uses `{topic}`, {l} topic levels with the run's prefix",
                    step.keyword()
                )
            });
        }
    }
    for (name, client) in &case.scenario.clients {
        if let Some(w) = &client.will {
            let l = levels(p, &w.topic);
            raise(&mut needs.topic_levels, l, || {
                format!(
                    "client {name}'s will topic `{}` has {l} topic levels with the run's prefix",
                    w.topic
                )
            });
        }
    }
}

/// The encoded size of a PUBLISH of `payload` to `topic` under `version`.
fn publish_size(
    p: &Prefixer,
    version: Version,
    topic: &str,
    qos: QoS,
    properties: Properties,
    payload: bytes::Bytes,
) -> u32 {
    let publish = Publish {
        dup: false,
        qos,
        retain: false,
        topic: p.topic(topic).into(),
        packet_id: u16::from(qos != QoS::AtMostOnce),
        properties: properties.into(),
        payload,
    };
    let len = encoded_len(&Packet::Publish(publish), version.protocol());
    u32::try_from(len).unwrap_or(u32::MAX)
}

fn packet_size(case: &LoadedCase, version: Version, p: &Prefixer, needs: &mut Needs) {
    let props = |spec: &crate::scenario::PropsSpec| {
        if version == Version::V5 {
            spec.to_properties(&|t| p.topic(t))
        } else {
            Properties::default()
        }
    };
    for (n, step) in steps(case, version) {
        let size = match step {
            Step::Publish(s) => publish_size(
                p,
                version,
                &s.topic,
                s.qos.0,
                props(&s.properties),
                s.payload_bytes(),
            ),
            Step::Send(s) if s.packet == ClientPacket::Publish => publish_size(
                p,
                version,
                s.topic.as_deref().unwrap_or_default(),
                s.qos.0,
                props(&s.properties),
                s.payload.0.clone(),
            ),
            Step::SendRaw(r) => {
                let bytes = r
                    .hex
                    .expand(&|t| p.topic(t), &|c| Some(p.client_id(c, None)))
                    .unwrap_or_default();
                u32::try_from(bytes.len()).unwrap_or(u32::MAX)
            }
            _ => continue,
        };
        raise(&mut needs.packet_size, size, || {
            format!("step {n} ({}) sends a {size}-byte packet", step.keyword())
        });
    }
    for (name, client) in &case.scenario.clients {
        if let Some(w) = &client.will {
            // The will travels in the CONNECT: at least the size of its PUBLISH.
            let size = publish_size(
                p,
                version,
                &w.topic,
                w.qos.0,
                props(&w.properties),
                w.payload.0.clone(),
            );
            raise(&mut needs.packet_size, size, || {
                format!("client {name}'s CONNECT carries a will of {size} bytes or more")
            });
        }
    }
}

/// The clients `case` connects under `version`, with how many times.
fn connections(case: &LoadedCase, version: Version) -> BTreeMap<&str, usize> {
    let mut count = BTreeMap::new();
    for (_, step) in steps(case, version) {
        if let Step::Connect(c) = step {
            *count.entry(c.client.as_str()).or_insert(0) += 1;
        }
    }
    count
}

fn keep_alive(case: &LoadedCase, version: Version, needs: &mut Needs) {
    for name in connections(case, version).keys() {
        let Some(client) = case.scenario.clients.get(*name) else {
            continue;
        };
        let (value, what) = match client.keep_alive {
            0 => (
                u32::MAX,
                format!("client {name} connects with Keep Alive 0 (none)"),
            ),
            k => (
                u32::from(k),
                format!("client {name} connects with Keep Alive {k} s"),
            ),
        };
        raise(&mut needs.keep_alive, value, || what);
    }
}

/// The Keep Alive of `bytes` when they start with a CONNECT (fixed header, Remaining Length,
/// Protocol Name, Protocol Level, Connect Flags, Keep Alive).
pub(super) fn raw_connect_keep_alive(bytes: &[u8]) -> Option<u16> {
    if bytes.first()? >> 4 != 1 {
        return None;
    }
    let mut i = 1;
    while bytes.get(i)? & 0x80 != 0 {
        i += 1;
    }
    i += 1;
    let name = usize::from(u16::from_be_bytes([*bytes.get(i)?, *bytes.get(i + 1)?]));
    let at = i + 2 + name + 2;
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

fn raw_keep_alive(case: &LoadedCase, version: Version, p: &Prefixer, needs: &mut Needs) {
    for (n, step) in steps(case, version) {
        let Step::SendRaw(r) = step else {
            continue;
        };
        let Ok(bytes) = r
            .hex
            .expand(&|t| p.topic(t), &|c| Some(p.client_id(c, None)))
        else {
            continue;
        };
        let Some(k) = raw_connect_keep_alive(&bytes) else {
            continue;
        };
        let value = if k == 0 { u32::MAX } else { u32::from(k) };
        raise(&mut needs.raw_keep_alive, value, || {
            format!("step {n} (send_raw) sends a CONNECT with Keep Alive {k} s")
        });
    }
}

fn session(case: &LoadedCase, version: Version, needs: &mut Needs) {
    // What the case can observe: its deliberate waits, rounded up, and a second more.
    let waits = estimated_duration(case, version).as_secs_f64().ceil();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let horizon = (waits as u32).saturating_add(1);
    let disconnect_expiry: BTreeMap<&str, u32> = steps(case, version)
        .filter_map(|(_, s)| match s {
            Step::Disconnect(d) => Some((d.client.as_str(), d.properties.session_expiry_interval?)),
            _ => None,
        })
        .collect();
    for (name, times) in connections(case, version) {
        let Some(client) = case.scenario.clients.get(name) else {
            continue;
        };
        let persistent = !client.clean_start
            || steps(case, version).any(|(_, s)| {
                matches!(s, Step::Connect(c) if c.client == name && c.clean_start == Some(false))
            });
        let expiry = match version {
            Version::V5 => client
                .properties
                .session_expiry_interval
                .unwrap_or(0)
                .max(disconnect_expiry.get(name).copied().unwrap_or(0)),
            _ if persistent => u32::MAX,
            _ => 0,
        };
        let will_delay = match version {
            Version::V5 => client
                .will
                .as_ref()
                .and_then(|w| w.properties.will_delay_interval)
                .unwrap_or(0),
            _ => 0,
        };
        if expiry == 0 || (times < 2 && will_delay == 0) {
            continue;
        }
        // The session must last as long as the case can observe it (a shorter one ends it, or
        // sends a delayed will early, within the case's waits), and never longer than the case
        // asks for.
        let (value, why) = if times >= 2 {
            (
                expiry.min(horizon),
                "it reconnects to its session".to_string(),
            )
        } else {
            (
                expiry.min(horizon).min(will_delay),
                format!("its will is delayed {will_delay} s"),
            )
        };
        raise(&mut needs.session, value, || {
            format!("client {name}'s session must last {value} s ({why})")
        });
    }
}

/// Whether an expected PUBLISH on a client that subscribed at most at `sub_qos` arrives at
/// QoS 1 or 2 (an expectation that names no QoS counts unless every subscription is QoS 0).
fn in_flight(e: &ExpectStep, sub_qos: u8) -> bool {
    e.packet.0 == reference_broker::codec::PacketType::Publish
        && e.qos.map_or(sub_qos > 0, |q| q.0 != QoS::AtMostOnce)
}

fn inflight_out(case: &LoadedCase, version: Version, needs: &mut Needs) {
    let manual: Vec<&str> = case
        .scenario
        .clients
        .iter()
        .filter(|(_, c)| !c.auto_ack)
        .map(|(n, _)| n.as_str())
        .collect();
    let mut outstanding: BTreeMap<&str, u32> = BTreeMap::new();
    let mut sub_qos: BTreeMap<&str, u8> = BTreeMap::new();
    for (n, step) in steps(case, version) {
        let mut arrivals: BTreeMap<&str, u32> = BTreeMap::new();
        match step {
            Step::Connect(c) => {
                outstanding.remove(c.client.as_str());
            }
            Step::Subscribe(s) => {
                let q = s.filters.iter().map(|f| f.qos.0 as u8).max().unwrap_or(0);
                let slot = sub_qos.entry(s.client.as_str()).or_insert(0);
                *slot = (*slot).max(q);
            }
            Step::Send(s) => match s.packet {
                ClientPacket::Subscribe => {
                    let q = s.filters.iter().map(|f| f.qos.0 as u8).max().unwrap_or(0);
                    let slot = sub_qos.entry(s.client.as_str()).or_insert(0);
                    *slot = (*slot).max(q);
                }
                ClientPacket::Puback | ClientPacket::Pubcomp => {
                    if let Some(o) = outstanding.get_mut(s.client.as_str()) {
                        *o = o.saturating_sub(1);
                    }
                }
                _ => {}
            },
            Step::Expect(e) => {
                let q = sub_qos.get(e.client.as_str()).copied().unwrap_or(0);
                if in_flight(e, q) {
                    arrivals.insert(e.client.as_str(), 1);
                }
            }
            Step::ExpectOneOf(o) => {
                for alternative in &o.alternatives {
                    let mut these: BTreeMap<&str, u32> = BTreeMap::new();
                    for e in alternative {
                        let q = sub_qos.get(e.client.as_str()).copied().unwrap_or(0);
                        if in_flight(e, q) {
                            *these.entry(e.client.as_str()).or_insert(0) += 1;
                        }
                    }
                    for (c, k) in these {
                        let slot = arrivals.entry(c).or_insert(0);
                        *slot = (*slot).max(k);
                    }
                }
            }
            _ => {}
        }
        for (client, k) in arrivals {
            if !manual.contains(&client) {
                continue;
            }
            let o = outstanding.entry(client).or_insert(0);
            *o += k;
            let value = *o;
            raise(&mut needs.inflight_out, value, || {
                format!(
                    "at step {n} ({}) client {client} holds {value} unacknowledged QoS 1/2 messages",
                    step.keyword()
                )
            });
        }
    }
}

/// A QoS 1/2 PUBLISH a client has sent and not seen completed: by its Packet Identifier when
/// the case names it (a re-sent PUBLISH with the same identifier is the same message), else
/// by the step that sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Unacked {
    Id(u16),
    Step(usize),
}

fn inflight_in(case: &LoadedCase, version: Version, needs: &mut Needs) {
    use reference_broker::codec::PacketType;
    let mut outstanding: BTreeMap<&str, Vec<Unacked>> = BTreeMap::new();
    for (n, step) in steps(case, version) {
        let (client, id, completes) = match step {
            Step::Connect(c) => {
                outstanding.remove(c.client.as_str());
                continue;
            }
            Step::Publish(p) if p.qos.0 != QoS::AtMostOnce => {
                (p.client.as_str(), p.packet_id, p.await_ack)
            }
            Step::Send(s) if s.packet == ClientPacket::Publish && s.qos.0 != QoS::AtMostOnce => {
                (s.client.as_str(), s.packet_id, false)
            }
            Step::Expect(e) if matches!(e.packet.0, PacketType::PubAck | PacketType::PubComp) => {
                if let Some(o) = outstanding.get_mut(e.client.as_str()) {
                    // The acknowledged one when the case names it, else the oldest.
                    match e
                        .packet_id
                        .and_then(|id| o.iter().position(|u| *u == Unacked::Id(id)))
                    {
                        Some(i) => {
                            o.remove(i);
                        }
                        None if !o.is_empty() => {
                            o.remove(0);
                        }
                        None => {}
                    }
                }
                continue;
            }
            _ => continue,
        };
        let o = outstanding.entry(client).or_default();
        let key = id.map_or(Unacked::Step(n), Unacked::Id);
        let known = o.contains(&key);
        let value = u32::try_from(o.len() + usize::from(!known)).unwrap_or(u32::MAX);
        if !completes && !known {
            o.push(key);
        }
        raise(&mut needs.inflight_in, value, || {
            format!(
                "at step {n} ({}) client {client} has {value} QoS 1/2 PUBLISH packets unacknowledged",
                step.keyword()
            )
        });
    }
}

/// What `case` needs under `version` when its topics are rooted under `topic_root`.
pub fn needs(case: &LoadedCase, version: Version, topic_root: &str) -> Needs {
    let p = prefixer(case, topic_root);
    let mut needs = Needs::default();
    topic_levels(case, version, &p, &mut needs);
    packet_size(case, version, &p, &mut needs);
    keep_alive(case, version, &mut needs);
    raw_keep_alive(case, version, &p, &mut needs);
    session(case, version, &mut needs);
    inflight_out(case, version, &mut needs);
    inflight_in(case, version, &mut needs);
    needs
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn case(clients: &str, steps: &str) -> LoadedCase {
        let text =
            format!("name: c\nversions: [\"3.1.1\", \"5\"]\nclients: {clients}\nsteps:\n{steps}");
        crate::scenario::parse_str(&text, std::path::Path::new("f.yaml"))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn topic_depth_counts_the_prefix_and_not_the_share_part() {
        let c = case(
            "{a: {}}",
            "  - connect: {client: a}\n  - subscribe: {client: a, filters: [{filter: \"$share/g/x/y\"}]}\n  - publish: {client: a, topic: a/b/c/d}\n",
        );
        let n = needs(&c, Version::V5, "mqttc");
        // mqttc/<run>-<n>/c/a/b/c/d
        assert_eq!(n.topic_levels.as_ref().map(|n| n.value), Some(7));
        assert!(n.topic_levels.unwrap().what.starts_with("step 3 (publish)"));
        let rooted = needs(&c, Version::V5, "lab/conformance");
        assert_eq!(rooted.topic_levels.map(|n| n.value), Some(8));
    }

    #[test]
    fn packet_size_is_the_encoded_publish() {
        let payload = "x".repeat(300);
        let c = case(
            "{a: {}}",
            &format!("  - connect: {{client: a}}\n  - publish: {{client: a, topic: t, payload: {payload}}}\n"),
        );
        let size = needs(&c, Version::V311, "mqttc").packet_size.unwrap().value;
        assert!((300..400).contains(&size), "{size}");
    }

    #[test]
    fn keep_alive_zero_needs_no_limit() {
        let c = case(
            "{a: {keep_alive: 0}, b: {}}",
            "  - connect: {client: a}\n  - connect: {client: b}\n",
        );
        assert_eq!(
            needs(&c, Version::V5, "mqttc").keep_alive.map(|n| n.value),
            Some(u32::MAX)
        );
        let d = case("{b: {}}", "  - connect: {client: b}\n");
        assert_eq!(
            needs(&d, Version::V5, "mqttc").keep_alive.map(|n| n.value),
            Some(60)
        );
    }

    #[test]
    fn a_raw_connect_keeps_its_keep_alive() {
        let c = case(
            "{c: {}}",
            "  - send_raw: {client: c, hex: \"10 ${remaining_length} 00 04 4d 51 54 54 04 ${connect_flags:02} 00 3c ${client_id:c} ${credentials}\"}\n  - send_raw: {client: c, hex: \"c0 00\"}\n",
        );
        let n = needs(&c, Version::V311, "mqttc");
        assert_eq!(n.raw_keep_alive.as_ref().map(|n| n.value), Some(60));
        assert!(n
            .raw_keep_alive
            .unwrap()
            .what
            .starts_with("step 1 (send_raw)"));
        assert_eq!(raw_connect_keep_alive(&[0x10]), None);
    }

    #[test]
    fn a_session_is_needed_only_across_a_reconnect_or_a_delayed_will() {
        let once = case(
            "{a: {clean_start: false, properties: {session_expiry_interval: 3600}}}",
            "  - connect: {client: a}\n",
        );
        assert_eq!(needs(&once, Version::V5, "mqttc").session, None);
        let again = case(
            "{a: {clean_start: false, properties: {session_expiry_interval: 3600}}}",
            "  - connect: {client: a}\n  - disconnect: {client: a}\n  - sleep: 2s\n  - connect: {client: a, expect: {session_present: true}}\n",
        );
        assert_eq!(
            needs(&again, Version::V5, "mqttc").session.map(|n| n.value),
            Some(3)
        );
        assert_eq!(
            needs(&again, Version::V311, "mqttc")
                .session
                .map(|n| n.value),
            Some(3)
        );
        let will = case(
            "{a: {will: {topic: w, properties: {will_delay_interval: 5}}, properties: {session_expiry_interval: 10}}}",
            "  - connect: {client: a}\n  - drop: {client: a}\n  - sleep: 6s\n",
        );
        assert_eq!(
            needs(&will, Version::V5, "mqttc").session.map(|n| n.value),
            Some(5)
        );
    }

    #[test]
    fn in_flight_counts_what_a_manual_client_has_not_acknowledged() {
        let c = case(
            "{pub: {}, sub: {auto_ack: false}}",
            "  - connect: {client: sub}\n  - subscribe: {client: sub, filters: [{filter: t, qos: 1}]}\n  - publish: {client: pub, topic: t, payload: a, qos: 1}\n  - publish: {client: pub, topic: t, payload: b, qos: 1}\n  - expect: {client: sub, topic: t, payload: a, save_id: a}\n  - expect: {client: sub, topic: t, payload: b}\n  - send: {client: sub, packet: puback, packet_id_from: a}\n  - expect: {client: sub, topic: t, qos: 0}\n",
        );
        let n = needs(&c, Version::V5, "mqttc");
        assert_eq!(n.inflight_out.as_ref().map(|n| n.value), Some(2));
        assert!(n.inflight_out.unwrap().what.contains("step 6 (expect)"));
        // The publisher completes each flow before the next.
        assert_eq!(n.inflight_in.map(|n| n.value), Some(1));
        let auto = case(
            "{pub: {}, sub: {}}",
            "  - subscribe: {client: sub, filters: [{filter: t, qos: 1}]}\n  - expect: {client: sub, topic: t}\n  - expect: {client: sub, topic: t}\n",
        );
        assert_eq!(needs(&auto, Version::V5, "mqttc").inflight_out, None);
    }

    #[test]
    fn unawaited_publishes_add_up_until_acknowledged() {
        let c = case(
            "{a: {}}",
            "  - publish: {client: a, topic: t, qos: 1, await_ack: false}\n  - publish: {client: a, topic: t, qos: 2, await_ack: false}\n  - expect: {client: a, packet: puback}\n  - publish: {client: a, topic: t, qos: 1}\n",
        );
        assert_eq!(
            needs(&c, Version::V5, "mqttc").inflight_in.map(|n| n.value),
            Some(2)
        );
        // A PUBLISH re-sent with its Packet Identifier is the same message in flight.
        let resent = case(
            "{a: {auto_ack: false}}",
            "  - send: {client: a, packet: publish, topic: t, qos: 2, packet_id: 9}\n  - expect: {client: a, packet: pubrec, packet_id: 9}\n  - send: {client: a, packet: publish, topic: t, qos: 2, packet_id: 9, dup: true}\n  - send: {client: a, packet: pubrel, packet_id: 9}\n  - expect: {client: a, packet: pubcomp, packet_id: 9}\n  - send: {client: a, packet: publish, topic: t, qos: 2, packet_id: 9}\n",
        );
        assert_eq!(
            needs(&resent, Version::V5, "mqttc")
                .inflight_in
                .map(|n| n.value),
            Some(1)
        );
    }
}
