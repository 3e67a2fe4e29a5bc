//! Deliberate defects: each breaks exactly one MUST of the specifications, by name, so that the
//! harness's `selftest` can measure which of them the suites catch (the suite's mutation score).
//!
//! Safe by construction: a defect is switched on only through [`Defects::with`], which exists
//! only with the crate feature `defects` (enabled by the harness alone). There is no TOML key
//! and no command-line flag for it, so even when cargo unifies features across the workspace
//! and the `reference-broker` binary is built with `defects`, nothing can turn one on there.
//! Without the feature, [`Defects::has`] is a constant `false` and every hook compiles away.

use crate::codec::{DecodeError, Properties, ProtocolVersion};

/// The defects that skip a malformed packet instead of closing ([`Defects::tolerates`]).
#[cfg(feature = "defects")]
const TOLERATING: &[Defect] = &[
    Defect::ReservedHeaderFlagsTolerated,
    Defect::PubrelFlagsTolerated,
    Defect::SubscribeFlagsTolerated,
    Defect::UnsubscribeFlagsTolerated,
    Defect::DisconnectFlagsTolerated,
    Defect::AuthFlagsTolerated,
    Defect::PublishQos3Tolerated,
    Defect::DupOnQos0Tolerated,
    Defect::InvalidUtf8Tolerated,
    Defect::NullCharacterTolerated,
    Defect::RemainingLengthNonMinimalTolerated,
    Defect::ConnectReservedFlagTolerated,
    Defect::WillFlagsTolerated,
    Defect::PasswordWithoutUsernameTolerated,
    Defect::WildcardTopicNameTolerated,
    Defect::EmptyTopicTolerated,
    Defect::MisplacedHashTolerated,
    Defect::MisplacedPlusTolerated,
    Defect::ZeroPacketIdTolerated,
    Defect::SubscribeWithoutFiltersTolerated,
    Defect::UnsubscribeWithoutFiltersTolerated,
    Defect::SubscriptionOptionsReservedTolerated,
    Defect::ResponseTopicWildcardTolerated,
    Defect::ConnectPayloadMismatchTolerated,
    Defect::InvalidProtocolNameTolerated,
    Defect::UnsupportedProtocolLevelTolerated,
    Defect::NoLocalOnSharedTolerated,
    Defect::InvalidShareNameTolerated,
];

/// Defines [`Defect`], [`Defect::ALL`] and [`Defect::info`] from one table, so a defect is
/// named once.
macro_rules! defects {
    ($($variant:ident => ($name:expr, $v3:expr, $v5:expr, $what:expr, $interaction:expr),)*) => {
        /// One deliberate defect. Its hook, at the point of use, is a one-line
        /// `if limits.defects.has(Defect::X)`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)] // each variant is described in `Defect::info`
        pub enum Defect {
            $($variant,)*
        }

        impl Defect {
            /// Every defect.
            pub const ALL: &'static [Defect] = &[$(Defect::$variant,)*];

            /// Name, broken statements and description.
            pub fn info(self) -> DefectInfo {
                match self {
                    $(Defect::$variant => info($name, $v3, $v5, $what, $interaction),)*
                }
            }
        }
    };
}

/// What a defect breaks and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefectInfo {
    /// Short name (`overlap-qos-from-last-subscription`).
    pub name: &'static str,
    /// The MUST it breaks, by ID: (MQTT 3.1.1, MQTT 5.0); empty where the version has none.
    pub statements: (&'static [&'static str], &'static [&'static str]),
    /// What the broker does wrong.
    pub what: &'static str,
    /// True when the defect lies in the interaction of two features.
    pub interaction: bool,
}

const fn info(
    name: &'static str,
    v3: &'static [&'static str],
    v5: &'static [&'static str],
    what: &'static str,
    interaction: bool,
) -> DefectInfo {
    DefectInfo {
        name,
        statements: (v3, v5),
        what,
        interaction,
    }
}

