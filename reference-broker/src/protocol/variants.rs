//! Broker variants: every choice the specifications leave to a server, as named options of the
//! broker's TOML `[variants]` table. The default of each is the broker's usual behaviour; every
//! other value is also conforming, and each names the statement or text that allows it. The
//! harness's `selftest` runs the suites against each option: a case that fails one pinned a
//! single allowed behaviour and is wrong.
//!
//! Options that are plain limits (Maximum QoS, Retain Available, Receive Maximum, ...) live in
//! `[limits]`; the named catalogue of both kinds is [`catalogue`].

use serde::Deserialize;

/// How a message matching several subscriptions of one client is delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Overlap {
    /// One copy at the highest QoS of the matching subscriptions ([MQTT-3.3.5-1] in 3.1.1,
    /// [MQTT-3.3.4-2] in 5) carrying every matching Subscription Identifier ([MQTT-3.3.4-3]).
    #[default]
    Single,
    /// One copy per matching subscription, the highest QoS first: "the Server MAY deliver
    /// further copies of the message, one for each additional matching subscription"
    /// (3.1.1 section 3.3.5, 5 section 3.3.4), each with its own identifier ([MQTT-3.3.4-4]).
    PerSubscriptionMaxFirst,
    /// One copy per matching subscription, the highest QoS last (same text; the order of the
    /// copies is not specified).
    PerSubscriptionMaxLast,
}

/// Which member of a shared subscription group receives a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SharedDistribution {
    /// Round robin over the connected members.
    #[default]
    RoundRobin,
    /// Always the first connected member (by client id): 5 section 4.8.2 leaves the choice of
    /// member to the server ("the Server is free to choose").
    StickyFirst,
    /// Always the last connected member (by client id), same text.
    StickyLast,
}

/// The form of a Client Identifier the server assigns to an empty one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AssignedId {
    /// `auto-N`.
    #[default]
    Counter,
    /// A UUID-like 36-character id: [MQTT-3.1.3-6] only asks that it be unique.
    Uuid,
    /// A 64-character id: 5 section 3.1.3.1 lets the server accept any length.
    Long,
}

/// The MQTT 5 UNSUBACK reason code for a filter the client did not subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnsubackNoSubscription {
    /// 0x11 No subscription existed.
    #[default]
    NoSubscriptionExisted,
    /// 0x00 Success: UNSUBSCRIBE of an absent filter still completes ([MQTT-3.10.4-5]: the
    /// server sends UNSUBACK "even if no Topic Subscriptions are deleted").
    Success,
}

/// The MQTT 5 PUBACK / PUBREC reason code for a message nobody subscribed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoSubscribersAck {
    /// 0x10 No matching subscribers (5 section 3.4.2.1: the server MAY use it).
    #[default]
    NoMatchingSubscribers,
    /// 0x00 Success (same text: 0x10 is only "instead of 0x00").
    Success,
}

/// What the server does before closing on a protocol error after CONNACK (MQTT 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorDisconnect {
    /// DISCONNECT with the reason code, then close.
    #[default]
    Send,
    /// Close alone: [MQTT-4.13.1-1] requires the close; the DISCONNECT is a SHOULD (5 section
    /// 4.13.1).
    CloseOnly,
}

/// How the server refuses an MQTT 5 CONNECT it does not accept (will QoS or retain it cannot
/// honour, client id, authentication, busy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RefusedConnect {
    /// CONNACK with the reason code, then close.
    #[default]
    Connack,
    /// Close alone: [MQTT-3.1.4-2] and [MQTT-4.13.1-1] require the close; the CONNACK is a MAY
    /// (5 sections 3.1.4 and 4.13.1).
    CloseOnly,
}

/// When a silent client is closed for keep alive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeepAliveGrace {
    /// At exactly one and a half times Keep Alive ([MQTT-3.1.2-24] / [MQTT-3.1.2-22]).
    #[default]
    Exact,
    /// A quarter of a second after one and a half times Keep Alive, as a server checking on a coarse
    /// timer does: the statement bounds the client's silence that must end the connection,
    /// and the cases allow a timer's resolution beyond it.
    Slack,
}

