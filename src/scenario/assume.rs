//! `assume:` on a `connect` step: the values of the CONNACK a case is built on. An MQTT 5
//! broker may announce values that override or limit what the client asked for (Server Keep
//! Alive, Session Expiry Interval, Receive Maximum, ...); when the CONNACK makes an assumed
//! value differ, the case has nothing to judge on that broker and is skipped, with the
//! property and its value as the reason.

use std::fmt;

use reference_broker::codec::Properties;
use schemars::JsonSchema;
use serde::Deserialize;

use super::values::Version;

/// `{min: A, max: B}`: a range of values, both ends included, either end optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// The smallest value the case holds with.
    #[serde(default)]
    pub min: Option<u32>,
    /// The largest value the case holds with.
    #[serde(default)]
    pub max: Option<u32>,
}

/// An assumed value: exactly `N`, or `{min: A, max: B}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "a number (exactly that value), or {min: N, max: N} (either end optional)"
)]
pub enum Bound {
    /// Exactly this value.
    Exactly(u32),
    /// A range, ends included.
    Range(Range),
}

impl Bound {
    /// Whether `value` is within the bound.
    pub fn holds(&self, value: u32) -> bool {
        match self {
            Bound::Exactly(v) => value == *v,
            Bound::Range(r) => r.min.is_none_or(|m| value >= m) && r.max.is_none_or(|m| value <= m),
        }
    }
}

impl fmt::Display for Bound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Bound::Exactly(v) => write!(f, "{v}"),
            Bound::Range(Range {
                min: Some(a),
                max: Some(b),
            }) => write!(f, "{a} to {b}"),
            Bound::Range(Range { min: Some(a), .. }) => write!(f, "at least {a}"),
            Bound::Range(Range { max: Some(b), .. }) => write!(f, "at most {b}"),
            Bound::Range(_) => write!(f, "any value"),
        }
    }
}

/// The CONNACK values a case is built on (`connect: {assume: ...}`). Each is the value the
/// connection runs with once the CONNACK arrived: what the CONNACK announced, else what the
/// client asked for, else the specification's default. MQTT 3.1.1 has no CONNACK properties:
/// there only `keep_alive` is checked (it is always the client's own).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnackAssume {
    /// Effective Keep Alive in seconds (0: off): the CONNACK's Server Keep Alive when it has
    /// one (the client must use it, MQTT-3.2.2-21), else the client's (MQTT-3.2.2-22).
    #[serde(default)]
    pub keep_alive: Option<Bound>,
    /// Effective Session Expiry Interval in seconds (5): the CONNACK's when it has one, else
    /// the client's CONNECT value (absent: 0).
    #[serde(default)]
    pub session_expiry_interval: Option<Bound>,
    /// The broker's Receive Maximum (5; absent: 65535).
    #[serde(default)]
    pub receive_maximum: Option<Bound>,
    /// The broker's Maximum Packet Size in bytes (5; absent: no limit).
    #[serde(default)]
    pub maximum_packet_size: Option<Bound>,
    /// The broker's Topic Alias Maximum (5; absent: 0).
    #[serde(default)]
    pub topic_alias_maximum: Option<Bound>,
    /// The broker's Maximum QoS (5; absent: 2).
    #[serde(default)]
    pub maximum_qos: Option<Bound>,
}

/// What one connection runs with once its CONNACK arrived: the client's request, overridden
/// or limited by what the CONNACK announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effective {
    /// The Keep Alive the client asked for.
    pub requested_keep_alive: u16,
    /// The Server Keep Alive of the CONNACK, if any (5).
    pub server_keep_alive: Option<u16>,
    /// The Session Expiry Interval the client asked for (5; absent: 0).
    pub requested_session_expiry: u32,
    /// The Session Expiry Interval of the CONNACK, if any (5).
    pub announced_session_expiry: Option<u32>,
    /// The broker's Receive Maximum, if announced (5).
    pub receive_maximum: Option<u16>,
    /// The broker's Maximum Packet Size, if announced (5).
    pub maximum_packet_size: Option<u32>,
    /// The broker's Topic Alias Maximum, if announced (5).
    pub topic_alias_maximum: Option<u16>,
    /// The broker's Maximum QoS, if announced (5).
    pub maximum_qos: Option<u8>,
}