// Chapters 3.1-3.2 (CONNECT, CONNACK, sessions, keep alive, wills), 3.3 (PUBLISH), 3.4-3.14
// (acknowledgements, SUBSCRIBE, UNSUBSCRIBE, PING, DISCONNECT), 4 (QoS, overlap, topics,
// shared subscriptions).
#[rustfmt::skip]
defects! {
    SecondConnectAccepted => ("second-connect-accepted", &["MQTT-3.1.0-2"], &["MQTT-3.1.0-2"], "a second CONNECT on a connection is ignored instead of closing it", false),
    SessionPresentAlwaysZero => ("session-present-always-zero", &["MQTT-3.2.2-2"], &["MQTT-3.2.2-3"], "CONNACK Session Present is 0 even when a session is resumed", false),
    SessionPresentOnCleanStart => ("session-present-on-clean-start", &["MQTT-3.2.2-1"], &["MQTT-3.2.2-2"], "CONNACK Session Present is 1 with Clean Start when an old session existed", true),
    SessionPresentWrongAfterTakeover => ("session-present-wrong-after-takeover", &["MQTT-3.2.2-2"], &["MQTT-3.2.2-3"], "Session Present is 0 when the resumed session was taken over from a live connection", true),
    CleanStartKeepsSession => ("clean-start-keeps-session", &["MQTT-3.1.2-6"], &["MQTT-3.1.2-4"], "Clean Start / Clean Session 1 resumes the old session (subscriptions, queued messages)", false),
    TakeoverKeepsOldConnection => ("takeover-keeps-old-connection", &["MQTT-3.1.4-2"], &["MQTT-3.1.4-3"], "a second connection with the same client id leaves the first one open", false),
    EmptyClientIdNoCleanAccepted => ("empty-client-id-no-clean-accepted", &["MQTT-3.1.3-8"], &[], "a zero-byte ClientId with CleanSession 0 is accepted (3.1.1)", false),
    AssignedClientIdMissing => ("assigned-client-id-missing", &[], &["MQTT-3.2.2-16"], "a zero-length Client Identifier gets no Assigned Client Identifier in CONNACK", false),
    SessionNotStoredOffline => ("session-not-stored-offline", &["MQTT-3.1.2-5"], &["MQTT-3.1.2-23"], "QoS 1/2 messages for an offline persistent session are dropped", true),
    KeepAliveIgnored => ("keep-alive-ignored", &["MQTT-3.1.2-24"], &["MQTT-3.1.2-22"], "a silent client is never closed", false),
    KeepAliveDoubled => ("keep-alive-doubled", &["MQTT-3.1.2-24"], &["MQTT-3.1.2-22"], "a silent client is closed after 2.5 x Keep Alive instead of 1.5 x", false),
    KeepAliveFromConnect => ("keep-alive-from-connect", &["MQTT-3.1.2-24"], &["MQTT-3.1.2-22"], "keep alive is measured from CONNECT, not from the last packet", true),
    WillNotPublished => ("will-not-published", &["MQTT-3.1.2-8"], &["MQTT-3.1.2-8"], "the will is dropped when the network connection is lost", false),
    WillPublishedOnNormalDisconnect => ("will-published-on-normal-disconnect", &["MQTT-3.1.2-10"], &["MQTT-3.1.2-10"], "the will is published after a normal DISCONNECT", false),
    WillRetainIgnored => ("will-retain-ignored", &["MQTT-3.1.2-17"], &["MQTT-3.1.2-15"], "a will with Will Retain 1 is published as a non-retained message", true),
    WillDelayIgnored => ("will-delay-ignored", &[], &["MQTT-3.1.3-9"], "the will is published at once, whatever the Will Delay Interval", false),
    WillDelayPastSessionEnd => ("will-delay-past-session-end", &[], &["MQTT-3.1.2-8"], "the Will Delay Interval is honoured past the end of a shorter session", true),
    WillDespiteReconnect => ("will-despite-reconnect", &[], &["MQTT-3.1.3-9"], "a delayed will is published even though the session was resumed in time", true),
    KeepAliveZeroEnforced => ("keep-alive-zero-enforced", &[], &["MQTT-3.2.2-22"], "Keep Alive 0 (off) is enforced as 1 s without a Server Keep Alive in CONNACK", false),
    RetainedNotReplaced => ("retained-not-replaced", &["MQTT-3.3.1-5"], &["MQTT-3.3.1-5"], "a second retained message on a topic does not replace the first", false),
    RetainedEmptyNotDeleted => ("retained-empty-not-deleted", &["MQTT-3.3.1-10"], &["MQTT-3.3.1-6"], "a retained message with an empty payload does not remove the retained message", false),
    RetainedSentWithoutRetainFlag => ("retained-sent-without-retain-flag", &["MQTT-3.3.1-8"], &["MQTT-3.3.1-9"], "retained messages sent for a new subscription have RETAIN 0 (v5: lost RAP context) ", true),
    RetainFlagKeptOnLiveMessages => ("retain-flag-kept-on-live-messages", &["MQTT-3.3.1-9"], &["MQTT-3.3.1-12"], "a retained PUBLISH forwarded to an established subscription keeps RETAIN 1 without Retain As Published", true),
    RetainAsPublishedIgnored => ("retain-as-published-ignored", &[], &["MQTT-3.3.1-13"], "Retain As Published 1 forwards RETAIN 0", true),
    RetainHandlingResendOnResubscribe => ("retain-handling-1-resends", &[], &["MQTT-3.3.1-10"], "Retain Handling 1 sends retained messages again when the subscription already existed", true),
    RetainHandlingTwoSends => ("retain-handling-2-sends", &[], &["MQTT-3.3.1-11"], "Retain Handling 2 still sends retained messages", false),
    RetainedExpiredStillSent => ("retained-expired-still-sent", &[], &["MQTT-3.3.2-5"], "a retained message whose Message Expiry Interval passed is still sent to new subscribers", true),
    MessageExpiryNotDecremented => ("message-expiry-not-decremented", &[], &["MQTT-3.3.2-6"], "the Message Expiry Interval is forwarded as received, not minus the time waited", true),
    ExpiredQueuedMessageSent => ("expired-queued-message-sent", &[], &["MQTT-3.3.2-5"], "a queued message whose expiry passed is still delivered", true),
    UserPropertyOrderChanged => ("user-property-order-changed", &[], &["MQTT-3.3.2-18"], "User Properties are forwarded in reverse order", false),
    ContentTypeDropped => ("content-type-dropped", &[], &["MQTT-3.3.2-20"], "the Content Type is not forwarded", false),
    ResponseTopicDropped => ("response-topic-dropped", &[], &["MQTT-3.3.2-15"], "the Response Topic is not forwarded", false),
    CorrelationDataDropped => ("correlation-data-dropped", &[], &["MQTT-3.3.2-16"], "the Correlation Data is not forwarded", false),
    PayloadFormatDropped => ("payload-format-dropped", &[], &["MQTT-3.3.2-4"], "the Payload Format Indicator is not forwarded", false),
    TopicAliasZeroAccepted => ("topic-alias-zero-accepted", &[], &["MQTT-3.3.2-8"], "a PUBLISH with Topic Alias 0 is accepted instead of closing", false),
    ClientSubscriptionIdAccepted => ("client-subscription-id-accepted", &[], &["MQTT-3.3.4-6"], "a client PUBLISH with a Subscription Identifier is accepted", false),
    ServerAliasAboveClientMaximum => ("server-alias-above-client-maximum", &[], &["MQTT-3.3.2-11"], "the server uses topic aliases one above the client's Topic Alias Maximum", true),
    ClientMaxPacketSizeIgnored => ("client-max-packet-size-ignored", &[], &["MQTT-3.1.2-24"], "a PUBLISH larger than the client's Maximum Packet Size is sent", false),
    ReceiveMaximumIgnored => ("receive-maximum-ignored", &[], &["MQTT-3.3.4-9"], "more unacknowledged QoS 1/2 PUBLISH than the client's Receive Maximum are sent", true),
    PubackMissing => ("puback-missing", &["MQTT-4.3.2-2"], &["MQTT-4.3.2-4"], "a QoS 1 PUBLISH is routed but never acknowledged", false),
    PubcompMissing => ("pubcomp-missing", &["MQTT-4.3.3-2"], &["MQTT-4.3.3-11"], "PUBREL gets no PUBCOMP", false),
    Qos2DuplicateOnResend => ("qos2-duplicate-on-resend", &["MQTT-4.3.3-2"], &["MQTT-4.3.3-10"], "a QoS 2 PUBLISH resent before PUBREL is delivered again", true),
    SubackWrongPacketId => ("suback-wrong-packet-id", &["MQTT-3.8.4-2"], &["MQTT-3.8.4-2"], "SUBACK carries another packet identifier than the SUBSCRIBE", false),
    UnsubackMissing => ("unsuback-missing", &["MQTT-3.10.4-4"], &["MQTT-3.10.4-4"], "UNSUBSCRIBE gets no UNSUBACK", false),
    PingrespMissing => ("pingresp-missing", &["MQTT-3.12.4-1"], &["MQTT-3.12.4-1"], "PINGREQ gets no PINGRESP", false),
    SubscriptionReplaceDuplicates => ("subscription-replace-duplicates", &["MQTT-3.8.4-3"], &["MQTT-3.8.4-3"], "subscribing twice to the same filter delivers each message twice", true),
    UnsubscribeKeepsDelivering => ("unsubscribe-keeps-delivering", &["MQTT-3.10.4-2"], &["MQTT-3.10.4-2"], "UNSUBSCRIBE is acknowledged but the subscription stays", false),
    NoLocalIgnored => ("no-local-ignored", &[], &["MQTT-3.8.3-3"], "No Local 1 still sends the client its own messages", false),
    DisconnectExpiryFromZeroAccepted => ("disconnect-expiry-from-zero-accepted", &[], &["MQTT-4.1.0-2"], "DISCONNECT may turn a zero Session Expiry Interval from CONNECT into a non-zero one (a Protocol Error), so the session outlives the connection", true),
    OverlapQosFromLastSubscription => ("overlap-qos-from-last-subscription", &["MQTT-3.3.5-1"], &["MQTT-3.3.4-2"], "overlapping subscriptions: the QoS of the last matching subscription, not the highest", true),
    OverlapQosFromFirstSubscription => ("overlap-qos-from-first-subscription", &["MQTT-3.3.5-1"], &["MQTT-3.3.4-2"], "overlapping subscriptions: the QoS of the first matching subscription, not the highest", true),
    SubscriptionIdOneDropped => ("subscription-id-one-dropped", &[], &["MQTT-3.3.4-4"], "of two matching Subscription Identifiers only one is sent", true),
    DeliveredAboveGrantedQos => ("delivered-above-granted-qos", &["MQTT-3.8.4-6"], &["MQTT-3.8.4-8"], "messages are forwarded at the published QoS, not the minimum with the granted QoS", true),
    RedeliveryWithoutDup => ("redelivery-without-dup", &["MQTT-3.3.1-1"], &["MQTT-3.3.1-1"], "an unacknowledged PUBLISH resent on reconnection has DUP 0", true),
    InflightNotResent => ("inflight-not-resent", &["MQTT-4.4.0-1"], &["MQTT-4.4.0-1"], "unacknowledged QoS 1/2 PUBLISH are not resent when the session resumes", true),
    HashNotMatchingParent => ("hash-not-matching-parent", &["MQTT-3.3.2-3"], &["MQTT-3.3.2-3"], "`a/#` does not match `a` (4.7.1.2: # includes the parent level)", false),
    SharedDeliversToAll => ("shared-delivers-to-all", &[], &["MQTT-4.8.2-3"], "a shared subscription delivers each message to every member", true),
    SharedGrantedQosIgnored => ("shared-granted-qos-ignored", &[], &["MQTT-4.8.2-3"], "a shared subscription forwards at the published QoS, not the member's granted QoS", true),
    // Malformed packets tolerated: the packet is skipped and the connection stays open. Each
    // breaks the rule that makes such a packet malformed, found through
    // `DecodeError::statement` (see `Defects::tolerates`), and with it the close that
    // [MQTT-4.8.0-1] (3.1.1) / [MQTT-4.13.1-1] (5) require.
    ReservedHeaderFlagsTolerated => ("reserved-header-flags-tolerated", &["MQTT-2.2.2-2"], &["MQTT-2.1.3-1"], "a PINGREQ (or other packet without its own rule) with reserved fixed-header flags set is skipped instead of closing", false),
    PubrelFlagsTolerated => ("pubrel-flags-tolerated", &["MQTT-3.6.1-1"], &["MQTT-3.6.1-1"], "a PUBREL whose fixed-header flags are not 0010 is skipped instead of closing", false),
    SubscribeFlagsTolerated => ("subscribe-flags-tolerated", &["MQTT-3.8.1-1"], &["MQTT-3.8.1-1"], "a SUBSCRIBE whose fixed-header flags are not 0010 is skipped instead of closing", false),
    UnsubscribeFlagsTolerated => ("unsubscribe-flags-tolerated", &["MQTT-3.10.1-1"], &["MQTT-3.10.1-1"], "an UNSUBSCRIBE whose fixed-header flags are not 0010 is skipped instead of closing", false),
    DisconnectFlagsTolerated => ("disconnect-flags-tolerated", &["MQTT-3.14.1-1"], &["MQTT-3.14.1-1"], "a DISCONNECT with reserved flags set is skipped instead of closing (and publishing the will)", true),
    AuthFlagsTolerated => ("auth-flags-tolerated", &[], &["MQTT-3.15.1-1"], "an AUTH with reserved flags set is skipped instead of closing", false),
    PublishQos3Tolerated => ("publish-qos-3-tolerated", &["MQTT-3.3.1-4"], &["MQTT-3.3.1-4"], "a PUBLISH with both QoS bits set is skipped instead of closing", false),
    DupOnQos0Tolerated => ("dup-on-qos-0-tolerated", &["MQTT-3.3.1-2"], &["MQTT-3.3.1-2"], "a QoS 0 PUBLISH with DUP 1 is skipped instead of closing", false),
    InvalidUtf8Tolerated => ("invalid-utf8-tolerated", &["MQTT-1.5.3-1", "MQTT-3.1.3-4", "MQTT-3.1.3-10", "MQTT-3.1.3-11", "MQTT-3.8.3-1", "MQTT-3.10.3-1"], &["MQTT-1.5.4-1", "MQTT-1.5.7-1", "MQTT-3.1.3-4", "MQTT-3.1.3-11", "MQTT-3.1.3-12", "MQTT-3.3.2-13", "MQTT-3.3.2-19", "MQTT-3.8.3-1", "MQTT-3.10.3-1"], "a packet with an ill-formed UTF-8 string (client id, will topic, user name, topic, filter, property) is skipped instead of closing", false),
    NullCharacterTolerated => ("null-character-tolerated", &["MQTT-1.5.3-2", "MQTT-4.7.3-2"], &["MQTT-1.5.4-2", "MQTT-4.7.3-2"], "a packet with U+0000 in a UTF-8 string (topic name or filter) is skipped instead of closing", false),
    RemainingLengthNonMinimalTolerated => ("remaining-length-non-minimal-tolerated", &[], &["MQTT-1.5.5-1"], "a remaining length not in its shortest form is not treated as malformed (the connection stays open, unread)", false),
    ConnectReservedFlagTolerated => ("connect-reserved-flag-tolerated", &["MQTT-3.1.2-3"], &["MQTT-3.1.2-3"], "a CONNECT with its reserved flag set is ignored instead of closing", false),
    WillFlagsTolerated => ("will-flags-tolerated", &["MQTT-3.1.2-11", "MQTT-3.1.2-13", "MQTT-3.1.2-14", "MQTT-3.1.2-15"], &["MQTT-3.1.2-11", "MQTT-3.1.2-12", "MQTT-3.1.2-13"], "a CONNECT whose Will QoS / Will Retain disagree with the Will Flag (or Will QoS 3) is ignored instead of closing", false),
    PasswordWithoutUsernameTolerated => ("password-without-username-tolerated", &["MQTT-3.1.2-22"], &[], "a 3.1.1 CONNECT with the Password Flag but not the User Name Flag is ignored instead of closing", false),
    WildcardTopicNameTolerated => ("wildcard-topic-name-tolerated", &["MQTT-3.3.2-2"], &["MQTT-3.3.2-2"], "a PUBLISH whose topic name holds a wildcard is skipped instead of closing", false),
    EmptyTopicTolerated => ("empty-topic-tolerated", &["MQTT-4.7.3-1"], &["MQTT-4.7.3-1"], "a zero-length topic name or filter is skipped instead of closing", false),
    MisplacedHashTolerated => ("misplaced-hash-tolerated", &["MQTT-4.7.1-2"], &["MQTT-4.7.1-1"], "a filter with '#' not alone in the last level is skipped instead of closing", false),
    MisplacedPlusTolerated => ("misplaced-plus-tolerated", &["MQTT-4.7.1-3"], &["MQTT-4.7.1-2"], "a filter with '+' not a whole level is skipped instead of closing", false),
    ZeroPacketIdTolerated => ("zero-packet-id-tolerated", &["MQTT-2.3.1-1"], &["MQTT-2.2.1-3"], "a packet with packet identifier 0 is skipped instead of closing", false),
    SubscribeWithoutFiltersTolerated => ("subscribe-without-filters-tolerated", &["MQTT-3.8.3-3"], &["MQTT-3.8.3-2"], "a SUBSCRIBE without a topic filter is skipped instead of closing", false),
    UnsubscribeWithoutFiltersTolerated => ("unsubscribe-without-filters-tolerated", &["MQTT-3.10.3-2"], &["MQTT-3.10.3-2"], "an UNSUBSCRIBE without a topic filter is skipped instead of closing", false),
    SubscriptionOptionsReservedTolerated => ("subscription-options-reserved-tolerated", &["MQTT-3.8.3-4"], &["MQTT-3.8.3-5"], "a SUBSCRIBE with reserved option bits set (3.1.1: or QoS 3) is skipped instead of closing", false),
    ResponseTopicWildcardTolerated => ("response-topic-wildcard-tolerated", &[], &["MQTT-3.3.2-14"], "a PUBLISH whose Response Topic holds a wildcard is skipped instead of closing", false),
    InvalidProtocolNameTolerated => ("invalid-protocol-name-tolerated", &["MQTT-3.1.2-1"], &["MQTT-3.1.2-1"], "a CONNECT whose protocol name is not MQTT is ignored instead of closing", false),
    UnsupportedProtocolLevelTolerated => ("unsupported-protocol-level-tolerated", &["MQTT-3.1.2-2"], &["MQTT-3.1.2-2"], "a CONNECT with an unsupported protocol level is ignored: no CONNACK 0x01, no close", false),
    NoLocalOnSharedTolerated => ("no-local-on-shared-tolerated", &[], &["MQTT-3.8.3-4"], "a SUBSCRIBE with No Local on a shared subscription is skipped instead of closing", false),
    InvalidShareNameTolerated => ("invalid-share-name-tolerated", &[], &["MQTT-4.8.2-2"], "a SUBSCRIBE with an invalid ShareName is skipped: neither refused nor closed", false),
    ConnectPayloadMismatchTolerated => ("connect-payload-mismatch-tolerated", &["MQTT-3.1.2-9", "MQTT-3.1.2-18", "MQTT-3.1.2-19", "MQTT-3.1.2-20", "MQTT-3.1.2-21", "MQTT-3.1.3-3"], &["MQTT-3.1.2-9", "MQTT-3.1.2-16", "MQTT-3.1.2-17", "MQTT-3.1.2-18", "MQTT-3.1.2-19", "MQTT-3.1.3-3"], "a CONNECT whose payload lacks a field its flags announce, or carries one they do not (client id, will, user name, password), is ignored instead of closing", false),
    // Connection, authentication and delivery details, one hook each.
    PacketBeforeConnectIgnored => ("packet-before-connect-ignored", &["MQTT-3.1.0-1"], &["MQTT-3.1.0-1"], "a first packet other than CONNECT is ignored instead of closing the connection", false),
    ShortClientIdRefused => ("short-client-id-refused", &["MQTT-3.1.3-5"], &["MQTT-3.1.3-5"], "a one-byte Client Identifier is refused (0x02 / 0x85)", false),
    UnknownAuthMethodAccepted => ("unknown-auth-method-accepted", &[], &["MQTT-4.12.0-1"], "a CONNECT with an Authentication Method the server does not support is accepted", false),
    AuthMethodMissingInAuth => ("auth-method-missing-in-auth", &[], &["MQTT-4.12.0-5"], "the server's AUTH 0x18 leaves out the Authentication Method of the CONNECT", true),
    ConnackNotFitted => ("connack-not-fitted", &[], &["MQTT-3.1.2-24"], "CONNACK properties are not trimmed to the client's Maximum Packet Size", true),
    ReasonStringDespiteProblemInformation0 => ("reason-string-despite-problem-information-0", &[], &["MQTT-3.1.2-29"], "an error PUBACK / PUBREC carries a Reason String even with Request Problem Information 0", true),
    WillUserPropertyOrderChanged => ("will-user-property-order-changed", &[], &["MQTT-3.1.3-10"], "the will's User Properties are published in reverse order", true),
    Qos0ForwardedWithDup => ("qos0-forwarded-with-dup", &["MQTT-4.3.1-1"], &["MQTT-4.3.1-1"], "QoS 0 messages are forwarded with DUP 1", false),
    NonRetainedReplacesRetained => ("non-retained-replaces-retained", &["MQTT-3.3.1-12"], &["MQTT-3.3.1-8"], "a PUBLISH with RETAIN 0 replaces the retained message of its topic", true),
    UnsubscribeOnlyFirstFilter => ("unsubscribe-only-first-filter", &["MQTT-3.10.4-6"], &["MQTT-3.10.4-6"], "an UNSUBSCRIBE with several filters removes only the first subscription", false),
    BomStrippedWhenMatching => ("bom-stripped-when-matching", &["MQTT-1.5.3-3"], &["MQTT-1.5.4-3"], "U+FEFF is stripped from topic names before matching", false),
    TopicNormalisedWhenMatching => ("topic-normalised-when-matching", &["MQTT-4.7.3-4"], &["MQTT-4.7.3-4"], "a trailing '/' is stripped from topic names before matching", false),
    DollarMatchedByWildcard => ("dollar-matched-by-wildcard", &["MQTT-4.7.2-1"], &["MQTT-4.7.2-1"], "a leading wildcard matches topic names starting with '$' (the '$' is ignored when matching)", false),
    PubackErrorKeepsMessageInFlight => ("puback-error-keeps-message-in-flight", &[], &["MQTT-4.4.0-2"], "a PUBACK with an error reason code does not acknowledge: the message is sent again on reconnection", true),
    PubrelInvalidReasonCode => ("pubrel-invalid-reason-code", &[], &["MQTT-3.6.2-1"], "the server's PUBREL carries 0x10, which is not a PUBREL reason code", false),
    TopicAliasRefused => ("topic-alias-refused", &[], &["MQTT-3.3.2-12"], "a PUBLISH with a Topic Alias within the server's Topic Alias Maximum is refused (0x94)", false),
    AuthWithoutMethodIgnored => ("auth-without-method-ignored", &[], &["MQTT-4.12.0-7"], "an AUTH on a connection whose CONNECT had no Authentication Method is ignored instead of closing", false),
    InflightQos2Expired => ("inflight-qos2-expired", &[], &["MQTT-4.3.3-7"], "an unacknowledged QoS 2 PUBLISH with a Message Expiry Interval is dropped on reconnection instead of being sent again", true),
    // Caught only by the generated interaction families (scenarios/interactions/).
    AliasKeptInSession => ("alias-kept-in-session", &[], &["MQTT-3.3.2-7"], "the inbound Topic Alias table is kept with the session and restored when it is resumed", true),
    ReceiveMaximumPerQos => ("receive-maximum-per-qos", &[], &["MQTT-3.3.4-9"], "Receive Maximum is counted per QoS: a QoS 1 and a QoS 2 message can be in flight together with Receive Maximum 1", true),
    SessionExpiryMaxAsZero => ("session-expiry-max-as-zero", &[], &["MQTT-3.1.2-23"], "Session Expiry Interval 0xFFFFFFFF wraps to 0 (an overflow): the session ends with the connection", false),
    UnsubscribeDropsInflight => ("unsubscribe-drops-inflight", &["MQTT-3.10.4-3"], &["MQTT-3.10.4-3"], "UNSUBSCRIBE forgets the unacknowledged QoS 1/2 messages sent on the removed subscription", true),
}

