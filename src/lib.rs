//! mqtt-conformance: the harness that judges MQTT brokers.
