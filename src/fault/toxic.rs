//! The toxic model in Toxiproxy's JSON shape (`name`, `type`, `stream`, `toxicity`, `attributes`).

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::FaultError;

/// Which direction of a proxied connection a toxic acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to server (the client's writes).
    Upstream,
    /// Server to client (the client's reads). Toxiproxy's default.
    #[default]
    Downstream,
}

impl fmt::Display for Stream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Upstream => "upstream",
            Self::Downstream => "downstream",
        })
    }
}

/// A toxic's type and its attributes, in Toxiproxy's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToxicKind {
    /// Delay each chunk by `latency` ms, plus or minus `jitter` ms.
    Latency {
        /// Added delay in milliseconds.
        latency: u64,
        /// Random variation in milliseconds.
        jitter: u64,
    },
    /// Limit the rate to `rate` KB/s.
    Bandwidth {
        /// Kilobytes per second.
        rate: u64,
    },
    /// Cut the stream into chunks of about `average_size` bytes, `delay` µs apart.
    Slicer {
        /// Average chunk size in bytes.
        average_size: u64,
        /// Variation of the chunk size in bytes (less than `average_size`).
        size_variation: u64,
        /// Delay between chunks in microseconds.
        delay: u64,
    },
    /// Close the connection once `bytes` bytes have passed (mid-packet if need be).
    LimitData {
        /// Bytes let through before the close.
        bytes: u64,
    },
    /// Delay the close of the connection by `delay` ms.
    SlowClose {
        /// Milliseconds.
        delay: u64,
    },
    /// Pass no data; close the connection after `timeout` ms, or never when 0 (a blackhole).
    Timeout {
        /// Milliseconds, 0 keeps the connection open forever.
        timeout: u64,
    },
    /// Reset the connection (TCP RST) after `timeout` ms.
    ResetPeer {
        /// Milliseconds before the reset.
        timeout: u64,
    },
}

impl ToxicKind {
    /// A half-open link: the socket stays open and no data passes (`timeout` with 0).
    pub fn blackhole() -> Self {
        Self::Timeout { timeout: 0 }
    }

    /// The Toxiproxy type name (`latency`, `limit_data`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Latency { .. } => "latency",
            Self::Bandwidth { .. } => "bandwidth",
            Self::Slicer { .. } => "slicer",
            Self::LimitData { .. } => "limit_data",
            Self::SlowClose { .. } => "slow_close",
            Self::Timeout { .. } => "timeout",
            Self::ResetPeer { .. } => "reset_peer",
        }
    }

    /// The attributes as Toxiproxy's JSON object (integers only).
    pub fn attributes(&self) -> Map<String, Value> {
        let pairs: Vec<(&str, u64)> = match *self {
            Self::Latency { latency, jitter } => vec![("latency", latency), ("jitter", jitter)],
            Self::Bandwidth { rate } => vec![("rate", rate)],
            Self::Slicer {
                average_size,
                size_variation,
                delay,
            } => vec![
                ("average_size", average_size),
                ("size_variation", size_variation),
                ("delay", delay),
            ],
            Self::LimitData { bytes } => vec![("bytes", bytes)],
            Self::SlowClose { delay } => vec![("delay", delay)],
            Self::Timeout { timeout } | Self::ResetPeer { timeout } => vec![("timeout", timeout)],
        };
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect()
    }

    /// Builds a kind from a Toxiproxy type name and attributes; missing attributes default to 0
    /// as in Toxiproxy, except the ones a toxic cannot work without.
    pub fn from_parts(
        type_name: &str,
        attributes: &Map<String, Value>,
    ) -> Result<Self, FaultError> {
        let get = |key: &str| -> Result<u64, FaultError> {
            match attributes.get(key) {
                None | Some(Value::Null) => Ok(0),
                Some(value) => value.as_u64().ok_or_else(|| {
                    FaultError::Invalid(format!(
                        "attribute {key:?} of {type_name} must be a non-negative integer, got {value}"
                    ))
                }),
            }
        };
        let kind = match type_name {
            "latency" => Self::Latency {
                latency: get("latency")?,
                jitter: get("jitter")?,
            },
            "bandwidth" => Self::Bandwidth { rate: get("rate")? },
            "slicer" => {
                let average_size = get("average_size")?;
                let size_variation = get("size_variation")?;
                if average_size == 0 {
                    return Err(FaultError::Invalid(
                        "slicer needs average_size > 0".to_owned(),
                    ));
                }
                if size_variation >= average_size {
                    return Err(FaultError::Invalid(
                        "slicer needs size_variation < average_size".to_owned(),
                    ));
                }
                Self::Slicer {
                    average_size,
                    size_variation,
                    delay: get("delay")?,
                }
            }
            "limit_data" => Self::LimitData {
                bytes: get("bytes")?,
            },
            "slow_close" => Self::SlowClose {
                delay: get("delay")?,
            },
            "timeout" => Self::Timeout {
                timeout: get("timeout")?,
            },
            "reset_peer" => Self::ResetPeer {
                timeout: get("timeout")?,
            },
            other => return Err(FaultError::Invalid(format!("unknown toxic type {other:?}"))),
        };
        Ok(kind)
    }
}

