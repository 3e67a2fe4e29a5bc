//! A case against the broker's limits (declared by the profile, announced in the MQTT 5
//! CONNACK, or found by the probe's trying): a case that needs more than the broker allows
//! (deeper topics, a bigger packet, more messages in flight, a longer session) cannot be judged
//! there and is skipped, with a reason naming the limit and the need. A Keep Alive above the
//! ceiling is lowered to it where keep alive is not the case's point (the case then runs as
//! changed), as `qos_cap` does with QoS.

use super::needs::{needs, Need};
use crate::scenario::{LoadedCase, SendRawStep, Step, Version};
use crate::sut::ceilings::{Ceiling, Ceilings};

/// What to do with a case under the broker's limits.
#[derive(Debug)]
pub enum LimitFit {
    /// The case needs nothing above the limits.
    Fits,
    /// The case runs with its Keep Alive lowered (the case as changed).
    Adapted(Box<LoadedCase>),
    /// The case needs more than the broker allows: why it is skipped.
    Skip(String),
}

/// The reason `need` cannot be met under `limit`, if so.
fn exceeds(need: Option<&Need>, limit: Option<&Ceiling>, what: &str) -> Option<String> {
    let (need, limit) = (need?, limit?);
    (need.value > limit.value).then(|| {
        format!(
            "{}, but the broker's {what} is {} ({})",
            need.what, limit.value, limit.source
        )
    })
}

/// How `case` runs under `version` against `limits`, its topics rooted under `topic_root`.
pub fn fit(case: &LoadedCase, version: Version, limits: &Ceilings, topic_root: &str) -> LimitFit {
    let n = needs(case, version, topic_root);
    let checks = [
        (
            n.topic_levels.as_ref(),
            limits.max_topic_levels.as_ref(),
            "topic depth limit (levels)",
        ),
        (
            n.packet_size.as_ref(),
            limits.maximum_packet_size.as_ref(),
            "Maximum Packet Size",
        ),
        (
            n.session.as_ref(),
            limits.session_expiry_maximum.as_ref(),
            "highest Session Expiry Interval (s)",
        ),
        (
            n.inflight_out.as_ref(),
            limits.max_inflight.as_ref(),
            "in-flight window towards a client",
        ),
        // Receive Maximum binds an MQTT 5 client only (MQTT-3.3.4-7); 3.1.1 has none.
        (
            n.inflight_in.as_ref().filter(|_| version == Version::V5),
            limits.receive_maximum.as_ref(),
            "Receive Maximum",
        ),
    ];
    if let Some(why) = checks
        .into_iter()
        .find_map(|(need, limit, what)| exceeds(need, limit, what))
    {
        return LimitFit::Skip(why);
    }
    let keep_alive = |need| {
        exceeds(
            need,
            limits.max_keep_alive.as_ref(),
            "highest Keep Alive (s)",
        )
    };
    let Some(why) =
        keep_alive(n.keep_alive.as_ref()).or_else(|| keep_alive(n.raw_keep_alive.as_ref()))
    else {
        return LimitFit::Fits;
    };
    let Some(max) = limits
        .max_keep_alive
        .as_ref()
        .and_then(|l| u16::try_from(l.value).ok())
        .filter(|m| *m > 0)
    else {
        return LimitFit::Skip(why);
    };
    // Keep alive is the point of a case that turns it off (Keep Alive 0 is never a default)
    // or assumes (times) a Keep Alive above the ceiling on a connect: it cannot run with
    // another. Any other case keeps
    // its point with the Keep Alive above the ceiling lowered to it, as long as its waits stay
    // inside the ceiling: a lowered client is never silent long enough to be closed (the
    // broker allows one and a half times it: MQTT-3.1.2-22 in 5, MQTT-3.1.2-24 in 3.1.1), a client whose keep alive is
    // timed has one below the ceiling and keeps it, and one timed above it would need waits
    // beyond the ceiling.
    let waits = super::plan::estimated_duration(case, version);
    if assumes_lowered_keep_alive(case, max)
        || [&n.keep_alive, &n.raw_keep_alive]
            .iter()
            .any(|k| k.as_ref().is_some_and(|k| k.value == u32::MAX))
        || waits.as_secs() >= u64::from(max)
    {
        return LimitFit::Skip(why);
    }
    let mut adapted = case.clone();
    let scenario = std::sync::Arc::make_mut(&mut adapted.scenario);
    for client in scenario.clients.values_mut() {
        if client.keep_alive > max {
            client.keep_alive = max;
        }
    }
    // Raw CONNECT bytes too, where their Keep Alive is written out.
    for step in &mut scenario.steps {
        let Step::SendRaw(raw) = step else {
            continue;
        };
        if raw_keep_alive(raw).is_some_and(|k| k > max) {
            match raw.hex.with_connect_keep_alive(max) {
                Some(lowered) => raw.hex = lowered,
                None => return LimitFit::Skip(why),
            }
        }
    }
    let source = limits
        .max_keep_alive
        .as_ref()
        .map_or("", |l| l.source.as_str());
    scenario.tags.push(format!("keep-alive-capped-{max}"));
    scenario.description = format!(
        "{} (Run with Keep Alive {max} s: the broker's highest ({source}).)",
        scenario.description.trim_end()
    );
    LimitFit::Adapted(Box::new(adapted))
}

