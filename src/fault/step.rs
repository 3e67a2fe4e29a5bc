//! Network faults as scenario steps name them (`cut`, `down`, `blackhole`, ..., `heal`),
//! turned into toxics and proxy changes on a [`FaultInjector`].

use std::fmt;
use std::time::Duration;

use super::{FaultError, FaultInjector, Stream, Toxic, ToxicKind};

/// Which directions of a client's link a fault acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Direction {
    /// Client to broker only.
    Up,
    /// Broker to client only.
    Down,
    /// Both ways (the default).
    #[default]
    Both,
}

impl Direction {
    fn streams(self) -> &'static [Stream] {
        match self {
            Self::Up => &[Stream::Upstream],
            Self::Down => &[Stream::Downstream],
            Self::Both => &[Stream::Upstream, Stream::Downstream],
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Up => "up",
            Self::Down => "down",
            Self::Both => "both ways",
        })
    }
}

/// One fault step on the link of a client.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Drop the TCP connection both ways without DISCONNECT; the client may reconnect at once.
    Cut,
    /// Drop the connection and refuse reconnections until `heal` (the network is down).
    Down,
    /// Keep the socket open but pass no data (half-open link).
    Blackhole(Direction),
    /// Delay data by `delay ± jitter`.
    Latency {
        /// Added delay.
        delay: Duration,
        /// Random variation.
        jitter: Duration,
        /// Directions.
        direction: Direction,
    },
    /// Limit the rate.
    Bandwidth {
        /// Kilobytes per second.
        kb_per_s: u64,
        /// Directions.
        direction: Direction,
    },
    /// Cut the stream into small chunks with pauses: the peer must reassemble packets.
    Slicer {
        /// Average chunk size in bytes.
        average_size: u64,
        /// Variation of the chunk size (less than `average_size`).
        size_variation: u64,
        /// Pause between chunks.
        delay: Duration,
        /// Directions.
        direction: Direction,
    },
    /// Close the connection after `bytes` bytes (mid-packet if need be).
    LimitData {
        /// Bytes let through.
        bytes: u64,
        /// Directions (each counts its own bytes).
        direction: Direction,
    },
    /// Delay the close of the connection.
    SlowClose {
        /// Delay before the close is passed on.
        delay: Duration,
        /// Directions.
        direction: Direction,
    },
    /// Drop the next data and reset the connection (TCP RST) `after` later.
    ResetPeer {
        /// Delay between the next data and the reset.
        after: Duration,
        /// Directions whose next data triggers the reset.
        direction: Direction,
    },
    /// Remove every toxic and accept connections again.
    Heal,
}

impl Fault {
    /// Applies the fault to `proxy`; returns the toxics it installed (for traces). A toxic of the
    /// same type on the same stream is replaced.
    pub async fn apply(
        &self,
        faults: &dyn FaultInjector,
        proxy: &str,
    ) -> Result<Vec<Toxic>, FaultError> {
        match self {
            Self::Cut => {
                // Toxiproxy's way to close every connection of a proxy: disable, enable.
                faults.set_enabled(proxy, false).await?;
                faults.set_enabled(proxy, true).await?;
                Ok(Vec::new())
            }
            Self::Down => {
                faults.set_enabled(proxy, false).await?;
                Ok(Vec::new())
            }
            Self::Heal => {
                faults.heal(proxy).await?;
                faults.set_enabled(proxy, true).await?;
                Ok(Vec::new())
            }
            _ => {
                let (kind, direction) = self.toxic_kind()?;
                let mut added = Vec::new();
                for &stream in direction.streams() {
                    let toxic = Toxic::new(kind, stream);
                    match faults.remove_toxic(proxy, &toxic.name).await {
                        Ok(()) | Err(FaultError::ToxicNotFound { .. }) => {}
                        Err(err) => return Err(err),
                    }
                    faults.add_toxic(proxy, &toxic).await?;
                    added.push(toxic);
                }
                Ok(added)
            }
        }
    }

    /// The toxic kind of a toxic fault.
    fn toxic_kind(&self) -> Result<(ToxicKind, Direction), FaultError> {
        let kind = match *self {
            Self::Cut | Self::Down | Self::Heal => {
                return Err(FaultError::Invalid(format!("{self} is not a toxic")))
            }
            Self::Blackhole(direction) => return Ok((ToxicKind::blackhole(), direction)),
            Self::Latency {
                delay,
                jitter,
                direction,
            } => (
                ToxicKind::Latency {
                    latency: millis(delay)?,
                    jitter: millis(jitter)?,
                },
                direction,
            ),
            Self::Bandwidth {
                kb_per_s,
                direction,
            } => (ToxicKind::Bandwidth { rate: kb_per_s }, direction),
            Self::Slicer {
                average_size,
                size_variation,
                delay,
                direction,
            } => (
                ToxicKind::Slicer {
                    average_size,
                    size_variation,
                    delay: u64::try_from(delay.as_micros())
                        .map_err(|_| FaultError::Invalid(format!("slicer delay {delay:?}")))?,
                },
                direction,
            ),
            Self::LimitData { bytes, direction } => (ToxicKind::LimitData { bytes }, direction),
            Self::SlowClose { delay, direction } => (
                ToxicKind::SlowClose {
                    delay: millis(delay)?,
                },
                direction,
            ),
            Self::ResetPeer { after, direction } => (
                ToxicKind::ResetPeer {
                    timeout: millis(after)?,
                },
                direction,
            ),
        };
        Ok(kind)
    }
}

fn millis(duration: Duration) -> Result<u64, FaultError> {
    u64::try_from(duration.as_millis())
        .map_err(|_| FaultError::Invalid(format!("duration {duration:?} is too long")))
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cut => write!(f, "cut"),
            Self::Down => write!(f, "down"),
            Self::Heal => write!(f, "heal"),
            Self::Blackhole(direction) => write!(f, "blackhole {direction}"),
            Self::Latency {
                delay,
                jitter,
                direction,
            } => write!(f, "latency {delay:?}±{jitter:?} {direction}"),
            Self::Bandwidth {
                kb_per_s,
                direction,
            } => write!(f, "bandwidth {kb_per_s} KB/s {direction}"),
            Self::Slicer {
                average_size,
                size_variation,
                delay,
                direction,
            } => write!(
                f,
                "slicer {average_size}±{size_variation} bytes every {delay:?} {direction}"
            ),
            Self::LimitData { bytes, direction } => {
                write!(f, "limit_data {bytes} bytes {direction}")
            }
            Self::SlowClose { delay, direction } => write!(f, "slow_close {delay:?} {direction}"),
            Self::ResetPeer { after, direction } => {
                write!(f, "reset_peer after {after:?} {direction}")
            }
        }
    }
}
