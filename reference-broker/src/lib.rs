//! The reference MQTT implementation of mqtt-conformance: the wire codec, topic rules, the
//! protocol state machines of broker and client, and the tokio I/O that drives them.
//!
//! The harness (`mqtt-conformance`) depends on this crate; this crate depends on nothing of
//! the harness, so the codec is shared by broker, client and harness without a cycle.

pub mod broker;
pub mod client;
pub mod codec;
pub mod protocol;
pub mod topic;