/// The Keep Alive of a raw CONNECT step, if it sends one.
fn raw_keep_alive(raw: &SendRawStep) -> Option<u16> {
    let bytes = raw
        .hex
        .expand(&|t| t.to_string(), &|c| Some(c.to_string()))
        .ok()?;
    super::needs::raw_connect_keep_alive(&bytes)
}

/// Whether a `connect` of the case assumes a Keep Alive (`assume: {keep_alive: N}`: it times
/// it) for a client whose Keep Alive would be lowered below `max` (or is 0, off).
fn assumes_lowered_keep_alive(case: &LoadedCase, max: u16) -> bool {
    case.scenario.steps.iter().any(|s| match s {
        Step::Connect(c) if c.assume.keep_alive.is_some() => case
            .scenario
            .clients
            .get(&c.client)
            .is_some_and(|spec| spec.keep_alive == 0 || spec.keep_alive > max),
        _ => false,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn case(text: &str) -> LoadedCase {
        crate::scenario::parse_str(text, std::path::Path::new("f.yaml"))
            .unwrap()
            .remove(0)
    }

    fn limits(f: impl FnOnce(&mut Ceilings)) -> Ceilings {
        let mut c = Ceilings::default();
        f(&mut c);
        c
    }

    const WINDOW_TWO: &str = "name: w\nversions: [\"5\"]\nclients: {pub: {}, sub: {auto_ack: false}}\nsteps:\n  - connect: {client: sub}\n  - subscribe: {client: sub, filters: [{filter: t, qos: 1}]}\n  - publish: {client: pub, topic: t, payload: a, qos: 1}\n  - publish: {client: pub, topic: t, payload: b, qos: 1}\n  - expect: {client: sub, topic: t, payload: a}\n  - expect: {client: sub, topic: t, payload: b}\n";

    #[test]
    fn a_case_needing_a_wider_window_is_skipped_with_the_limit_and_the_need() {
        let c = case(WINDOW_TWO);
        let one = limits(|l| l.max_inflight = Some(Ceiling::new(1u32, "the probe")));
        let LimitFit::Skip(why) = fit(&c, Version::V5, &one, "mqttc") else {
            panic!("expected a skip");
        };
        assert!(why.contains("client sub holds 2 unacknowledged"), "{why}");
        assert!(
            why.contains("in-flight window towards a client is 1 (the probe)"),
            "{why}"
        );
        let two = limits(|l| l.max_inflight = Some(Ceiling::new(2u32, "the probe")));
        assert!(matches!(
            fit(&c, Version::V5, &two, "mqttc"),
            LimitFit::Fits
        ));
        assert!(matches!(
            fit(&c, Version::V5, &Ceilings::default(), "mqttc"),
            LimitFit::Fits
        ));
    }

    #[test]
    fn deep_topics_and_big_packets_are_skipped() {
        let c = case(WINDOW_TWO);
        let shallow = limits(|l| l.max_topic_levels = Some(Ceiling::new(3u32, "the profile")));
        let LimitFit::Skip(why) = fit(&c, Version::V5, &shallow, "mqttc") else {
            panic!("expected a skip");
        };
        assert!(why.contains("4 topic levels"), "{why}");
        let small = limits(|l| l.maximum_packet_size = Some(Ceiling::new(10u32, "x")));
        assert!(matches!(
            fit(&c, Version::V5, &small, "mqttc"),
            LimitFit::Skip(_)
        ));
    }

    #[test]
    fn a_raw_connect_is_lowered_too() {
        let c = case("name: r\nversions: [\"3.1.1\"]\nclients: {c: {}}\nsteps:\n  - send_raw: {client: c, hex: \"10 ${remaining_length} 00 04 4d 51 54 54 04 ${connect_flags:02} 00 3c ${client_id:c} ${credentials}\"}\n");
        let max = limits(|l| l.max_keep_alive = Some(Ceiling::new(30u32, "the profile")));
        let LimitFit::Adapted(a) = fit(&c, Version::V311, &max, "mqttc") else {
            panic!("expected an adapted case");
        };
        let Step::SendRaw(raw) = &a.scenario.steps[0] else {
            panic!("a send_raw step");
        };
        assert_eq!(raw_keep_alive(raw), Some(30));
        assert!(matches!(
            fit(&a, Version::V311, &max, "mqttc"),
            LimitFit::Fits
        ));
    }

    #[test]
    fn keep_alive_is_lowered_unless_it_is_the_point() {
        let c = case("name: k\nversions: [\"3.1.1\"]\nclients: {a: {}, b: {keep_alive: 20}}\nsteps:\n  - connect: {client: a}\n  - connect: {client: b}\n");
        let max = limits(|l| l.max_keep_alive = Some(Ceiling::new(30u32, "the profile")));
        let LimitFit::Adapted(a) = fit(&c, Version::V311, &max, "mqttc") else {
            panic!("expected an adapted case");
        };
        let kept: Vec<u16> = a.scenario.clients.values().map(|c| c.keep_alive).collect();
        assert_eq!(kept, [30, 20]);
        assert!(a.scenario.description.contains("Keep Alive 30 s"));
        // A client timed above the ceiling needs waits beyond it.
        let timed = case("name: k\nversions: [\"3.1.1\"]\nrequires: [client_keep_alive]\nclients: {a: {keep_alive: 60}}\nsteps:\n  - connect: {client: a}\n  - expect_close: {client: a, within: 95s}\n  - sleep: 31s\n");
        let LimitFit::Skip(why) = fit(&timed, Version::V311, &max, "mqttc") else {
            panic!("expected a skip");
        };
        assert!(why.contains("Keep Alive 60 s"), "{why}");
        assert!(
            why.contains("highest Keep Alive (s) is 30 (the profile)"),
            "{why}"
        );
        // A case that assumes its Keep Alive times it: skipped, not lowered; a timed client
        // below the ceiling keeps its own while another is lowered.
        let below = case("name: k\nversions: [\"3.1.1\"]\nclients: {a: {keep_alive: 2}, w: {}}\nsteps:\n  - connect: {client: w}\n  - connect: {client: a, assume: {keep_alive: 2}}\n  - sleep: 1s\n");
        let LimitFit::Adapted(a) = fit(&below, Version::V311, &max, "mqttc") else {
            panic!("expected an adapted case");
        };
        let kept: Vec<u16> = a.scenario.clients.values().map(|c| c.keep_alive).collect();
        assert_eq!(kept, [2, 30]);
        let assumed = case("name: k\nversions: [\"3.1.1\"]\nclients: {a: {keep_alive: 60}}\nsteps:\n  - connect: {client: a, assume: {keep_alive: 60}}\n");
        assert!(matches!(
            fit(&assumed, Version::V311, &max, "mqttc"),
            LimitFit::Skip(_)
        ));
        let off = case("name: k\nversions: [\"5\"]\nclients: {a: {keep_alive: 0}}\nsteps:\n  - connect: {client: a}\n");
        let LimitFit::Skip(why) = fit(&off, Version::V5, &max, "mqttc") else {
            panic!("Keep Alive 0 is the case's point: expected a skip");
        };
        assert!(why.contains("Keep Alive 0 (none)"), "{why}");
    }
}
