//! Discovery against scripted brokers: a 3.1.1-only broker, a 5-only broker, one that requires
//! credentials, one that announces Maximum QoS 0, and an address where nothing listens.
#![allow(clippy::unwrap_used)]

mod scripted;

use mqtt_conformance::scenario::{Feature, Version};
use mqtt_conformance::sut::probe::Answer;
use mqtt_conformance::sut::{self as target, TargetSpec};
use reference_broker::client::TransportOptions;
use reference_broker::codec::ProtocolVersion;
use scripted::{connack_v311, connack_v5, After, ScriptedBroker};

async fn probe(url: &str) -> (target::Capabilities, target::probe::Discovery) {
    let spec = TargetSpec::External {
        url: url.to_string(),
        name: "scripted".into(),
    };
    let t = target::start(&spec).await.unwrap();
    target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap()
}

#[tokio::test]
async fn a_v311_only_broker_is_probed_and_its_v5_cases_skip_with_the_finding() {
    let broker = ScriptedBroker::start(|c| match c.protocol {
        ProtocolVersion::V3_1_1 => (connack_v311(0), After::Hold),
        _ => (connack_v311(1), After::Close),
    })
    .await;
    let (caps, found) = probe(&broker.url).await;
    assert!(matches!(
        found.answer(ProtocolVersion::V5),
        Some(Answer::Refused {
            code: 1,
            v311_form: true,
            ..
        })
    ));
    assert!(found.answer(ProtocolVersion::V3_1_1).unwrap().accepted());
    assert!(!caps.v5);
    let reason = caps.refusal(Version::V5).unwrap();
    assert!(reason.contains("3.1.1 form"), "{reason}");
    assert_eq!(caps.refusal(Version::V311), None);
}

#[tokio::test]
async fn a_v5_only_broker_refuses_3_1_1_cases() {
    let broker = ScriptedBroker::start(|c| match c.protocol {
        ProtocolVersion::V5 => (connack_v5(0, &[]), After::Hold),
        _ => (Vec::new(), After::Close),
    })
    .await;
    let (caps, found) = probe(&broker.url).await;
    assert!(caps.v5);
    assert_eq!(found.answer(ProtocolVersion::V3_1_1), Some(&Answer::Closed));
    assert!(caps
        .refusal(Version::V311)
        .unwrap()
        .contains("closed without CONNACK"));
}

#[tokio::test]
async fn credentials_are_checked_only_when_a_wrong_password_is_refused() {
    let strict = ScriptedBroker::start(|c| {
        let ok = c.username.as_deref() == Some("u") && c.password.as_deref() == Some(&b"p"[..]);
        match (c.protocol, ok) {
            (ProtocolVersion::V5, true) => (connack_v5(0, &[]), After::Hold),
            (ProtocolVersion::V5, false) => (connack_v5(0x86, &[]), After::Close),
            (_, true) => (connack_v311(0), After::Hold),
            (_, false) => (connack_v311(4), After::Close),
        }
    })
    .await;
    let url = strict.url.replace("mqtt://", "mqtt://u:p@");
    let (caps, found) = probe(&url).await;
    assert!(found.answer(ProtocolVersion::V5).unwrap().accepted());
    assert!(found.anonymous.as_ref().unwrap().refused());
    assert!(found.bad_credentials.as_ref().unwrap().refused());
    assert_eq!(caps.unmet(Feature::Authentication, Version::V5), None);
    // Without the credentials, every version is refused (and said so).
    let (caps, _) = probe(&strict.url).await;
    assert!(caps.refusal(Version::V5).unwrap().contains("0x86"));

    // A broker that accepts any password does not check passwords, credentials or not.
    let lax = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Hold)).await;
    let url = lax.url.replace("mqtt://", "mqtt://u:p@");
    let (caps, _) = probe(&url).await;
    assert!(caps.unmet(Feature::Authentication, Version::V5).is_some());
}

#[tokio::test]
async fn an_announced_maximum_qos_0_is_an_unmet_qos1() {
    // Maximum QoS (0x24) = 0, Retain Available (0x25) = 0.
    let broker =
        ScriptedBroker::start(|_| (connack_v5(0, &[0x24, 0x00, 0x25, 0x00]), After::Hold)).await;
    let (caps, found) = probe(&broker.url).await;
    assert_eq!(caps.maximum_qos, 0);
    assert!(caps.unmet(Feature::Qos1, Version::V5).is_some());
    assert!(caps.unmet(Feature::Retain, Version::V5).is_some());
    assert!(found
        .announced
        .iter()
        .any(|(k, v)| k == "maximum_qos" && v == "0"));
}

