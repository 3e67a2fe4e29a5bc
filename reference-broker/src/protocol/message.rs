//! Application messages as the broker routes them: shared once, delivered many times.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::codec::{PropertyBox, Publish, QoS, TopicName};

/// One application message, shared (`Arc`) by every subscriber it is delivered to; the payload
/// is `Bytes`, so fan-out never copies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Topic name (aliases already resolved).
    pub topic: TopicName,
    /// Payload.
    pub payload: Bytes,
    /// QoS it was published with.
    pub qos: QoS,
    /// RETAIN flag it was published with.
    pub retain: bool,
    /// Properties forwarded to subscribers (no topic alias, no subscription identifiers).
    pub properties: PropertyBox,
    /// When the message expires (MQTT 5 message expiry interval), if ever.
    pub expires_at: Option<Instant>,
    /// Client id of the publisher, for No Local; `None` for wills published by the broker.
    pub publisher: Option<Arc<str>>,
}

impl Message {
    /// Build a message from a received PUBLISH whose topic alias is resolved.
    pub fn from_publish(now: Instant, publish: Publish, publisher: Option<Arc<str>>) -> Message {
        let mut properties = publish.properties;
        // Only touched when set: writing through the box would allocate an empty set.
        if properties.topic_alias.is_some() {
            properties.topic_alias = None;
        }
        if !properties.subscription_identifiers.is_empty() {
            properties.subscription_identifiers.clear();
        }
        let expires_at = properties
            .message_expiry_interval
            .and_then(|secs| now.checked_add(Duration::from_secs(u64::from(secs))));
        Message {
            topic: publish.topic,
            payload: publish.payload,
            qos: publish.qos,
            retain: publish.retain,
            properties,
            expires_at,
            publisher,
        }
    }

    /// Seconds left before expiry, rounded up; `None` if the message never expires, `Some(0)`
    /// once expired.
    pub fn remaining_expiry(&self, now: Instant) -> Option<u32> {
        self.expires_at.map(|at| {
            let left = at.saturating_duration_since(now);
            let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            u32::try_from(secs).unwrap_or(u32::MAX)
        })
    }

    /// True once the message expiry interval has passed.
    pub fn is_expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// One message on its way to one subscriber, with the QoS and flags that subscriber gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The shared message.
    pub message: Arc<Message>,
    /// min(published QoS, granted QoS).
    pub qos: QoS,
    /// RETAIN flag as sent to this subscriber.
    pub retain: bool,
    /// Subscription identifiers of every matching subscription of this subscriber (MQTT 5).
    pub subscription_ids: Vec<u32>,
}
