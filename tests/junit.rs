//! The JUnit report validates against junit-4.xsd, names each testcase `case [version]` with
//! the feature as classname, carries spec statements and the scenario file, and never shows
//! credentials.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, temp_root, text, ALL_SUITE, FAILING, PASSING};

const SECRET: &str = "hunter2-very-secret";

#[test]
fn junit_report_is_valid_and_complete() {
    let with_password = format!(
        "name: secret-client\nversions: [\"3.1.1\", \"5\"]\nclients: {{a: {{username: someone, password: {SECRET}}}}}\nsteps:\n  - connect: {{client: a}}\n  - expect_close: {{client: a, within: 200ms}}\n"
    );
    let skipped = "name: needs-tls\nversions: [\"5\"]\nrequires: [tls]\nclients: {a: {}}\nsteps:\n  - connect: {client: a}\n";
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/pubsub/pass.yaml", PASSING),
        ("scenarios/pubsub/fail.yaml", FAILING),
        ("scenarios/auth/secret.yaml", &with_password),
        ("scenarios/tls/skip.yaml", skipped),
    ]);
    let out = cli(root.path(), &["run", "--junit", "out/junit.xml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let path = root.path().join("out/junit.xml");
    let xml = std::fs::read_to_string(&path).unwrap();

    assert!(xml.contains(r#"<testsuite id="0" name="all""#), "{xml}");
    assert!(xml.contains(r#"name="pass-roundtrip [3.1.1]""#));
    assert!(xml.contains(r#"name="pass-roundtrip [5]""#));
    assert!(xml.contains(r#"classname="pubsub""#));
    assert!(xml.contains(r#"classname="tls""#));
    assert!(
        xml.contains(r#"file="scenarios/pubsub/pass.yaml""#),
        "{xml}"
    );
    assert!(xml.contains("<failure type=\"fail\""), "{xml}");
    let failure = xml.split("name=\"fail-wrong-payload [5]\"").nth(1).unwrap();
    let failure = failure.split("</failure>").next().unwrap();
    assert!(
        failure.contains("message=\"step 4 (expect): Publish differs"),
        "{failure}"
    );
    assert!(failure.contains("expected: PUBLISH"), "{failure}");
    assert!(failure.contains("--- trace of client a ---"), "{failure}");
    assert!(xml.contains("<skipped/>"));
    assert!(xml.contains("spec: MQTT-3.8.4-1"));
    assert!(xml.contains("scenario: scenarios/pubsub/pass.yaml"));
    assert!(xml.contains("--- trace of client a ---"));
    assert!(xml.contains("timestamp="));
    let names: Vec<&str> = xml
        .split("<testcase name=\"")
        .skip(1)
        .map(|s| s.split('"').next().unwrap())
        .collect();
    let mut unique = names.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "testcase names are unique: {names:?}"
    );

    for (what, content) in [("junit", &xml), ("stdout", &stdout), ("stderr", &stderr)] {
        assert!(!content.contains(SECRET), "the password leaked into {what}");
        assert!(
            !content.contains("someone"),
            "the user name leaked into {what}"
        );
    }

    match std::process::Command::new("xmllint")
        .args(["--noout", "--schema"])
        // A copy of shared/junit/junit-4.xsd, so the test does not depend on the checkout's
        // surroundings.
        .arg(common::repo().join("tests/data/junit-4.xsd"))
        .arg(&path)
        .output()
    {
        Ok(lint) => assert!(
            lint.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&lint.stderr)
        ),
        Err(e) => eprintln!(
            "SKIPPED schema validation: xmllint not available ({e}); apt-get install libxml2-utils"
        ),
    }
}
