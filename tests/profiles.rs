//! Broker profiles and the Maximum QoS, end to end against the reference broker configured
//! as the broker the profile describes: one that requires credentials (raw CONNECT cases pass
//! with the profile's), and one whose Maximum QoS is 0 (the runner never sends a PUBLISH above
//! QoS 0; a counting proxy between the runner and the broker checks every byte).
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mqtt_conformance::profile::{Credentials, Profile};
use mqtt_conformance::run::{CaseResult, Verdict};
use mqtt_conformance::sut::{self, RunningTarget};
use reference_broker::broker::auth::hash_password;
use reference_broker::broker::config::UserConfig;
use reference_broker::broker::BrokerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn config() -> BrokerConfig {
    BrokerConfig::default_tcp(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Plan the repository's suites against `target` and run the runs whose case name is in
/// `cases` (all when empty).
async fn run_cases(target: &RunningTarget, cases: &[&str]) -> Vec<CaseResult> {
    common::run_repo_cases(
        target,
        cases,
        Duration::from_secs(15),
        Duration::from_secs(180),
    )
    .await
}

fn failures(results: &[CaseResult]) -> Vec<String> {
    results
        .iter()
        .filter(|r| r.verdict.is_failure())
        .map(|r| format!("{} {}: {:?}", r.case, r.version, r.verdict))
        .collect()
}

/// The raw CONNECT cases whose point is not the credential fields.
const RAW_CONNECT_CASES: &[&str] = &[
    "connect-client-id-short",
    "connect-unsupported-protocol-level",
    "connect-second-connect-is-protocol-error",
    "malformed-connect-reserved-flag",
    "malformed-connect-will-qos-3",
    "malformed-connect-client-id-utf8",
];

#[tokio::test]
async fn raw_connect_cases_pass_a_broker_that_requires_the_profiles_credentials() {
    let mut cfg = config();
    cfg.allow_anonymous = false;
    cfg.users.push(UserConfig {
        username: "conformance".into(),
        password_hash: hash_password(b"conformance-secret", "conformance"),
    });
    let mut target = sut::start_reference(cfg).await.unwrap();
    target.use_profile(
        Profile {
            credentials: Some(Credentials {
                username: "conformance".into(),
                password: "conformance-secret".into(),
            }),
            ..Profile::default()
        },
        true,
    );
    let results = run_cases(&target, RAW_CONNECT_CASES).await;
    assert!(
        results
            .iter()
            .filter(|r| matches!(r.verdict, Verdict::Pass))
            .count()
            >= 8,
        "{results:?}"
    );
    assert!(failures(&results).is_empty(), "{:?}", failures(&results));
    // Without the credentials the short-ClientId case is refused: the profile made the
    // difference.
    target.credentials = None;
    let bare = run_cases(&target, &["connect-client-id-short"]).await;
    // (The probe sees every version refused: the cases are skipped with that finding.)
    assert!(
        bare.iter().all(|r| !matches!(r.verdict, Verdict::Pass)),
        "{bare:?}"
    );
    target.shutdown().await;
}

/// Forwards 127.0.0.1:PORT to `upstream` and counts the PUBLISH packets at QoS 1 or 2 that
/// clients send (fixed header parsed frame by frame; a connection whose bytes stop parsing is
/// no longer counted).
async fn counting_proxy(upstream: std::net::SocketAddr) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtt://{}", listener.local_addr().unwrap());
    let above = Arc::new(AtomicUsize::new(0));
    let count = above.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let down = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                });
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                let mut in_sync = true;
                while let Ok(n) = cr.read(&mut chunk).await {
                    if n == 0 || sw.write_all(&chunk[..n]).await.is_err() {
                        break;
                    }
                    if !in_sync {
                        continue;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    loop {
                        match frame(&buf) {
                            Frame::Whole(first, len) => {
                                // QoS 1 or 2 (QoS 3 is a malformed-packet case's).
                                if first >> 4 == 3 && matches!((first >> 1) & 3, 1 | 2) {
                                    count.fetch_add(1, Ordering::SeqCst);
                                }
                                buf.drain(..len);
                            }
                            Frame::Partial => break,
                            Frame::Garbage => {
                                in_sync = false;
                                break;
                            }
                        }
                    }
                }
                let _ = sw.shutdown().await;
                let _ = down.await;
            });
        }
    });
    (url, above)
}

enum Frame {
    Whole(u8, usize),
    Partial,
    Garbage,
}

fn frame(buf: &[u8]) -> Frame {
    let Some(&first) = buf.first() else {
        return Frame::Partial;
    };
    let (mut len, mut shift) = (0usize, 0);
    for i in 1..=4 {
        let Some(&b) = buf.get(i) else {
            return Frame::Partial;
        };
        len |= usize::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            let total = 1 + i + len;
            return if buf.len() >= total {
                Frame::Whole(first, total)
            } else {
                Frame::Partial
            };
        }
    }
    Frame::Garbage
}

