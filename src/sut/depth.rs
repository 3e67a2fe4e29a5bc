//! Discovery by trying: the deepest topic the broker accepts. A client subscribes to a topic of
//! N levels (under the run's prefix) and publishes a QoS 0 message to it; the depth is
//! accepted when the message comes back. N doubles from [`FIRST_DEPTH`] up to [`DEPTH_CAP`];
//! after the first refusal (a failure SUBACK, a close, or a message not delivered where a
//! shallower one was), the limit is bisected. Each try is its own connection; the whole trial
//! is bounded by [`DEPTH_BUDGET`].

use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::{Connection, Received, TransportOptions};
use reference_broker::codec::{
    Disconnect, Packet, Properties, ProtocolVersion, Publish, QoS, Subscribe, Subscription,
    SubscriptionOptions,
};
use serde::Serialize;
use tokio::time::Instant;

use super::probe::{session, Credentials, SUBACK_WAIT};

/// The first depth tried: a broker refusing it is not judged by the trial.
pub const FIRST_DEPTH: u16 = 8;
/// The deepest topic tried.
pub const DEPTH_CAP: u16 = 64;
/// How long one try waits for its own message.
const DELIVERY_WAIT: Duration = Duration::from_secs(1);
/// The whole trial's time budget (no new try starts after it).
pub const DEPTH_BUDGET: Duration = Duration::from_secs(4);

/// What trying showed about the topic depth.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Depth {
    /// The deepest topic tried was accepted.
    AtLeast {
        /// Levels.
        levels: u16,
    },
    /// `accepted` levels worked, `refused` did not.
    Limit {
        /// The deepest accepted.
        accepted: u16,
        /// The shallowest refused.
        refused: u16,
        /// How it was refused.
        how: String,
    },
    /// Nothing learnt.
    Unknown {
        /// Why.
        why: String,
    },
}

impl Depth {
    /// One line for the probe table.
    pub fn describe(&self) -> String {
        match self {
            Depth::AtLeast { levels } => format!("{levels} levels or more (the deepest tried)"),
            Depth::Limit {
                accepted,
                refused,
                how,
            } => format!("{accepted} levels ({refused} levels: {how})"),
            Depth::Unknown { why } => format!("not learnt: {why}"),
        }
    }

    /// The deepest accepted topic, when trying found a limit.
    pub fn limit(&self) -> Option<u16> {
        match self {
            Depth::Limit { accepted, .. } => Some(*accepted),
            _ => None,
        }
    }
}

/// `base` extended with levels `l1`, `l2`, ... to `levels` levels (at least `base`'s own).
pub fn topic_of_depth(base: &str, levels: u16) -> String {
    let have = base.split('/').count();
    let mut topic = base.to_string();
    for n in have..usize::from(levels) {
        topic.push_str(&format!("/l{n}"));
    }
    topic
}

/// How one try ended.
enum Try {
    Accepted,
    Refused(String),
    /// The try could not be made (no connection).
    Failed(String),
}

async fn subscribe_and_echo(conn: &mut Connection, topic: &str) -> Try {
    let subscribe = Subscribe {
        packet_id: 1,
        properties: Properties::default().into(),
        subscriptions: vec![Subscription {
            filter: topic.to_string(),
            options: SubscriptionOptions::default(),
        }],
    };
    if conn.send(&Packet::Subscribe(subscribe)).await.is_err() {
        return Try::Refused("closed on SUBSCRIBE".into());
    }
    match conn.recv(SUBACK_WAIT).await {
        Ok(Received::Packet(Packet::SubAck(ack))) => match ack.reason_codes.first() {
            Some(c) if c.0 < 0x80 => {}
            Some(c) => return Try::Refused(format!("SUBACK 0x{:02X}", c.0)),
            None => return Try::Refused("an empty SUBACK".into()),
        },
        Ok(Received::Packet(other)) => {
            return Try::Refused(format!("{:?} instead of SUBACK", other.packet_type()))
        }
        Ok(Received::Closed) | Err(_) => {
            return Try::Refused("no SUBACK (closed or silent)".into())
        }
    }
    let publish = Publish {
        dup: false,
        qos: QoS::AtMostOnce,
        retain: false,
        topic: topic.into(),
        packet_id: 0,
        properties: Properties::default().into(),
        payload: Bytes::from_static(b"depth"),
    };
    if conn.send(&Packet::Publish(publish)).await.is_err() {
        return Try::Refused("closed on PUBLISH".into());
    }
    let deadline = Instant::now() + DELIVERY_WAIT;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        match conn.recv(wait).await {
            Ok(Received::Packet(Packet::Publish(p))) if &*p.topic == topic => return Try::Accepted,
            Ok(Received::Packet(Packet::Disconnect(d))) => {
                return Try::Refused(format!("DISCONNECT 0x{:02X} on PUBLISH", d.reason.0))
            }
            Ok(Received::Packet(_)) => {}
            Ok(Received::Closed) => return Try::Refused("closed on PUBLISH".into()),
            Err(_) => return Try::Refused(format!("not delivered within {DELIVERY_WAIT:?}")),
        }
    }
}

async fn try_depth(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    topic: &str,
    id: &str,
    credentials: Option<&Credentials>,
) -> Try {
    let Ok((mut conn, _)) = session(url, transport, version, id, credentials).await else {
        return Try::Failed("the CONNECT was not accepted".into());
    };
    let result = subscribe_and_echo(&mut conn, topic).await;
    let _ = conn.send(&Packet::Disconnect(Disconnect::default())).await;
    conn.abort();
    result
}

/// Try topic depths under `base` (the run's prefix) with `version`, the probe's client named
/// after `run_id`.
pub async fn topic_depth(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    base: &str,
    run_id: &str,
    credentials: Option<&Credentials>,
) -> Depth {
    let started = Instant::now();
    let id = format!("{run_id}-probe-depth");
    let attempt = |levels: u16| {
        let topic = topic_of_depth(base, levels);
        let id = id.clone();
        async move { try_depth(url, transport, version, &topic, &id, credentials).await }
    };
    match attempt(FIRST_DEPTH).await {
        Try::Accepted => {}
        Try::Refused(how) | Try::Failed(how) => {
            return Depth::Unknown {
                why: format!("a topic of {FIRST_DEPTH} levels: {how}"),
            }
        }
    }
    let mut accepted = FIRST_DEPTH;
    let mut refused: Option<(u16, String)> = None;
    while accepted < DEPTH_CAP && refused.is_none() && started.elapsed() < DEPTH_BUDGET {
        let next = (accepted * 2).min(DEPTH_CAP);
        match attempt(next).await {
            Try::Accepted => accepted = next,
            Try::Refused(how) => refused = Some((next, how)),
            Try::Failed(why) => return Depth::Unknown { why },
        }
    }
    let Some((mut hi, mut how)) = refused else {
        return Depth::AtLeast { levels: accepted };
    };
    while hi - accepted > 1 && started.elapsed() < DEPTH_BUDGET {
        let mid = accepted + (hi - accepted) / 2;
        match attempt(mid).await {
            Try::Accepted => accepted = mid,
            Try::Refused(h) => (hi, how) = (mid, h),
            Try::Failed(why) => return Depth::Unknown { why },
        }
    }
    Depth::Limit {
        accepted,
        refused: hi,
        how,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics_grow_to_the_asked_depth() {
        assert_eq!(topic_of_depth("a/b", 4), "a/b/l2/l3");
        assert_eq!(topic_of_depth("a/b/c", 2), "a/b/c");
        assert_eq!(topic_of_depth("r/x/probe/depth", 64).split('/').count(), 64);
    }
}