/// The choices the specifications leave to the server, as a TOML `[variants]` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Variants {
    /// Overlapping subscriptions: one copy or one per subscription.
    pub overlap: Overlap,
    /// Shared subscriptions: which member gets a message.
    pub shared_distribution: SharedDistribution,
    /// Assigned Client Identifier format.
    pub assigned_client_id: AssignedId,
    /// UNSUBACK code for an absent subscription.
    pub unsuback_no_subscription: UnsubackNoSubscription,
    /// PUBACK / PUBREC code for a message without subscribers.
    pub no_subscribers_ack: NoSubscribersAck,
    /// DISCONNECT before closing on a protocol error, or not.
    pub error_disconnect: ErrorDisconnect,
    /// How a refused MQTT 5 CONNECT is answered.
    pub refused_connect: RefusedConnect,
    /// Keep alive enforced at exactly 1.5x or with a timer's slack.
    pub keep_alive_grace: KeepAliveGrace,
    /// The server replaces topics by aliases towards clients that accept them
    /// (5 section 3.3.2.3.4: "the sender" decides; off is as conforming as on).
    pub server_topic_aliases: ServerTopicAliases,
    /// Reason Strings in DISCONNECT and CONNACK (5 sections 3.2.2.3.9, 3.14.2.2.3: MAY).
    pub reason_strings: ReasonStrings,
    /// The QoS granted to a subscription: the one requested, or less.
    pub granted_qos: GrantedQos,
}

/// The QoS the server grants a subscription, below its Maximum QoS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GrantedQos {
    /// The requested QoS, up to the Maximum QoS.
    #[default]
    Requested,
    /// At most QoS 1, while the CONNACK still announces Maximum QoS 2: "The Server might
    /// grant a lower Maximum QoS than the subscriber requested" (3.1.1 and 5, section 3.8.4).
    AtMostOne,
}

/// Whether the server uses topic aliases towards clients (its own choice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerTopicAliases {
    /// An alias per topic up to the client's Topic Alias Maximum.
    #[default]
    Use,
    /// Never.
    Never,
}

/// Whether the server adds human-readable Reason Strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReasonStrings {
    /// Added where they fit.
    #[default]
    Send,
    /// Never.
    Never,
}

/// A named variant: one allowed choice, as the broker TOML that selects it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NamedVariant {
    /// Short name (`overlap-per-subscription-max-first`).
    pub name: &'static str,
    /// The statement or text that allows the choice.
    pub allowed_by: &'static str,
    /// The broker TOML that selects it (a `[limits]` or `[variants]` table).
    pub toml: &'static str,
}