/// The defects switched on in a broker (none, unless built with the `defects` feature and set
/// through [`Defects::with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Defects {
    #[cfg(feature = "defects")]
    on: Option<Defect>,
}

impl Defects {
    /// True when `defect` is switched on: always false without the `defects` feature.
    #[inline(always)]
    pub fn has(&self, defect: Defect) -> bool {
        #[cfg(feature = "defects")]
        {
            self.on == Some(defect)
        }
        #[cfg(not(feature = "defects"))]
        {
            let _ = defect;
            false
        }
    }

    /// The forwarding defects that alter an outgoing PUBLISH's properties, applied in one place.
    pub fn mangle_forwarded(&self, p: &mut Properties) {
        if self.has(Defect::UserPropertyOrderChanged) {
            p.user_properties.reverse();
        }
        if self.has(Defect::ContentTypeDropped) {
            p.content_type = None;
        }
        if self.has(Defect::ResponseTopicDropped) {
            p.response_topic = None;
        }
        if self.has(Defect::CorrelationDataDropped) {
            p.correlation_data = None;
        }
        if self.has(Defect::PayloadFormatDropped) {
            p.payload_format_indicator = None;
        }
    }

    /// True when a tolerating defect is on that covers `error`: the broker skips the packet
    /// instead of closing. Matched through [`DecodeError::statement`], the one mapping of
    /// decode errors to the statements they enforce; a CONNECT whose length disagrees with
    /// its flags (`awaiting_connect`) has none there and is matched by its own defect.
    pub fn tolerates(
        &self,
        error: &DecodeError,
        version: ProtocolVersion,
        awaiting_connect: bool,
    ) -> bool {
        #[cfg(feature = "defects")]
        {
            let Some(on) = self.on else {
                return false;
            };
            if !TOLERATING.contains(&on) {
                return false;
            }
            if on == Defect::ConnectPayloadMismatchTolerated {
                return awaiting_connect && matches!(error, DecodeError::LengthMismatch(_));
            }
            // Before CONNECT the version is not known yet: either numbering matches.
            let (v3, v5) = on.info().statements;
            let in_v3 = || {
                error
                    .statement(ProtocolVersion::V3_1_1)
                    .is_some_and(|s| v3.contains(&s))
            };
            let in_v5 = || {
                error
                    .statement(ProtocolVersion::V5)
                    .is_some_and(|s| v5.contains(&s))
            };
            match (awaiting_connect, version.is_v5()) {
                (true, _) => in_v3() || in_v5(),
                (false, true) => in_v5(),
                (false, false) => in_v3(),
            }
        }
        #[cfg(not(feature = "defects"))]
        {
            let _ = (error, version, awaiting_connect);
            false
        }
    }

