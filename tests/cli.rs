//! The command line: exit codes 0 (passed or documented), 1 (failures), 2 (bad usage,
//! invalid files, unreachable broker), and the machine-readable outputs.
#![allow(clippy::unwrap_used)]

mod common;

use common::{cli, temp_root, text, ALL_SUITE, FAILING, PASSING};

#[test]
fn validate_accepts_the_smoke_scenarios() {
    let out = cli(
        &common::repo(),
        &["validate", "scenarios/smoke", "suites/smoke.yaml"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("ok suites/smoke.yaml: suite smoke"),
        "{stdout}"
    );
}

#[test]
fn validate_rejects_a_bad_file_with_its_location() {
    let root = temp_root(&[(
        "bad.yaml",
        "name: c\nversions: [\"5\"]\ncolor: red\nsteps: []\n",
    )]);
    let out = cli(root.path(), &["validate", "bad.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr.contains("bad.yaml:3:1: unknown field `color`"),
        "{stderr}"
    );
}

#[test]
fn passing_run_exits_0_and_writes_junit() {
    let root = temp_root(&[ALL_SUITE, ("scenarios/a/pass.yaml", PASSING)]);
    let out = cli(root.path(), &["run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("total"), "{stdout}");
    assert!(root.path().join("reports/junit.xml").is_file());
}

#[test]
fn failing_run_exits_1_with_details() {
    let root = temp_root(&[ALL_SUITE, ("scenarios/a/fail.yaml", FAILING)]);
    let out = cli(root.path(), &["run", "--no-junit"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("FAIL all / fail-wrong-payload [5]"),
        "{stdout}"
    );
    assert!(stdout.contains("step 4 (expect)"), "{stdout}");
    assert!(stdout.contains("--- trace of client a ---"), "{stdout}");
}

#[test]
fn unreachable_broker_is_one_line_and_exit_2() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let root = temp_root(&[ALL_SUITE, ("scenarios/a/pass.yaml", PASSING)]);
    let url = format!("mqtt://user:secret@127.0.0.1:{port}");
    let out = cli(root.path(), &["run", "--no-junit", "--broker", &url]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert!(!stderr.contains("secret"), "credentials leaked: {stderr}");
}

#[test]
fn bad_usage_exits_2() {
    let root = temp_root(&[ALL_SUITE, ("scenarios/a/pass.yaml", PASSING)]);
    for args in [
        vec!["run", "--protocol", "4"],
        vec!["run", "--container", "nosuchpreset"],
        vec!["run", "--suite", "nope"],
        vec!["frobnicate"],
    ] {
        let out = cli(root.path(), &args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {:?}", text(&out));
    }
    let out = cli(root.path(), &["run", "--container", "x"]);
    assert!(text(&out).1.contains("unknown container preset"));
    assert!(text(&out).1.contains("emqx, mosquitto"));
}

#[test]
fn invalid_scenario_file_exits_2_but_others_run() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        (
            "scenarios/a/bad.yaml",
            "name: x\nversions: [\"5\"]\nsteps:\n  - jump: {}\n",
        ),
    ]);
    let out = cli(root.path(), &["run", "--no-junit"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stderr.contains("bad.yaml:4:5"), "{stderr}");
    assert!(
        stdout.contains("total                          2"),
        "{stdout}"
    );
}

#[test]
fn json_output_and_selection() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        ("scenarios/a/fail.yaml", FAILING),
    ]);
    let out = cli(
        root.path(),
        &[
            "run",
            "--no-junit",
            "--json",
            "--filter",
            "pass",
            "--protocol",
            "3.1.1",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["summary"]["passed"], 1);
    assert_eq!(doc["results"][0]["case"], "pass-roundtrip");
    assert_eq!(doc["results"][0]["version"], "3.1.1");
    assert_eq!(doc["results"][0]["verdict"], "pass");
}

#[test]
fn list_coverage_counts_statements() {
    let out = cli(&common::repo(), &["list", "--coverage", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["3.1.1"]["total"], 140);
    assert_eq!(doc["5.0"]["total"], 251);
    assert!(doc["3.1.1"]["covered"].as_u64().unwrap() > 0);
    assert!(doc["5.0"]["sections"]["3.3"]["total"].as_u64().unwrap() > 0);
    let out = cli(&common::repo(), &["list"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out).0.contains("smoke-connect-clean"));
}

#[test]
fn repeat_and_tags_select_and_repeat_runs() {
    let tagged = PASSING.replace("name: pass-roundtrip", "name: tagged\ntags: [chosen]");
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        ("scenarios/a/tagged.yaml", &tagged),
    ]);
    let out = cli(
        root.path(),
        &[
            "run",
            "--no-junit",
            "--json",
            "--tags",
            "chosen,other",
            "--repeat",
            "3",
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "only the tagged case, once per version");
    for r in results {
        assert_eq!(r["case"], "tagged");
        assert_eq!(r["attempts"], 3);
        assert_eq!(r["verdict"], "pass");
    }
    let out = cli(root.path(), &["run", "--no-junit", "--repeat", "0"]);
    assert_eq!(out.status.code(), Some(2), "--repeat 0 is bad usage");
}
