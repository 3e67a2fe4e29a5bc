//! The fault steps of a scenario (`cut`, `blackhole`, `latency`, ..., `heal`, `restart_broker`)
//! as serde types: network faults on the link of one named client (or every client).

use schemars::JsonSchema;
use serde::Deserialize;

use super::values::{Dur, Version};

/// Which directions of a client's link a fault acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkDirection {
    /// Client to broker only.
    Up,
    /// Broker to client only.
    Down,
    /// Both ways (the default).
    #[default]
    Both,
}

/// `cut`, `down` and `heal`: a fault with no parameter.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `blackhole`: keep the socket open but pass no data (half-open link).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlackholeStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `latency`: delay data by `delay ± jitter`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Added delay.
    pub delay: Dur,
    /// Random variation of the delay (default 0).
    #[serde(default)]
    pub jitter: Option<Dur>,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `bandwidth`: limit the rate.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BandwidthStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Kilobytes per second.
    pub rate: u64,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `slicer`: cut the stream into small chunks with pauses between them.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlicerStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Average chunk size in bytes (at least 1).
    pub size: u64,
    /// Variation of the chunk size (less than `size`; default 0).
    #[serde(default)]
    pub variation: u64,
    /// Pause between chunks (default 0).
    #[serde(default)]
    pub delay: Option<Dur>,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `limit_data`: close the connection after `bytes` bytes, mid-packet if need be.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitDataStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Bytes let through (counted per direction, from the toxic's installation).
    pub bytes: u64,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `slow_close`: delay the close of the connection.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SlowCloseStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Delay before a close is passed on.
    pub delay: Dur,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `reset_peer`: drop the next data and reset the connection (TCP RST) `after` later.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetPeerStep {
    /// Client whose link is affected; every client when absent.
    #[serde(default)]
    pub client: Option<String>,
    /// Delay between the next data and the reset (default 0).
    #[serde(default)]
    pub after: Option<Dur>,
    /// `up`, `down` or `both` (default).
    #[serde(default)]
    pub direction: LinkDirection,
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}

/// `restart_broker`: stop the broker and start it again on the same address with the same
/// configuration (skipped on targets that cannot restart).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestartStep {
    /// Version restriction.
    #[serde(default)]
    pub only: Option<Version>,
}
