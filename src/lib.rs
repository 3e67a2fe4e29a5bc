//! mqtt-conformance: the harness that judges MQTT brokers.
//!
//! Data flows one way: scenario files ([`scenario`]) are selected by suites ([`suite`]),
//! planned per version and executed against the broker under test ([`sut`]) by [`run`],
//! whose events feed the reporters ([`report`]). [`coverage`] relates scenarios to the normative
//! statements of the specifications; [`fault`] injects network faults. [`trials`] turns
//! every case into a libtest test for `cargo test` in a broker's own repository.

pub mod bench;
pub mod coverage;
pub mod exit;
pub mod fault;
pub mod profile;
pub mod pubsub;
pub mod redact;
pub mod report;
pub mod run;
pub mod run_id;
pub mod scenario;
pub mod selftest;
pub mod suite;
pub mod sut;
pub mod trials;