#[tokio::test]
async fn unreachable_means_no_connection_opens() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let spec = TargetSpec::External {
        url: format!("mqtt://{addr}"),
        name: "gone".into(),
    };
    let t = target::start(&spec).await.unwrap();
    let err = target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("unreachable"), "{err}");
    // A broker that answers nothing is reachable: its versions are "no answer", not an error.
}

#[tokio::test]
async fn a_refused_zero_byte_client_id_is_an_unmet_feature() {
    let broker = ScriptedBroker::start(|c| match (c.protocol, c.client_id.is_empty()) {
        (ProtocolVersion::V5, true) => (connack_v5(0x85, &[]), After::Close),
        (_, true) => (connack_v311(2), After::Close),
        (ProtocolVersion::V5, false) => (connack_v5(0, &[]), After::Hold),
        (_, false) => (connack_v311(0), After::Hold),
    })
    .await;
    let (caps, found) = probe(&broker.url).await;
    assert!(found.zero_length_client_id.as_ref().unwrap().refused());
    let reason = caps
        .unmet(Feature::ZeroLengthClientId, Version::V311)
        .unwrap();
    assert!(reason.contains("MQTT-3.1.3-6"), "{reason}");
    // The written profile says so too.
    let written = found.profile(None);
    assert_eq!(written.features.zero_length_client_id, Some(false));

    let lax = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Hold)).await;
    let (caps, _) = probe(&lax.url).await;
    assert_eq!(caps.unmet(Feature::ZeroLengthClientId, Version::V5), None);
}

#[tokio::test]
async fn a_profile_overrides_the_probe_and_lowers_the_maximum_qos() {
    let broker = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Hold)).await;
    let spec = TargetSpec::External {
        url: broker.url.clone(),
        name: "scripted".into(),
    };
    let mut t = target::start(&spec).await.unwrap();
    let text = "broker = \"scripted-x\"\n[features]\nshared_subscriptions = false\n[limits]\nmaximum_qos = 1\n[credentials]\nusername = \"u\"\npassword = \"p\"\n";
    let profile =
        mqtt_conformance::profile::Profile::parse(text, std::path::Path::new("p.toml")).unwrap();
    t.use_profile(profile, false);
    assert_eq!(t.name, "scripted-x");
    assert_eq!(t.credentials, Some(("u".into(), "p".into())));
    let (caps, _) = target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap();
    assert_eq!(caps.maximum_qos, 1);
    assert!(caps
        .unmet(Feature::Qos2, Version::V5)
        .unwrap()
        .contains("the profile"));
    assert!(caps
        .unmet(Feature::SharedSubscriptions, Version::V5)
        .is_some());
    assert_eq!(caps.unmet(Feature::Qos1, Version::V5), None);
}

fn one_case(text: &str) -> mqtt_conformance::scenario::LoadedCase {
    mqtt_conformance::scenario::parse_str(text, std::path::Path::new("f.yaml"))
        .unwrap()
        .remove(0)
}

/// Two QoS 1 messages held unacknowledged by one subscriber.
const NEEDS_TWO_IN_FLIGHT: &str = "name: two\nversions: [\"5\"]\nclients: {pub: {}, sub: {auto_ack: false}}\nsteps:\n  - connect: {client: sub}\n  - subscribe: {client: sub, filters: [{filter: t, qos: 1}]}\n  - publish: {client: pub, topic: t, payload: a, qos: 1}\n  - publish: {client: pub, topic: t, payload: b, qos: 1}\n  - expect: {client: sub, topic: t, payload: a}\n  - expect: {client: sub, topic: t, payload: b}\n";

