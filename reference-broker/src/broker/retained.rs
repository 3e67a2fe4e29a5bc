//! The retained message store: one message per topic, replaced or deleted by later retained
//! PUBLISH packets.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::protocol::Message;
use crate::topic::matches;

/// Retained messages by topic.
#[derive(Debug, Default)]
pub struct RetainedStore {
    messages: HashMap<String, Arc<Message>>,
}

impl RetainedStore {
    /// Store, replace or delete the retained message of `msg.topic`. A new topic beyond `max`
    /// stored messages is not retained; returns false then.
    pub fn update(&mut self, msg: &Arc<Message>, max: usize) -> bool {
        if msg.payload.is_empty() {
            // [MQTT-3.3.1-10] (3.1.1) / [MQTT-3.3.1-6] (5): an empty payload removes it.
            self.messages.remove(&*msg.topic);
        } else if self.messages.len() < max || self.messages.contains_key(&*msg.topic) {
            // [MQTT-3.3.1-5] store the message, replacing any previous one.
            self.messages.insert(msg.topic.to_string(), Arc::clone(msg));
        } else {
            return false;
        }
        true
    }

    /// True when `topic` has a retained message.
    pub fn contains(&self, topic: &str) -> bool {
        self.messages.contains_key(topic)
    }

    /// Retained messages whose topic matches `filter`, expired ones pruned (none pruned when
    /// `now` is `None`).
    pub fn matching(&mut self, filter: &str, now: Option<Instant>) -> Vec<Arc<Message>> {
        let expired = |m: &Arc<Message>| now.is_some_and(|now| m.is_expired(now));
        if !filter.contains(['+', '#']) {
            if self.messages.get(filter).is_some_and(expired) {
                self.messages.remove(filter);
            }
            return self.messages.get(filter).cloned().into_iter().collect();
        }
        self.messages.retain(|_, m| !expired(m));
        let mut out: Vec<Arc<Message>> = self
            .messages
            .values()
            .filter(|m| matches(filter, &m.topic))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// Every retained message (expired ones included), by topic.
    pub fn all(&self) -> Vec<Arc<Message>> {
        let mut out: Vec<Arc<Message>> = self.messages.values().cloned().collect();
        out.sort_by(|a, b| a.topic.cmp(&b.topic));
        out
    }

    /// Number of retained messages.
    pub fn len(&self) -> usize {
        self.messages.len()
    }
}
