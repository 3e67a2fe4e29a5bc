//! The broker's limits that change the plan (in-flight window, Receive Maximum, Maximum Packet
//! Size, Keep Alive and Session Expiry ceilings, topic depth), each with who says so: the MQTT 5
//! CONNACK, the probe's trying, or the profile (which wins).

use reference_broker::codec::Properties;

use crate::profile::Limits;

/// One limit of the broker and where it comes from (for skip reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ceiling {
    /// The limit.
    pub value: u32,
    /// Who says so: `the profile`, `the MQTT 5 CONNACK`, `the probe: ...`.
    pub source: String,
}

impl Ceiling {
    /// `value` as said by `source`.
    pub fn new(value: impl Into<u32>, source: impl Into<String>) -> Ceiling {
        Ceiling {
            value: value.into(),
            source: source.into(),
        }
    }
}

/// The limits a case's needs are held against at plan time (`None`: no known limit).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ceilings {
    /// QoS 1/2 PUBLISH packets the broker accepts in flight from one client.
    pub receive_maximum: Option<Ceiling>,
    /// QoS 1/2 messages the broker keeps in flight towards one client.
    pub max_inflight: Option<Ceiling>,
    /// The largest packet the broker accepts, bytes.
    pub maximum_packet_size: Option<Ceiling>,
    /// The highest Keep Alive the broker accepts, seconds.
    pub max_keep_alive: Option<Ceiling>,
    /// The longest the broker keeps a session after its connection ends, seconds.
    pub session_expiry_maximum: Option<Ceiling>,
    /// The deepest topic (levels, the run's prefix included) the broker accepts.
    pub max_topic_levels: Option<Ceiling>,
}

impl Ceilings {
    /// What an MQTT 5 CONNACK announces: Receive Maximum and Maximum Packet Size (MQTT 5
    /// section 3.2.2.3; absent means no limit).
    pub fn from_connack(props: &Properties) -> Ceilings {
        let source = "the MQTT 5 CONNACK";
        Ceilings {
            receive_maximum: props
                .receive_maximum
                .map(|v| Ceiling::new(v, format!("{source}'s Receive Maximum"))),
            maximum_packet_size: props
                .maximum_packet_size
                .map(|v| Ceiling::new(v, format!("{source}'s Maximum Packet Size"))),
            ..Ceilings::default()
        }
    }

    /// Lay a profile's `[limits]` over what the CONNACK and the probe found: a declared value
    /// wins.
    pub fn declare(&mut self, limits: &Limits) {
        let declared = |slot: &mut Option<Ceiling>, v: Option<u32>, field: &str| {
            if let Some(v) = v {
                *slot = Some(Ceiling::new(v, format!("the profile's {field}")));
            }
        };
        declared(
            &mut self.receive_maximum,
            limits.receive_maximum.map(u32::from),
            "receive_maximum",
        );
        declared(
            &mut self.max_inflight,
            limits.max_inflight.map(u32::from),
            "max_inflight",
        );
        declared(
            &mut self.maximum_packet_size,
            limits.maximum_packet_size,
            "maximum_packet_size",
        );
        declared(
            &mut self.max_keep_alive,
            limits.max_keep_alive.map(u32::from),
            "max_keep_alive",
        );
        declared(
            &mut self.session_expiry_maximum,
            limits.session_expiry_maximum,
            "session_expiry_maximum",
        );
        declared(
            &mut self.max_topic_levels,
            limits.max_topic_levels.map(u32::from),
            "max_topic_levels",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_profile_wins_over_the_connack_and_the_probe() {
        let mut c = Ceilings::from_connack(&Properties {
            receive_maximum: Some(10),
            ..Properties::default()
        });
        c.max_inflight = Some(Ceiling::new(1u32, "the probe"));
        c.declare(&Limits {
            max_inflight: Some(5),
            max_topic_levels: Some(16),
            ..Limits::default()
        });
        assert_eq!(c.receive_maximum.as_ref().map(|l| l.value), Some(10));
        assert_eq!(
            c.max_inflight,
            Some(Ceiling::new(5u32, "the profile's max_inflight"))
        );
        assert_eq!(c.max_topic_levels.map(|l| l.value), Some(16));
        assert_eq!(c.maximum_packet_size, None);
    }
}
