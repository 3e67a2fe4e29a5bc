//! One test per conformance case against this crate's broker:
//! `cargo test --test conformance -- --list`, `cargo test --test conformance -- retain`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let broker = match broker_tests::start() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot start the broker: {e}");
            return ExitCode::FAILURE;
        }
    };
    let url = format!("mqtt://{}", broker.addr);
    let code = mqtt_conformance::trials::Conformance::new()
        .broker(&url, "reference")
        .main();
    drop(broker);
    code
}
