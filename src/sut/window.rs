//! Discovery by trying: the broker's in-flight window towards one client. A subscriber at QoS 1
//! that does not acknowledge counts how many of [`WINDOW_CAP`] messages from another client
//! arrive; when fewer arrive, acknowledging them must release more, or nothing is learnt
//! (the broker may have dropped them). Bounded: a few hundred milliseconds of quiet ends each
//! wait, [`WINDOW_BUDGET`] the whole trial.

use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::{Connection, Received, TransportOptions};
use reference_broker::codec::{
    Disconnect, Packet, Properties, ProtocolVersion, PubResponse, Publish, QoS, Subscribe,
    Subscription, SubscriptionOptions,
};
use serde::Serialize;
use tokio::time::Instant;

use super::probe::{session, Credentials, SUBACK_WAIT};

/// Messages the trial publishes: a window this wide or wider is "at least" this.
pub const WINDOW_CAP: u16 = 20;
/// Silence that ends a wait for more messages.
const QUIET: Duration = Duration::from_millis(300);
/// The whole trial's time budget.
pub const WINDOW_BUDGET: Duration = Duration::from_secs(4);

/// What trying showed about the in-flight window towards a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "finding", rename_all = "snake_case")]
pub enum Window {
    /// Every message of the trial arrived unacknowledged: the window is at least this.
    AtLeast {
        /// Messages that arrived.
        messages: u16,
    },
    /// This many arrived unacknowledged, and more only after they were acknowledged.
    Limit {
        /// The window.
        messages: u16,
    },
    /// Nothing learnt.
    Unknown {
        /// Why.
        why: String,
    },
}

impl Window {
    /// One line for the probe table.
    pub fn describe(&self) -> String {
        match self {
            Window::AtLeast { messages } => {
                format!("{messages} or more (all {messages} QoS 1 messages arrived unacknowledged)")
            }
            Window::Limit { messages } => format!(
                "{messages} ({messages} QoS 1 messages arrived unacknowledged, more only after PUBACKs)"
            ),
            Window::Unknown { why } => format!("not learnt: {why}"),
        }
    }

    /// The window, when trying found one.
    pub fn limit(&self) -> Option<u16> {
        match self {
            Window::Limit { messages } => Some(*messages),
            _ => None,
        }
    }
}

/// QoS 1 PUBLISH packets that arrive on `conn` (their packet ids by arrival) until `want` have
/// come, [`QUIET`] passes without one, the connection closes, or `deadline`.
async fn collect(conn: &mut Connection, want: usize, deadline: Instant) -> Vec<u16> {
    let mut ids = Vec::new();
    while ids.len() < want {
        let wait = QUIET.min(deadline.saturating_duration_since(Instant::now()));
        match conn.recv(wait).await {
            Ok(Received::Packet(Packet::Publish(p))) if p.qos != QoS::AtMostOnce => {
                ids.push(p.packet_id);
            }
            Ok(Received::Packet(_)) => {}
            _ => break,
        }
    }
    ids
}

async fn puback(conn: &mut Connection, ids: &[u16]) -> bool {
    let acks: Vec<Packet> = ids
        .iter()
        .map(|id| {
            Packet::PubAck(PubResponse {
                packet_id: *id,
                ..PubResponse::default()
            })
        })
        .collect();
    conn.send_all(&acks).await.is_ok()
}

async fn subscribed(conn: &mut Connection, topic: &str) -> Result<(), String> {
    let subscribe = Subscribe {
        packet_id: 1,
        properties: Properties::default().into(),
        subscriptions: vec![Subscription {
            filter: topic.to_string(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }],
    };
    conn.send(&Packet::Subscribe(subscribe))
        .await
        .map_err(|e| format!("the SUBSCRIBE could not be sent: {e}"))?;
    match conn.recv(SUBACK_WAIT).await {
        Ok(Received::Packet(Packet::SubAck(ack))) => match ack.reason_codes.first() {
            Some(c) if c.0 == 1 || c.0 == 2 => Ok(()),
            Some(c) => Err(format!("a SUBSCRIBE at QoS 1 got 0x{:02X}", c.0)),
            None => Err("an empty SUBACK".into()),
        },
        _ => Err("no SUBACK".into()),
    }
}

/// Publish [`WINDOW_CAP`] QoS 1 messages to `topic`, one flow at a time (never above the
/// broker's Receive Maximum).
async fn publish_all(conn: &mut Connection, topic: &str, deadline: Instant) -> Result<(), String> {
    for n in 1..=WINDOW_CAP {
        let publish = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: topic.into(),
            packet_id: n,
            properties: Properties::default().into(),
            payload: Bytes::from(format!("window {n}")),
        };
        conn.send(&Packet::Publish(publish))
            .await
            .map_err(|e| format!("PUBLISH {n} could not be sent: {e}"))?;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match conn.recv(wait).await {
                Ok(Received::Packet(Packet::PubAck(a))) if a.packet_id == n => break,
                Ok(Received::Packet(_)) => {}
                _ => return Err(format!("no PUBACK for PUBLISH {n}")),
            }
        }
    }
    Ok(())
}

async fn bye(conn: Option<Connection>) {
    if let Some(mut c) = conn {
        let _ = c.send(&Packet::Disconnect(Disconnect::default())).await;
        c.abort();
    }
}

/// Try the in-flight window towards a client on `topic` (under the run's prefix) with
/// `version`, the probe's clients named after `run_id`.
pub async fn in_flight_window(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    topic: &str,
    run_id: &str,
    credentials: Option<&Credentials>,
) -> Window {
    let deadline = Instant::now() + WINDOW_BUDGET;
    let unknown = |why: String| Window::Unknown { why };
    let Ok((mut sub, _)) = session(
        url,
        transport,
        version,
        &format!("{run_id}-probe-win-sub"),
        credentials,
    )
    .await
    else {
        return unknown("the subscriber's CONNECT was not accepted".into());
    };
    if let Err(why) = subscribed(&mut sub, topic).await {
        bye(Some(sub)).await;
        return unknown(why);
    }
    let publisher = session(
        url,
        transport,
        version,
        &format!("{run_id}-probe-win-pub"),
        credentials,
    )
    .await
    .ok()
    .map(|(c, _)| c);
    let Some(mut publisher) = publisher else {
        bye(Some(sub)).await;
        return unknown("the publisher's CONNECT was not accepted".into());
    };
    let published = publish_all(&mut publisher, topic, deadline).await;
    bye(Some(publisher)).await;
    let first = collect(&mut sub, usize::from(WINDOW_CAP), deadline).await;
    let finding = match (published, first.len()) {
        (_, n) if n == usize::from(WINDOW_CAP) => Window::AtLeast {
            messages: WINDOW_CAP,
        },
        (Err(why), _) => unknown(why),
        (Ok(()), 0) => unknown("no message arrived".into()),
        (Ok(()), n) => {
            // Acknowledging must release more: else the broker dropped them, and the number
            // says nothing about a window.
            let more = if puback(&mut sub, &first).await {
                collect(&mut sub, usize::from(WINDOW_CAP) - n, deadline).await
            } else {
                Vec::new()
            };
            let _ = puback(&mut sub, &more).await;
            match u16::try_from(n) {
                Ok(messages) if !more.is_empty() => Window::Limit { messages },
                _ => unknown(format!(
                    "{n} of {WINDOW_CAP} arrived, and none more after their PUBACKs"
                )),
            }
        }
    };
    bye(Some(sub)).await;
    finding
}
