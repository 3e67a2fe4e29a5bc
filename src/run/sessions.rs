//! The Session Expiry Interval each client identifier of a case was granted: an MQTT 5 broker
//! may answer a CONNECT with a shorter one than the client asked for (MQTT 5 section 3.2.2.3.2),
//! down to 0, and the session then legally ends sooner than the case planned. A `connect`
//! that finds no session where the case expected one is judged only when the granted interval
//! cannot explain it.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// Slack for brokers whose expiry clock counts whole seconds.
const CLOCK_SLACK: Duration = Duration::from_secs(1);

/// What one CONNACK granted to a client identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Grant {
    /// The Session Expiry Interval the client asked for.
    pub(super) requested: u32,
    /// The one the CONNACK announced instead, if any.
    pub(super) announced: Option<u32>,
    /// When the CONNACK arrived (the session's connection ended later).
    pub(super) at: Instant,
}

/// The latest grant per client identifier.
#[derive(Debug, Default)]
pub(super) struct Sessions(BTreeMap<String, Grant>);

impl Sessions {
    /// Record the grant of a CONNACK accepting client identifier `id`.
    pub(super) fn granted(&mut self, id: &str, grant: Grant) {
        self.0.insert(id.to_string(), grant);
    }

    /// Why a missing session of `id` at `now` is no failure, if the broker's own grant explains
    /// it: it announced a shorter Session Expiry Interval than the client asked for, and at
    /// least that long (less a second of clock slack) has passed since.
    pub(super) fn explains_missing(&self, id: &str, now: Instant) -> Option<String> {
        let g = self.0.get(id)?;
        let announced = g.announced.filter(|a| *a < g.requested)?;
        let elapsed = now.saturating_duration_since(g.at);
        (elapsed + CLOCK_SLACK >= Duration::from_secs(u64::from(announced))).then(|| {
            format!(
                "the broker granted this session a Session Expiry Interval of {announced} s (the \
                 client asked for {}; the server's value holds, MQTT 5 section 3.2.2.3.2) {} ms \
                 before, so it may have ended: the case, built on the interval it asked for, has \
                 nothing to judge",
                g.requested,
                elapsed.as_millis()
            )
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn grant(requested: u32, announced: Option<u32>, ago: Duration) -> Grant {
        Grant {
            requested,
            announced,
            at: Instant::now() - ago,
        }
    }

    #[test]
    fn a_shorter_grant_that_elapsed_explains_a_missing_session() {
        let mut s = Sessions::default();
        s.granted("c", grant(60, Some(0), Duration::ZERO));
        let why = s.explains_missing("c", Instant::now()).unwrap();
        assert!(why.contains("Session Expiry Interval of 0 s"), "{why}");
        assert!(why.contains("asked for 60"), "{why}");
        // Granted 30 s, one second ago: the session must still be there.
        s.granted("c", grant(60, Some(30), Duration::from_secs(1)));
        assert_eq!(s.explains_missing("c", Instant::now()), None);
        // Granted 2 s, 1.5 s ago: with a whole-second clock it may be gone.
        s.granted("c", grant(60, Some(2), Duration::from_millis(1500)));
        assert!(s.explains_missing("c", Instant::now()).is_some());
    }

    #[test]
    fn the_clients_own_interval_explains_nothing() {
        let mut s = Sessions::default();
        // Nothing announced: the client's own interval holds, and the case is judged.
        s.granted("c", grant(1, None, Duration::from_secs(5)));
        assert_eq!(s.explains_missing("c", Instant::now()), None);
        // A longer or equal announced interval does not shorten the session either.
        s.granted("c", grant(1, Some(1), Duration::from_secs(5)));
        assert_eq!(s.explains_missing("c", Instant::now()), None);
        assert_eq!(s.explains_missing("other", Instant::now()), None);
    }
}
