//! The libtest trials of the library: a failing case fails its test with the console
//! report's failure block, a passing case passes, names follow `suite::case::vVERSION`.
#![allow(clippy::unwrap_used)]

mod common;

use libtest_mimic::Arguments;
use mqtt_conformance::trials::{completion, Conformance};

#[test]
fn each_case_is_a_trial_that_fails_with_the_failure_block() {
    let dir = common::temp_root(&[
        common::ALL_SUITE,
        ("scenarios/x/pass.yaml", common::PASSING),
        ("scenarios/x/fail.yaml", common::FAILING),
    ]);
    let (trials, session) = Conformance::new().root(dir.path()).trials().unwrap();
    let mut names: Vec<&str> = trials.iter().map(|t| t.name()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "all::fail-wrong-payload::v5",
            "all::pass-roundtrip::v3.1.1",
            "all::pass-roundtrip::v5"
        ]
    );
    let failed = session.run("all::fail-wrong-payload::v5").unwrap();
    let Err(message) = completion(&failed) else {
        panic!("a failing case completed")
    };
    let text = message.message().unwrap();
    for needle in [
        "FAIL all / fail-wrong-payload [5]",
        "spec: MQTT-3.3.1-5",
        "expected:",
        "received:",
        "--- trace of client a ---",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    let passed = session.run("all::pass-roundtrip::v3.1.1").unwrap();
    assert!(completion(&passed).is_ok());
    assert!(session.run("all::no-such-case::v5").is_err());
    // The whole harness: one of three fails, the filter selects by name.
    let args = Arguments::from_iter(["conformance", "--test-threads", "4", "pass-roundtrip"]);
    let conclusion = libtest_mimic::run(&args, trials);
    assert_eq!(
        (
            conclusion.num_passed,
            conclusion.num_failed,
            conclusion.num_filtered_out
        ),
        (2, 0, 1)
    );
    session.shutdown();
}
