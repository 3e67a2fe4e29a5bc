//! One test per case and version: every bundled suite against the in-process reference
//! broker (or `MQTT_CONFORMANCE_BROKER=URL`, with `MQTT_CONFORMANCE_BROKER_NAME` for its
//! documented deviations). `cargo test --test conformance -- retain` filters, `--list` lists,
//! and `cargo nextest run --test conformance` runs each case as its own test.

fn main() -> std::process::ExitCode {
    mqtt_conformance::trials::Conformance::from_env().main()
}