#[tokio::test]
async fn a_broker_keeping_one_message_in_flight_is_found_and_cases_needing_more_skip() {
    use mqtt_conformance::run::limits::{fit, LimitFit};
    use mqtt_conformance::sut::window::Window;
    let mut cfg = reference_broker::broker::BrokerConfig::default_tcp(std::net::SocketAddr::from(
        ([127, 0, 0, 1], 0),
    ));
    cfg.limits.max_inflight = 1;
    let mut t = target::start_reference(cfg).await.unwrap();
    let (caps, found) = target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap();
    assert_eq!(found.in_flight, Some(Window::Limit { messages: 1 }));
    assert!(found
        .rows()
        .iter()
        .any(|(k, v)| k == "in-flight window towards a client" && v.starts_with("1 ")));
    assert_eq!(found.profile(None).limits.max_inflight, Some(1));
    let case = one_case(NEEDS_TWO_IN_FLIGHT);
    let LimitFit::Skip(why) = fit(&case, Version::V5, &caps.ceilings, &caps.topic_root) else {
        panic!("a case holding two messages in flight runs on a window of one");
    };
    assert!(why.contains("holds 2 unacknowledged"), "{why}");
    assert!(
        why.contains("in-flight window towards a client is 1 (the probe: 1 QoS 1 messages"),
        "{why}"
    );
    // A profile's value wins over the probe.
    let profile = mqtt_conformance::profile::Profile::parse(
        "[limits]\nmax_inflight = 2\n",
        std::path::Path::new("p.toml"),
    )
    .unwrap();
    t.use_profile(profile, true);
    let (caps, _) = target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap();
    assert!(matches!(
        fit(&case, Version::V5, &caps.ceilings, &caps.topic_root),
        LimitFit::Fits
    ));
    t.shutdown().await;

    // The default reference broker keeps them all in flight: nothing to skip.
    let t = target::start(&TargetSpec::Reference).await.unwrap();
    let (caps, found) = target::probe(&t, &TransportOptions::default(), "t")
        .await
        .unwrap();
    assert_eq!(found.in_flight, Some(Window::AtLeast { messages: 20 }));
    assert_eq!(caps.ceilings.max_inflight, None);
    t.shutdown().await;
}

#[tokio::test]
async fn the_probe_finds_the_deepest_topic_a_broker_accepts() {
    use mqtt_conformance::run::limits::{fit, LimitFit};
    use mqtt_conformance::sut::depth::Depth;
    let shallow = ScriptedBroker::start(|c| match c.protocol {
        ProtocolVersion::V5 => (connack_v5(0, &[]), After::Echo(12)),
        _ => (connack_v311(0), After::Echo(12)),
    })
    .await;
    let (caps, found) = probe(&shallow.url).await;
    let Some(Depth::Limit {
        accepted, refused, ..
    }) = &found.topic_depth
    else {
        panic!("{:?}", found.topic_depth);
    };
    assert_eq!((*accepted, *refused), (12, 13));
    assert_eq!(found.profile(None).limits.max_topic_levels, Some(12));
    assert_eq!(
        caps.ceilings.max_topic_levels.as_ref().map(|l| l.value),
        Some(12)
    );
    // The probe's QoS 1 messages never come back from another connection: nothing learnt
    // about the window (and no limit made up).
    assert!(matches!(
        found.in_flight,
        Some(mqtt_conformance::sut::window::Window::Unknown { .. })
    ));
    assert_eq!(caps.ceilings.max_inflight, None);
    // mqttc/<run>-<n>/deep/ + 10 levels: 13 levels.
    let deep = one_case("name: deep\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n  - subscribe: {client: a, filters: [{filter: 1/2/3/4/5/6/7/8/9/10}]}\n");
    let LimitFit::Skip(why) = fit(&deep, Version::V5, &caps.ceilings, &caps.topic_root) else {
        panic!("a 13-level case runs on a broker that accepts 12");
    };
    assert!(why.contains("13 topic levels"), "{why}");
    assert!(
        why.contains("is 12 (the probe: a topic of 13 levels got SUBACK 0x80)"),
        "{why}"
    );

    let deep_ok = ScriptedBroker::start(|_| (connack_v5(0, &[]), After::Echo(1000))).await;
    let (caps, found) = probe(&deep_ok.url).await;
    assert_eq!(found.topic_depth, Some(Depth::AtLeast { levels: 64 }));
    assert_eq!(caps.ceilings.max_topic_levels, None);
}

#[tokio::test]
async fn a_server_keep_alive_that_echoes_the_clients_imposes_nothing() {
    // Server Keep Alive (0x13): the CONNECT's own Keep Alive (ejabberd), or always 30.
    let answer = |c: &reference_broker::codec::Connect, ka: u16| match c.protocol {
        ProtocolVersion::V5 => {
            let [hi, lo] = ka.to_be_bytes();
            (connack_v5(0, &[0x13, hi, lo]), After::Hold)
        }
        _ => (connack_v311(0), After::Hold),
    };
    let echo = ScriptedBroker::start(move |c| answer(c, c.keep_alive)).await;
    let (caps, found) = probe(&echo.url).await;
    assert!(caps.unmet(Feature::ClientKeepAlive, Version::V5).is_none());
    assert!(found
        .announced
        .iter()
        .any(|(k, v)| k == "server_keep_alive" && v.contains("echoed")));
    let fixed = ScriptedBroker::start(move |c| answer(c, 30)).await;
    let (caps, _) = probe(&fixed.url).await;
    assert!(caps
        .unmet(Feature::ClientKeepAlive, Version::V5)
        .is_some_and(|r| r.contains("Server Keep Alive of 30 s")));
}