#[tokio::test]
async fn on_a_maximum_qos_0_broker_no_publish_above_qos_0_is_sent() {
    let mut cfg = config();
    cfg.limits.maximum_qos = 0;
    let mut target = sut::start_reference(cfg).await.unwrap();
    let upstream = target.url.trim_start_matches("mqtt://").parse().unwrap();
    let (url, above) = counting_proxy(upstream).await;
    let broker_url = std::mem::replace(&mut target.url, url);
    let results = run_cases(&target, &[]).await;
    let ran = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Pass))
        .count();
    assert!(ran > 100, "only {ran} runs passed");
    assert_eq!(
        above.load(Ordering::SeqCst),
        0,
        "a PUBLISH above QoS 0 was sent"
    );
    assert!(failures(&results).is_empty(), "{:?}", failures(&results));
    let skipped: Vec<_> = results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Skipped { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        skipped.iter().any(|r| r.contains("Maximum QoS is 0")),
        "{skipped:?}"
    );
    target.url = broker_url;
    target.shutdown().await;
}

#[tokio::test]
async fn every_topic_is_rooted_under_the_profiles_acl_root() {
    use reference_broker::broker::config::AclRule;
    let mut cfg = config();
    cfg.acl.push(AclRule {
        publish: vec!["lab/conformance/#".into()],
        subscribe: vec!["lab/conformance/#".into()],
        ..AclRule::default()
    });
    let mut target = sut::start_reference(cfg).await.unwrap();
    let profile = Profile::parse(
        "[acl]\ntopic_root = \"lab/conformance\"\n",
        std::path::Path::new("p.toml"),
    )
    .unwrap();
    target.use_profile(profile, true);
    let cases = [
        "smoke-pubsub-qos0",
        "smoke-pubsub-qos1",
        "smoke-retained",
        "smoke-wildcard-single-level",
        "smoke-will-on-drop",
        "smoke-unsubscribe-stops-delivery",
    ];
    let results = run_cases(&target, &cases).await;
    let passed = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Pass))
        .count();
    assert_eq!(passed, 2 * cases.len(), "{:?}", failures(&results));
    // Under the default root the ACL refuses them: the root made the difference.
    target.profile.acl.topic_root = None;
    let refused = run_cases(&target, &["smoke-pubsub-qos0"]).await;
    assert!(!failures(&refused).is_empty(), "{refused:?}");
    target.shutdown().await;
}

fn skip_reasons(results: &[CaseResult]) -> Vec<&str> {
    results
        .iter()
        .filter_map(|r| match &r.verdict {
            Verdict::Skipped { reason } => Some(reason.as_str()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn on_a_broker_keeping_one_message_in_flight_nothing_fails() {
    let mut cfg = config();
    cfg.limits.max_inflight = 1;
    let target = sut::start_reference(cfg).await.unwrap();
    let results = run_cases(&target, &[]).await;
    let passed = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Pass))
        .count();
    assert!(passed > 400, "only {passed} runs passed");
    assert!(failures(&results).is_empty(), "{:?}", failures(&results));
    target.shutdown().await;
}

#[tokio::test]
async fn declared_limits_skip_or_adapt_the_cases_that_need_more() {
    let mut cfg = config();
    // An MQTT 5 client asking for more is told Keep Alive 30 in its CONNACK.
    cfg.limits.max_keep_alive = Some(30);
    let mut target = sut::start_reference(cfg).await.unwrap();
    let profile = Profile::parse(
        "[limits]\nmax_keep_alive = 30\nmax_topic_levels = 5\nsession_expiry_maximum = 2\n",
        std::path::Path::new("p.toml"),
    )
    .unwrap();
    target.use_profile(profile, true);
    let results = run_cases(&target, &[]).await;
    assert!(failures(&results).is_empty(), "{:?}", failures(&results));
    let skipped = skip_reasons(&results);
    for limit in [
        "topic depth limit (levels) is 5 (the profile's max_topic_levels)",
        "highest Keep Alive (s) is 30 (the profile's max_keep_alive)",
        "highest Session Expiry Interval (s) is 2 (the profile's session_expiry_maximum)",
    ] {
        assert!(
            skipped.iter().any(|r| r.contains(limit)),
            "no skip for {limit}: {skipped:?}"
        );
    }
    // Cases whose point is not keep alive ran with it lowered.
    let passed = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Pass))
        .count();
    assert!(passed > 100, "only {passed} runs passed");
    target.shutdown().await;
}
