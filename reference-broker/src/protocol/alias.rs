//! Topic alias tables, one copy for every party: inbound resolution (an alias in a received
//! PUBLISH becomes its topic) and outbound assignment (a sent topic becomes an alias).

use std::collections::HashMap;

use crate::codec::{Publish, ReasonCode, TopicName};

/// Why an inbound PUBLISH's topic alias cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AliasError {
    /// [MQTT-3.3.2-8] alias 0, or [MQTT-3.3.2-9] / [MQTT-3.3.2-11] above the receiver's
    /// Topic Alias Maximum.
    #[error("topic alias {alias} outside 1..={maximum}")]
    OutOfRange {
        /// The alias received.
        alias: u16,
        /// The receiver's Topic Alias Maximum.
        maximum: u16,
    },
    /// An empty topic with an alias the sender never set on this connection.
    #[error("unknown topic alias {0}")]
    Unknown(u16),
    /// [MQTT-3.3.2-1] an empty topic without a topic alias.
    #[error("PUBLISH with an empty topic and no alias")]
    NoTopic,
}

impl AliasError {
    /// The MQTT 5 reason code a receiver closes the connection with.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            AliasError::OutOfRange { .. } => ReasonCode::TOPIC_ALIAS_INVALID,
            AliasError::Unknown(_) | AliasError::NoTopic => ReasonCode::PROTOCOL_ERROR,
        }
    }
}

/// The aliases a peer set on one connection, so that its later PUBLISHes can be read with
/// their full topic. [MQTT-3.3.2-7] a table lives as long as its network connection.
#[derive(Debug, Clone, Default)]
pub struct InboundAliases {
    maximum: u16,
    /// Allocated once the peer sets an alias: most connections never do, and the table is
    /// part of every connection's state (boxed on purpose: 8 bytes inline instead of 48).
    #[allow(clippy::box_collection)]
    topics: Option<Box<HashMap<u16, TopicName>>>,
}

impl InboundAliases {
    /// An empty table accepting aliases `1..=maximum` (the receiver's Topic Alias Maximum).
    pub fn new(maximum: u16) -> InboundAliases {
        InboundAliases {
            maximum,
            topics: None,
        }
    }

    /// Forget every alias and accept `1..=maximum` from now on (a new connection).
    pub fn reset(&mut self, maximum: u16) {
        self.maximum = maximum;
        self.topics = None;
    }

    /// Resolve `publish` in place: an alias with a topic (re)defines the alias, an alias
    /// with an empty topic takes the topic it stands for.
    pub fn resolve(&mut self, publish: &mut Publish) -> Result<(), AliasError> {
        let Some(alias) = publish.properties.topic_alias else {
            if publish.topic.is_empty() {
                return Err(AliasError::NoTopic);
            }
            return Ok(());
        };
        if alias == 0 || alias > self.maximum {
            return Err(AliasError::OutOfRange {
                alias,
                maximum: self.maximum,
            });
        }
        if publish.topic.is_empty() {
            match self.topics.as_ref().and_then(|t| t.get(&alias)) {
                Some(topic) => publish.topic = topic.clone(),
                None => return Err(AliasError::Unknown(alias)),
            }
        } else {
            self.topics
                .get_or_insert_default()
                .insert(alias, publish.topic.clone());
        }
        Ok(())
    }
}

/// The aliases this side assigned on one connection: the first PUBLISH to a topic carries
/// topic and a new alias, later ones the alias alone.
#[derive(Debug, Clone, Default)]
pub struct OutboundAliases {
    maximum: u16,
    /// Allocated with the first alias assigned (see [`InboundAliases`]).
    #[allow(clippy::box_collection)]
    aliases: Option<Box<HashMap<TopicName, u16>>>,
}

impl OutboundAliases {
    /// An empty table that assigns at most `maximum` aliases (the peer's Topic Alias
    /// Maximum; 0 assigns none).
    pub fn new(maximum: u16) -> OutboundAliases {
        OutboundAliases {
            maximum,
            aliases: None,
        }
    }

    /// Forget every alias and assign at most `maximum` from now on (a new connection).
    pub fn reset(&mut self, maximum: u16) {
        self.maximum = maximum;
        self.aliases = None;
    }

    /// Replace the topic of `publish` by an alias, or assign one while aliases are left.
    /// A PUBLISH that already carries an alias is left as it is.
    pub fn apply(&mut self, publish: &mut Publish) {
        if self.maximum == 0 || publish.properties.topic_alias.is_some() {
            return;
        }
        let aliases = self.aliases.get_or_insert_default();
        if let Some(alias) = aliases.get(&publish.topic) {
            publish.properties.topic_alias = Some(*alias);
            publish.topic = TopicName::new();
        } else if aliases.len() < usize::from(self.maximum) {
            // [MQTT-3.1.2-26] / [MQTT-3.3.2-9] / [MQTT-3.3.2-11] aliases 1..=maximum, never 0
            // ([MQTT-3.3.2-8]).
            let alias = u16::try_from(aliases.len() + 1).unwrap_or(u16::MAX);
            aliases.insert(publish.topic.clone(), alias);
            publish.properties.topic_alias = Some(alias);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::QoS;

    fn publish(topic: &str, alias: Option<u16>) -> Publish {
        let mut p = Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.into(),
            packet_id: 0,
            properties: Default::default(),
            payload: bytes::Bytes::new(),
        };
        p.properties.topic_alias = alias;
        p
    }

    #[test]
    fn inbound_aliases_define_resolve_and_reject() {
        let mut t = InboundAliases::new(2);
        let mut p = publish("a/b", Some(2));
        assert_eq!(t.resolve(&mut p), Ok(()));
        let mut p = publish("", Some(2));
        assert_eq!(t.resolve(&mut p), Ok(()));
        assert_eq!(&p.topic[..], "a/b");
        let bad = t.resolve(&mut publish("", Some(1)));
        assert_eq!(bad, Err(AliasError::Unknown(1)));
        let out = t
            .resolve(&mut publish("x", Some(3)))
            .map_err(|e| e.reason_code());
        assert_eq!(out, Err(ReasonCode::TOPIC_ALIAS_INVALID));
        let zero = t.resolve(&mut publish("x", Some(0)));
        assert!(matches!(zero, Err(AliasError::OutOfRange { alias: 0, .. })));
        assert_eq!(t.resolve(&mut publish("", None)), Err(AliasError::NoTopic));
        t.reset(2);
        assert_eq!(
            t.resolve(&mut publish("", Some(2))),
            Err(AliasError::Unknown(2))
        );
    }

    #[test]
    fn outbound_aliases_stay_within_the_maximum() {
        let mut t = OutboundAliases::new(1);
        let seen: Vec<(String, Option<u16>)> = ["a", "a", "b"]
            .into_iter()
            .map(|topic| {
                let mut p = publish(topic, None);
                t.apply(&mut p);
                (p.topic.to_string(), p.properties.topic_alias)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("a".into(), Some(1)),
                (String::new(), Some(1)),
                ("b".into(), None)
            ]
        );
        let mut none = OutboundAliases::new(0);
        let mut p = publish("a", None);
        none.apply(&mut p);
        assert_eq!(p.properties.topic_alias, None);
    }
}