/// Every named variant; each is a TOML fragment, so the same choices are available from a
/// configuration file.
pub fn catalogue() -> &'static [NamedVariant] {
    const fn v(name: &'static str, allowed_by: &'static str, toml: &'static str) -> NamedVariant {
        NamedVariant {
            name,
            allowed_by,
            toml,
        }
    }
    const ALL: &[NamedVariant] = &[
        v("maximum-qos-0", "5 section 3.2.2.3.4 (Maximum QoS); 3.1.1 section 3.9.3 (a lower granted QoS)", "[limits]\nmaximum_qos = 0"),
        v("maximum-qos-1", "5 section 3.2.2.3.4 (Maximum QoS); 3.1.1 section 3.9.3 (a lower granted QoS)", "[limits]\nmaximum_qos = 1"),
        v("retain-unavailable", "5 section 3.2.2.3.5 (Retain Available 0)", "[limits]\nretain_available = false"),
        v("topic-alias-maximum-0", "5 section 3.2.2.3.8 (Topic Alias Maximum 0: no aliases)", "[limits]\ntopic_alias_maximum = 0"),
        v("receive-maximum-1", "5 section 3.2.2.3.3 (Receive Maximum, any value from 1)", "[limits]\nreceive_maximum = 1"),
        v("topic-alias-maximum-1", "5 section 3.2.2.3.8 (Topic Alias Maximum)", "[limits]\ntopic_alias_maximum = 1"),
        v("maximum-packet-size-256", "5 section 3.2.2.3.6 (Maximum Packet Size)", "[limits]\nmax_packet_size = 256"),
        v("receive-maximum-2", "5 section 3.2.2.3.3 (Receive Maximum)", "[limits]\nreceive_maximum = 2"),
        v("maximum-packet-size-4k", "5 section 3.2.2.3.6 (Maximum Packet Size)", "[limits]\nmax_packet_size = 4096"),
        v("session-expiry-capped-0", "5 section 3.2.2.3.2 (the server may use another Session Expiry Interval, 0: no session outlives its connection)", "[limits]\nmax_session_expiry = 0"),
        v("session-expiry-capped-2s", "5 section 3.2.2.3.2 (the server may use another Session Expiry Interval)", "[limits]\nmax_session_expiry = 2"),
        v("session-expiry-capped-30s", "5 section 3.2.2.3.2 (the server may use another Session Expiry Interval)", "[limits]\nmax_session_expiry = 30"),
        v("max-keep-alive-60", "5 section 3.2.2.3.14: a Server Keep Alive for clients asking more than 60 s or 0", "[limits]\nmax_keep_alive = 60"),
        v("inflight-window-1", "5 section 4.9 and 3.1.1 section 4.4 (the server may have fewer messages in flight)", "[limits]\nmax_inflight = 1"),
        v("queue-qos0-offline", "5 section 3.1.2.4 and 3.1.1 section 3.1.2.4 (QoS 0 messages MAY be stored)", "[limits]\nqueue_qos0 = true"),
        v("server-keep-alive-60", "5 section 3.2.2.3.14 (Server Keep Alive) [MQTT-3.2.2-21]", "[limits]\nserver_keep_alive = 60"),
        v("server-keep-alive-1", "5 section 3.2.2.3.14 (Server Keep Alive, any value) [MQTT-3.2.2-21]", "[limits]\nserver_keep_alive = 1"),
        v("max-keep-alive-1", "5 section 3.2.2.3.14: a Server Keep Alive of 1 for clients asking more or 0 (Mosquitto's max_keepalive 1)", "[limits]\nmax_keep_alive = 1"),
        v("wildcards-unavailable", "5 section 3.2.2.3.11 (Wildcard Subscription Available 0)", "[limits]\nwildcard_subscriptions = false"),
        v("shared-unavailable", "5 section 3.2.2.3.13 (Shared Subscription Available 0)", "[limits]\nshared_subscriptions = false"),
        v("subscription-ids-unavailable", "5 section 3.2.2.3.12 (Subscription Identifiers Available 0)", "[limits]\nsubscription_identifiers = false"),
        v("overlap-per-subscription-max-first", "3.1.1 section 3.3.5 / 5 section 3.3.4: further copies per subscription; [MQTT-3.3.4-4]", "[variants]\noverlap = \"per-subscription-max-first\""),
        v("overlap-per-subscription-max-last", "3.1.1 section 3.3.5 / 5 section 3.3.4: further copies per subscription, in any order", "[variants]\noverlap = \"per-subscription-max-last\""),
        v("shared-sticky-first", "5 section 4.8.2: the server chooses the member", "[variants]\nshared_distribution = \"sticky-first\""),
        v("shared-sticky-last", "5 section 4.8.2: the server chooses the member", "[variants]\nshared_distribution = \"sticky-last\""),
        v("assigned-id-uuid", "[MQTT-3.1.3-6] (5): any unique identifier", "[variants]\nassigned_client_id = \"uuid\""),
        v("assigned-id-long", "5 section 3.1.3.1: the server may allow any length", "[variants]\nassigned_client_id = \"long\""),
        v("unsuback-success-for-absent", "[MQTT-3.10.4-5]: UNSUBACK even if nothing was deleted", "[variants]\nunsuback_no_subscription = \"success\""),
        v("puback-success-without-subscribers", "5 section 3.4.2.1: 0x10 MAY be used instead of 0x00", "[variants]\nno_subscribers_ack = \"success\""),
        v("protocol-error-close-only", "5 section 4.13.1: the DISCONNECT before closing is a SHOULD", "[variants]\nerror_disconnect = \"close-only\""),
        v("refused-connect-close-only", "5 sections 3.1.4 and 4.13.1: CONNACK before closing is a MAY", "[variants]\nrefused_connect = \"close-only\""),
        v("keep-alive-slack", "[MQTT-3.1.2-24] / [MQTT-3.1.2-22]: closed after 1.5x Keep Alive, within a timer's resolution", "[variants]\nkeep_alive_grace = \"slack\""),
        v("server-topic-aliases-never", "5 section 3.3.2.3.4: the sender decides whether to use an alias", "[variants]\nserver_topic_aliases = \"never\""),
        v("reason-strings-never", "5 sections 3.2.2.3.9 and 3.14.2.2.3: a Reason String MAY be sent", "[variants]\nreason_strings = \"never\""),
        v("granted-qos-at-most-1", "3.1.1 and 5 section 3.8.4: the server might grant a lower QoS than requested", "[variants]\ngranted_qos = \"at-most-one\""),
    ];
    ALL
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::broker::BrokerConfig;

    #[test]
    fn every_named_variant_is_valid_toml_and_changes_the_default() {
        let default = BrokerConfig::from_toml_str("").unwrap();
        let mut names = std::collections::HashSet::new();
        for v in super::catalogue() {
            assert!(names.insert(v.name), "duplicate variant {}", v.name);
            let c = BrokerConfig::from_toml_str(v.toml)
                .unwrap_or_else(|e| panic!("variant {}: {e}", v.name));
            assert_ne!(c, default, "variant {} changes nothing", v.name);
        }
        assert!(names.len() >= 25);
    }
}
