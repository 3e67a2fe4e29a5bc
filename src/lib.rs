//! mqtt-conformance: the harness that judges MQTT brokers.

pub mod pubsub;
