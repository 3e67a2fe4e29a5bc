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