    /// The topic name as the matching defects see it: U+FEFF removed, a trailing `/` removed,
    /// a leading `$` removed (so that `+` and `#` match it). Unchanged without them.
    pub fn topic_for_matching<'a>(&self, topic: &'a str) -> std::borrow::Cow<'a, str> {
        use std::borrow::Cow;
        if self.has(Defect::BomStrippedWhenMatching) && topic.contains('\u{FEFF}') {
            return Cow::Owned(topic.replace('\u{FEFF}', ""));
        }
        if self.has(Defect::TopicNormalisedWhenMatching) && topic.len() > 1 {
            return Cow::Borrowed(topic.strip_suffix('/').unwrap_or(topic));
        }
        if self.has(Defect::DollarMatchedByWildcard) {
            return Cow::Borrowed(topic.strip_prefix('$').unwrap_or(topic));
        }
        Cow::Borrowed(topic)
    }

    /// A broker with exactly `defect` switched on (for the harness's selftest only).
    #[cfg(feature = "defects")]
    pub fn with(defect: Defect) -> Defects {
        Defects { on: Some(defect) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_every_defect_names_a_statement() {
        let mut names = std::collections::HashSet::new();
        for d in Defect::ALL {
            let i = d.info();
            assert!(names.insert(i.name), "duplicate defect {}", i.name);
            assert!(!i.statements.0.is_empty() || !i.statements.1.is_empty());
        }
        assert!(Defect::ALL.len() >= 40);
        let interactions = Defect::ALL.iter().filter(|d| d.info().interaction).count();
        assert!(interactions * 3 >= Defect::ALL.len());
    }

    #[test]
    fn without_the_feature_nothing_is_on() {
        let d = Defects::default();
        assert!(Defect::ALL.iter().all(|x| !d.has(*x)));
    }
}
