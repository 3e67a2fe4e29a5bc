//! A client that outlives its connections: it reconnects to its persistent session (with
//! back-off) and watches its link with keep alive.

use std::time::{Duration, Instant};

use reference_broker::codec::{Disconnect, Packet, Properties};

use crate::bench::conn::{Endpoint, Lean, SessionOpts};
use crate::bench::BenchError;

/// Keep alive asked of the broker, seconds.
pub const KEEP_ALIVE: u16 = 10;
/// Session Expiry Interval (MQTT 5), seconds: longer than any fault of the schedule.
pub const SESSION_EXPIRY: u32 = 600;
/// First pause between two connection attempts; doubled up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(20);
/// Longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// One client identity with a persistent session.
#[derive(Debug)]
pub struct Durable {
    ep: Endpoint,
    client_id: String,
    connected: bool,
    /// Connections opened after the first one.
    pub reconnects: u64,
}

impl Durable {
    /// A client `client_id` that connects to `ep` (its proxy).
    pub fn new(ep: Endpoint, client_id: String) -> Durable {
        Durable {
            ep,
            client_id,
            connected: false,
            reconnects: 0,
        }
    }

    /// Connect, retrying with back-off until `give_up`. The first connection starts a fresh
    /// session (MQTT 5: Clean Start 1 with a Session Expiry; 3.1.1: Clean Session 0, the run's
    /// client ids being new); later ones resume it (Clean Start 0). Session Present is in
    /// `connack.session_present`. A refused CONNECT is not retried.
    pub async fn connect(&mut self, give_up: Instant) -> Result<Lean, BenchError> {
        let mut backoff = MIN_BACKOFF;
        loop {
            let session = SessionOpts {
                clean_start: !self.connected && self.ep.version.is_v5(),
                expiry: Some(SESSION_EXPIRY),
            };
            let attempt =
                Lean::connect_with(&self.ep, self.client_id.clone(), KEEP_ALIVE, session).await;
            match attempt {
                Ok((lean, _)) => {
                    if self.connected {
                        self.reconnects += 1;
                    }
                    self.connected = true;
                    return Ok(lean);
                }
                Err(e @ BenchError::Refused(..)) => return Err(e),
                Err(e) if Instant::now() + backoff >= give_up => return Err(e),
                Err(e) => tracing::debug!(client = %self.client_id, error = %e, "reconnecting"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// True once a connection was opened (the next one resumes the session).
    pub fn resumes(&self) -> bool {
        self.connected
    }
}

/// The DISCONNECT that ends the session with the connection (MQTT 5: Session Expiry 0), so
/// the broker keeps nothing after the run.
pub fn goodbye() -> Packet {
    Packet::Disconnect(Disconnect {
        properties: Properties {
            session_expiry_interval: Some(0),
            ..Properties::default()
        }
        .into(),
        ..Disconnect::default()
    })
}

/// What [`Liveness::poll`] asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Beat {
    /// Nothing due.
    Idle,
    /// Nothing sent for half the keep alive: send PINGREQ.
    Ping,
    /// Nothing received for 1.5 times the keep alive: the link is dead, reconnect.
    Dead,
}

/// Keep alive from the client's side: ping when idle, give the link up when silent.
#[derive(Debug, Clone)]
pub struct Liveness {
    last_rx: Instant,
    last_tx: Instant,
    keep_alive: Duration,
}

impl Liveness {
    /// A link just opened at `now`, with [`KEEP_ALIVE`].
    pub fn new(now: Instant) -> Liveness {
        Liveness {
            last_rx: now,
            last_tx: now,
            keep_alive: Duration::from_secs(u64::from(KEEP_ALIVE)),
        }
    }

    /// Something arrived.
    pub fn received(&mut self, now: Instant) {
        self.last_rx = now;
    }

    /// Something was written.
    pub fn sent(&mut self, now: Instant) {
        self.last_tx = now;
    }

    /// When [`Liveness::poll`] next has something to say.
    pub fn deadline(&self) -> Instant {
        (self.last_tx + self.keep_alive / 2).min(self.last_rx + self.keep_alive * 3 / 2)
    }

    /// What is due at `now`.
    pub fn poll(&self, now: Instant) -> Beat {
        if now >= self.last_rx + self.keep_alive * 3 / 2 {
            Beat::Dead
        } else if now >= self.last_tx + self.keep_alive / 2 {
            Beat::Ping
        } else {
            Beat::Idle
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_when_idle_dead_when_silent() {
        let t = Instant::now();
        let mut l = Liveness::new(t);
        assert_eq!(l.poll(t), Beat::Idle);
        assert_eq!(l.deadline(), t + Duration::from_secs(5));
        assert_eq!(l.poll(t + Duration::from_secs(5)), Beat::Ping);
        l.sent(t + Duration::from_secs(5));
        assert_eq!(l.poll(t + Duration::from_secs(9)), Beat::Idle);
        assert_eq!(l.poll(t + Duration::from_secs(15)), Beat::Dead);
        l.received(t + Duration::from_secs(14));
        assert_eq!(l.poll(t + Duration::from_secs(15)), Beat::Ping);
    }
}