/// One toxic on a proxy, serialised exactly as Toxiproxy does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "ToxicJson", into = "ToxicJson")]
pub struct Toxic {
    /// Unique per proxy; Toxiproxy's default is `{type}_{stream}`.
    pub name: String,
    /// The type and its attributes.
    pub kind: ToxicKind,
    /// The direction it acts on.
    pub stream: Stream,
    /// Probability in 0..=1 that the toxic applies to a connection.
    pub toxicity: f32,
}

impl Toxic {
    /// A toxic with Toxiproxy's default name (`{type}_{stream}`) and toxicity 1.
    pub fn new(kind: ToxicKind, stream: Stream) -> Self {
        Self {
            name: default_name(&kind, stream),
            kind,
            stream,
            toxicity: 1.0,
        }
    }

    /// Renames the toxic.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the probability that the toxic applies.
    pub fn with_toxicity(mut self, toxicity: f32) -> Self {
        self.toxicity = toxicity;
        self
    }

    /// Whether the name is the one Toxiproxy would pick (`{type}_{stream}`).
    pub fn has_default_name(&self) -> bool {
        self.name == default_name(&self.kind, self.stream)
    }

    /// Checks the fields a server must refuse.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.name.is_empty() {
            return Err(FaultError::Invalid("toxic name is empty".to_owned()));
        }
        if !(0.0..=1.0).contains(&self.toxicity) {
            return Err(FaultError::Invalid(format!(
                "toxicity {} is outside 0..=1",
                self.toxicity
            )));
        }
        Ok(())
    }
}

fn default_name(kind: &ToxicKind, stream: Stream) -> String {
    format!("{}_{}", kind.type_name(), stream)
}

/// The wire shape; `name` and `stream` may be omitted on creation.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ToxicJson {
    #[serde(default)]
    name: String,
    #[serde(rename = "type")]
    type_name: String,
    #[serde(default)]
    stream: Stream,
    #[serde(default = "full_toxicity")]
    toxicity: f32,
    #[serde(default)]
    attributes: Map<String, Value>,
}

fn full_toxicity() -> f32 {
    1.0
}

impl TryFrom<ToxicJson> for Toxic {
    type Error = FaultError;

    fn try_from(json: ToxicJson) -> Result<Self, Self::Error> {
        let kind = ToxicKind::from_parts(&json.type_name, &json.attributes)?;
        let name = if json.name.is_empty() {
            default_name(&kind, json.stream)
        } else {
            json.name
        };
        let toxic = Toxic {
            name,
            kind,
            stream: json.stream,
            toxicity: json.toxicity,
        };
        toxic.validate()?;
        Ok(toxic)
    }
}

impl From<Toxic> for ToxicJson {
    fn from(toxic: Toxic) -> Self {
        ToxicJson {
            name: toxic.name,
            type_name: toxic.kind.type_name().to_owned(),
            stream: toxic.stream,
            toxicity: toxic.toxicity,
            attributes: toxic.kind.attributes(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serialises_in_toxiproxy_shape() {
        let toxic = Toxic::new(
            ToxicKind::Latency {
                latency: 100,
                jitter: 5,
            },
            Stream::Upstream,
        );
        let json = serde_json::to_value(&toxic).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "latency_upstream",
                "type": "latency",
                "stream": "upstream",
                "toxicity": 1.0,
                "attributes": {"latency": 100, "jitter": 5}
            })
        );
        let back: Toxic = serde_json::from_value(json).unwrap();
        assert_eq!(back, toxic);
    }

    #[test]
    fn defaults_name_stream_and_toxicity() {
        let toxic: Toxic =
            serde_json::from_str(r#"{"type":"limit_data","attributes":{"bytes":10}}"#).unwrap();
        assert_eq!(toxic.name, "limit_data_downstream");
        assert_eq!(toxic.stream, Stream::Downstream);
        assert_eq!(toxic.toxicity, 1.0);
        assert_eq!(toxic.kind, ToxicKind::LimitData { bytes: 10 });
    }

    #[test]
    fn refuses_unknown_type_and_bad_attributes() {
        assert!(serde_json::from_str::<Toxic>(r#"{"type":"nope"}"#).is_err());
        assert!(
            serde_json::from_str::<Toxic>(r#"{"type":"latency","attributes":{"latency":-3}}"#)
                .is_err()
        );
        assert!(serde_json::from_str::<Toxic>(
            r#"{"type":"slicer","attributes":{"average_size":4,"size_variation":4}}"#
        )
        .is_err());
        assert!(serde_json::from_str::<Toxic>(r#"{"type":"timeout","toxicity":1.5}"#).is_err());
    }
}