impl Effective {
    /// The values of a connection whose CONNECT asked for `keep_alive` and `requested`
    /// (CONNECT properties) and whose CONNACK carried `connack` (empty in 3.1.1).
    pub fn of(keep_alive: u16, requested: &Properties, connack: &Properties) -> Effective {
        Effective {
            requested_keep_alive: keep_alive,
            server_keep_alive: connack.server_keep_alive,
            requested_session_expiry: requested.session_expiry_interval.unwrap_or(0),
            announced_session_expiry: connack.session_expiry_interval,
            receive_maximum: connack.receive_maximum,
            maximum_packet_size: connack.maximum_packet_size,
            topic_alias_maximum: connack.topic_alias_maximum,
            maximum_qos: connack.maximum_qos,
        }
    }

    /// The Keep Alive the connection runs with (0: off).
    pub fn keep_alive(&self) -> u16 {
        // [MQTT-3.2.2-21] the Server Keep Alive wins; [MQTT-3.2.2-22] else the client's.
        self.server_keep_alive.unwrap_or(self.requested_keep_alive)
    }

    /// The Session Expiry Interval the connection runs with (MQTT 5 section 3.2.2.3.2).
    pub fn session_expiry(&self) -> u32 {
        self.announced_session_expiry
            .unwrap_or(self.requested_session_expiry)
    }

    /// Whether the client must send PINGREQs of its own accord: the broker imposed a Server
    /// Keep Alive shorter than the client's (or one where the client asked for none), which
    /// the client must use ([MQTT-3.2.2-21], [MQTT-3.1.2-20]). `None`: no such duty.
    pub fn imposed_keep_alive(&self) -> Option<u16> {
        let s = self.server_keep_alive.filter(|s| *s > 0)?;
        (self.requested_keep_alive == 0 || s < self.requested_keep_alive).then_some(s)
    }
}

impl ConnackAssume {
    /// Whether the case declares nothing.
    pub fn is_empty(&self) -> bool {
        *self == ConnackAssume::default()
    }

