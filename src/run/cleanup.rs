//! Retained-message hygiene: after every case execution, whatever its outcome (pass, fail,
//! timeout, harness error), the topics it published retained messages to are cleared over a
//! fresh connection, so that a retained message a failed case left behind cannot reach a
//! re-run (`--rerun-failed`), another case or another tool on the same broker.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reference_broker::client::{parse_url, Client, TransportOptions};
use reference_broker::codec::QoS;
use reference_broker::protocol::client::{ConnectOptions, Controls};
use reference_broker::topic::validate_topic_name;

use super::prefix::Prefixer;
use crate::scenario::Version;

/// The longest the clearing of one execution's retained topics may take: it never delays a
/// run by more, even on a broker that stopped answering.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(3);

/// The topics one case execution sent retained messages to (PUBLISH with RETAIN 1, or a
/// retained Will). Shared by its steps, which record, and by the runner, which clears them
/// after the case even when the case was cut short by its deadline.
#[derive(Debug, Clone)]
pub struct RetainedTopics {
    /// Only topics under this execution's prefix are cleared: an unprefixed topic may be in
    /// use by a case running beside this one.
    prefix: Prefixer,
    topics: Arc<Mutex<BTreeSet<String>>>,
}

impl RetainedTopics {
    /// An empty record for the execution with prefixes `prefix`.
    pub fn new(prefix: Prefixer) -> RetainedTopics {
        RetainedTopics {
            prefix,
            topics: Arc::default(),
        }
    }

    /// Note that a retained message was sent to `topic` (already prefixed). Invalid topic
    /// names (a malformed-packet case) and topics outside this execution are ignored.
    pub fn record(&self, topic: &str) {
        let own = self.prefix.topic_prefix();
        let ours = !own.is_empty()
            && (topic.starts_with(own)
                || topic.strip_prefix('$').is_some_and(|t| t.starts_with(own)));
        if !ours || validate_topic_name(topic).is_err() {
            return;
        }
        let mut topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.insert(topic.to_string());
    }

    /// The recorded topics, sorted.
    pub fn topics(&self) -> Vec<String> {
        let topics = self.topics.lock().unwrap_or_else(|e| e.into_inner());
        topics.iter().cloned().collect()
    }
}

/// Where and as whom the cleanup connection connects.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Broker URL (may carry credentials).
    pub url: &'a str,
    /// Transport options.
    pub transport: &'a TransportOptions,
    /// The target's credentials.
    pub credentials: Option<&'a (String, String)>,
    /// The version the case ran under (the broker accepted it).
    pub version: Version,
    /// The client id of the cleanup connection.
    pub client_id: String,
}

/// Publish a zero-length retained message to each of `topics` ([MQTT-3.3.1-6] 3.1.1,
/// [MQTT-3.3.1-6]/[MQTT-3.3.1-7] 5: it removes the retained message of the topic) over a
/// fresh connection, then DISCONNECT, within [`CLEANUP_BUDGET`]. QoS 0, so that a broker
/// whose Maximum QoS is 0 accepts it. `Err` says what went wrong, for a note on the result:
/// it never changes a verdict.
pub async fn clear(target: Target<'_>, topics: &[String]) -> Result<(), String> {
    if topics.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(CLEANUP_BUDGET, clear_now(&target, topics)).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "clearing the retained messages of {} did not finish within {CLEANUP_BUDGET:?}",
            topics.join(", ")
        )),
    }
}

async fn clear_now(target: &Target<'_>, topics: &[String]) -> Result<(), String> {
    let url = parse_url(target.url).map_err(|e| format!("cannot parse the broker URL: {e}"))?;
    let mut options =
        ConnectOptions::new(target.client_id.clone()).version(target.version.protocol());
    if let Some((user, password)) = target.credentials {
        options.username = Some(user.clone());
        options.password = Some(bytes::Bytes::from(password.clone()));
    }
    let mut client = Client::connect_with(&url, target.transport, options, Controls::default())
        .await
        .map_err(|e| {
            format!(
                "cannot connect to clear the retained messages of {}: {}",
                topics.join(", "),
                crate::sut::probe::redact_error(&e)
            )
        })?;
    for topic in topics {
        client
            .publish(topic.clone(), bytes::Bytes::new(), QoS::AtMostOnce, true)
            .await
            .map_err(|e| format!("cannot clear the retained message of {topic}: {e}"))?;
    }
    client
        .disconnect()
        .await
        .map_err(|e| format!("the cleanup connection did not close cleanly: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_topics_of_this_execution_are_recorded() {
        let r = RetainedTopics::new(Prefixer::new("r1", 0, "case"));
        r.record("mqttc/r1-0/case/b");
        r.record("mqttc/r1-0/case/a");
        r.record("mqttc/r1-0/case/a");
        r.record("$mqttc/r1-0/case/x");
        r.record("mqttc/r1-0/case/+");
        r.record("shared/topic");
        r.record("mqttc/r2.0/case/a");
        assert_eq!(
            r.topics(),
            [
                "$mqttc/r1-0/case/x",
                "mqttc/r1-0/case/a",
                "mqttc/r1-0/case/b"
            ]
        );
    }

    #[tokio::test]
    async fn a_broker_that_is_gone_gives_an_error_in_time_not_a_hang() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("mqtt://{}", listener.local_addr().unwrap());
        drop(listener);
        let transport = TransportOptions::default();
        let target = Target {
            url: &url,
            transport: &transport,
            credentials: None,
            version: Version::V5,
            client_id: "c".into(),
        };
        let started = std::time::Instant::now();
        let e = clear(target, &["mqttc/r.0/c/t".to_string()])
            .await
            .unwrap_err();
        assert!(e.contains("mqttc/r.0/c/t"), "{e}");
        assert!(started.elapsed() <= CLEANUP_BUDGET + Duration::from_millis(500));
    }
}
