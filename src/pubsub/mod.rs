//! `mqtt-conformance pub` and `sub`: poke a broker by hand, as mosquitto_pub/mosquitto_sub and
//! the MQTTX CLI do, through the reference client.
//!
//! Flags follow mosquitto's where they exist (`-h`, `-p`, `-V`, `-t`, `-m`, `-q`, `-r`, `-i`,
//! `-c`, `-k`, `-u`, `-P`, `-L`, `-d`, `-D`, `-v`, `-C`, `-W`, `-F`, `-N`, `-R`, `-E`, `-T`,
//! `-s`, `-l`, `-n`, `-x`), with the MQTTX long forms (`--hostname`, `--port`,
//! `--mqtt-version`, `--client-id`) as aliases. `docs/pubsub.md` has the table.

mod connection;
pub mod format;
pub mod props;
mod publish;
mod subscribe;

use std::io;

use reference_broker::client::ClientError;
use reference_broker::codec::{QoS, ReasonCode};

pub use connection::ConnArgs;
pub use format::{message_json, Encoding};
pub use publish::{run_pub, run_pub_from, PubArgs};
pub use subscribe::{run_sub, run_sub_ready, run_sub_to, SubArgs};

/// Why `pub` or `sub` failed; [`PubSubError::exit_code`] maps each to the command's exit code.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The client failed (connect, closed by the broker, timed out...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the payload or writing the output failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The arguments do not make sense together.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The broker refused the connection (CONNACK with an error code).
    #[error("connection refused: {code}")]
    ConnectRefused {
        /// The code, named for the protocol version in use.
        code: String,
    },
    /// The broker refused a subscription.
    #[error("subscription to {filter:?} refused: {code}")]
    SubscribeRefused {
        /// The filter.
        filter: String,
        /// The SUBACK code, named for the protocol version in use.
        code: String,
    },
    /// The broker answered a publish with an error reason code (MQTT 5).
    #[error("publish to {topic:?} refused: {code}")]
    PublishRefused {
        /// The topic.
        topic: String,
        /// The PUBACK/PUBREC reason code.
        code: ReasonCode,
    },
    /// `-W` ran out before `-C` messages arrived.
    #[error("timed out after {0} s (-W)")]
    TimedOut(u64),
}

impl PubSubError {
    /// The exit code: 27 for `-W` (as mosquitto_sub), 2 for bad arguments and a broker that
    /// cannot be reached, 1 for anything the broker refused or cut.
    pub fn exit_code(&self) -> u8 {
        match self {
            PubSubError::TimedOut(_) => crate::exit::TIMED_OUT,
            PubSubError::Args(_)
            | PubSubError::Client(
                ClientError::InvalidUrl { .. }
                | ClientError::Connect { .. }
                | ClientError::Tls(_)
                | ClientError::WebSocket(_),
            ) => crate::exit::USAGE,
            _ => crate::exit::FAILURES,
        }
    }
}

/// MQTT protocol version on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliVersion {
    /// MQTT 3.1.
    #[value(name = "3.1", alias = "31", alias = "mqttv31", alias = "3")]
    V31,
    /// MQTT 3.1.1.
    #[value(name = "3.1.1", alias = "311", alias = "4", alias = "mqttv311")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5", alias = "5.0", alias = "mqttv5")]
    V5,
}

/// A QoS on the command line: `0`, `1` or `2` (clap's value parser, so nothing is converted
/// later).
fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_u8)
        .ok_or_else(|| format!("{s:?} is not a QoS: 0, 1 or 2"))
}