    /// Why the case cannot judge a connection that runs with `eff` under `version`, if so:
    /// names the first assumed value that does not hold, what the CONNACK announced and the
    /// statement that makes the announced value binding.
    pub fn unmet(&self, eff: &Effective, version: Version) -> Option<String> {
        if let Some(b) = self
            .keep_alive
            .filter(|b| !b.holds(eff.keep_alive().into()))
        {
            return Some(match eff.server_keep_alive {
                Some(s) => format!(
                    "the CONNACK announces Server Keep Alive {s} (the client asked for {}; it \
                     must use the server's value, MQTT-3.2.2-21), and the case is built on a \
                     Keep Alive of {b} s",
                    eff.requested_keep_alive
                ),
                None => format!(
                    "the connection runs with the client's Keep Alive {}, and the case is built \
                     on a Keep Alive of {b} s",
                    eff.requested_keep_alive
                ),
            });
        }
        if version != Version::V5 {
            return None;
        }
        if let Some(b) = self
            .session_expiry_interval
            .filter(|b| !b.holds(eff.session_expiry()))
        {
            return Some(match eff.announced_session_expiry {
                Some(s) => format!(
                    "the CONNACK announces Session Expiry Interval {s} (the client asked for \
                     {}; the server's value holds, MQTT 5 section 3.2.2.3.2), and the case is \
                     built on a Session Expiry Interval of {b} s",
                    eff.requested_session_expiry
                ),
                None => format!(
                    "the connection runs with the client's Session Expiry Interval {}, and the \
                     case is built on {b} s",
                    eff.requested_session_expiry
                ),
            });
        }
        let limits: [(&str, Option<Bound>, Option<u32>, u32); 4] = [
            (
                "Receive Maximum",
                self.receive_maximum,
                eff.receive_maximum.map(u32::from),
                65_535,
            ),
            (
                "Maximum Packet Size",
                self.maximum_packet_size,
                eff.maximum_packet_size,
                u32::MAX,
            ),
            (
                "Topic Alias Maximum",
                self.topic_alias_maximum,
                eff.topic_alias_maximum.map(u32::from),
                0,
            ),
            (
                "Maximum QoS",
                self.maximum_qos,
                eff.maximum_qos.map(u32::from),
                2,
            ),
        ];
        limits
            .into_iter()
            .find_map(|(name, bound, announced, default)| {
                let b = bound?;
                let value = announced.unwrap_or(default);
                (!b.holds(value)).then(|| match announced {
                    Some(v) => format!(
                    "the CONNACK announces {name} {v}, and the case is built on a {name} of {b}"
                ),
                    None => format!(
                    "the CONNACK announces no {name} (so it is {}), and the case is built on a \
                     {name} of {b}",
                    if default == u32::MAX {
                        "unlimited".to_string()
                    } else {
                        default.to_string()
                    }
                ),
                })
            })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn props(f: impl FnOnce(&mut Properties)) -> Properties {
        let mut p = Properties::default();
        f(&mut p);
        p
    }

    fn assume(yaml: &str) -> ConnackAssume {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn bounds_parse_as_a_number_or_a_range() {
        let a = assume("{keep_alive: 2, session_expiry_interval: {min: 10}}");
        assert_eq!(a.keep_alive, Some(Bound::Exactly(2)));
        assert!(a.session_expiry_interval.unwrap().holds(10));
        assert!(!a.session_expiry_interval.unwrap().holds(9));
        assert!(serde_saphyr::from_str::<ConnackAssume>("{keep_alive: {least: 1}}").is_err());
        assert!(serde_saphyr::from_str::<ConnackAssume>("{server_keep_alive: 1}").is_err());
    }

    #[test]
    fn a_server_keep_alive_overrides_the_clients() {
        let none = Properties::default();
        let eff = Effective::of(2, &none, &props(|p| p.server_keep_alive = Some(1)));
        assert_eq!(eff.keep_alive(), 1);
        assert_eq!(eff.imposed_keep_alive(), Some(1));
        let why = assume("{keep_alive: 2}").unmet(&eff, Version::V5).unwrap();
        assert!(why.contains("Server Keep Alive 1"), "{why}");
        assert!(why.contains("MQTT-3.2.2-21"), "{why}");
        // Without a Server Keep Alive the client's value holds.
        let own = Effective::of(2, &none, &none);
        assert_eq!(assume("{keep_alive: 2}").unmet(&own, Version::V5), None);
        assert_eq!(own.imposed_keep_alive(), None);
    }

    #[test]
    fn keep_alive_zero_assumes_no_server_keep_alive() {
        let none = Properties::default();
        let a = assume("{keep_alive: 0}");
        assert_eq!(a.unmet(&Effective::of(0, &none, &none), Version::V5), None);
        let imposed = Effective::of(0, &none, &props(|p| p.server_keep_alive = Some(5)));
        assert!(a.unmet(&imposed, Version::V5).is_some());
        // The client must then ping: it asked for none, the server imposes 5 s.
        assert_eq!(imposed.imposed_keep_alive(), Some(5));
        // A longer Server Keep Alive imposes no duty the client's own value did not.
        let longer = Effective::of(2, &none, &props(|p| p.server_keep_alive = Some(60)));
        assert_eq!(longer.imposed_keep_alive(), None);
    }

    #[test]
    fn session_expiry_follows_the_connack() {
        let asked = props(|p| p.session_expiry_interval = Some(60));
        let a = assume("{session_expiry_interval: {min: 10}}");
        let granted = Effective::of(60, &asked, &Properties::default());
        assert_eq!(a.unmet(&granted, Version::V5), None);
        let zero = Effective::of(60, &asked, &props(|p| p.session_expiry_interval = Some(0)));
        let why = a.unmet(&zero, Version::V5).unwrap();
        assert!(why.contains("Session Expiry Interval 0"), "{why}");
        // 3.1.1 has no Session Expiry Interval: nothing to compare.
        assert_eq!(a.unmet(&zero, Version::V311), None);
    }

    #[test]
    fn limits_use_the_specifications_defaults_when_absent() {
        let none = Properties::default();
        let eff = Effective::of(60, &none, &none);
        assert_eq!(
            assume("{receive_maximum: {min: 3}, maximum_qos: 2}").unmet(&eff, Version::V5),
            None
        );
        let why = assume("{topic_alias_maximum: {min: 2}}")
            .unmet(&eff, Version::V5)
            .unwrap();
        assert!(why.contains("no Topic Alias Maximum (so it is 0)"), "{why}");
        let small = Effective::of(60, &none, &props(|p| p.receive_maximum = Some(1)));
        let why = assume("{receive_maximum: {min: 3}}")
            .unmet(&small, Version::V5)
            .unwrap();
        assert!(why.contains("Receive Maximum 1"), "{why}");
        assert!(why.contains("at least 3"), "{why}");
    }
}
