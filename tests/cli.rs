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
    // Packets as MQTT people read them, not Rust debug dumps.
    assert!(
        stdout.contains("-> PUBLISH topic=\"t\" qos=0 retain=0 dup=0 payload=\"sent\" (4 B)"),
        "{stdout}"
    );
    assert!(!stdout.contains("Publish {"), "{stdout}");
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

/// A case that waits `secs` seconds (so a run can be stopped or its broker killed meanwhile).
fn slow(name: &str, secs: u32) -> String {
    format!(
        "name: {name}\nspec: {{\"5\": [MQTT-3.8.4-1]}}\nversions: [\"5\"]\nclients: {{a: {{}}}}\nsteps:\n  - connect: {{client: a}}\n  - sleep: {secs}s\n  - subscribe: {{client: a, filters: [{{filter: t, qos: 1}}]}}\n"
    )
}

/// A case that passes at once under MQTT 5 only.
fn quick(name: &str) -> String {
    PASSING
        .replace("name: pass-roundtrip", &format!("name: {name}"))
        .replace("versions: [\"3.1.1\", \"5\"]", "versions: [\"5\"]")
}

#[test]
fn selecting_nothing_is_exit_2_not_a_pass() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        (
            "suites/empty.yaml",
            "name: empty\nscenarios: [\"scenarios/nowhere/*.yaml\"]\n",
        ),
    ]);
    for (args, says) in [
        (
            vec!["run", "--suite", "all", "--filter", "zzz"],
            "--filter \"zzz\"",
        ),
        (
            vec!["run", "--suite", "all", "--tags", "nosuch"],
            "--tags nosuch",
        ),
        (
            vec!["run", "--suite", "all", "--exclude", "pass-*"],
            "--exclude",
        ),
        (vec!["run", "--suite", "empty"], "match no file"),
    ] {
        let out = cli(root.path(), &args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("running"),
            "{args:?} started a run: {stdout}"
        );
    }
    let out = cli(root.path(), &["validate", "suites/empty.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("selects no case"), "{stderr}");
}

#[test]
fn harness_problems_are_exit_2_before_the_run() {
    let root = temp_root(&[ALL_SUITE, ("scenarios/a/pass.yaml", PASSING)]);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let blocker = root.path().join("file");
    std::fs::write(&blocker, "").unwrap();
    let bad_junit = blocker.join("junit.xml");
    for (args, says) in [
        (
            vec!["run", "--toxiproxy", closed.as_str()],
            "cannot reach the Toxiproxy API",
        ),
        (
            vec!["run", "--junit", bad_junit.to_str().unwrap()],
            "cannot write",
        ),
        (
            vec!["run", "--broker", "http://127.0.0.1:1883"],
            "accepted: mqtt://",
        ),
    ] {
        let out = cli(root.path(), &args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stdout.contains("running"), "{args:?}: {stdout}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn ci_output_is_one_line_per_case_then_summary_and_report_paths() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        ("scenarios/a/fail.yaml", FAILING),
    ]);
    let out = cli(root.path(), &["run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    for want in [
        "pass      all / pass-roundtrip [3.1.1] ",
        "pass      all / pass-roundtrip [5] ",
        "FAIL      all / fail-wrong-payload [5] ",
    ] {
        assert_eq!(
            lines.iter().filter(|l| l.starts_with(want)).count(),
            1,
            "{want:?} in\n{stdout}"
        );
    }
    assert!(!stdout.contains('\x1b'), "no colour without a terminal");
    assert!(
        stdout.ends_with("reports: reports/junit.xml, reports/results.json, reports/report.html\n"),
        "{stdout}"
    );
    // The failure block: where the step is, what it checks, quoted from the spec.
    assert!(
        stdout.contains("  at scenarios/a/fail.yaml:10\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("    MQTT-3.3.1-5: \"If the RETAIN flag is set to 1"),
        "{stdout}"
    );
    let quiet = cli(root.path(), &["run", "--quiet", "--color", "always"]);
    let (stdout, _) = text(&quiet);
    assert!(!stdout.contains("pass-roundtrip"), "{stdout}");
    assert!(stdout.contains("\x1b[1;31mFAIL\x1b[0m all / fail-wrong-payload [5]"));
    assert!(stdout.contains("total "), "{stdout}");
}

#[test]
fn fail_fast_counts_the_runs_it_did_not_start() {
    let mut files = vec![
        (ALL_SUITE.0.to_string(), ALL_SUITE.1.to_string()),
        ("scenarios/a/fail.yaml".into(), FAILING.to_string()),
    ];
    for i in 0..8 {
        files.push((format!("scenarios/b/q{i}.yaml"), quick(&format!("q{i}"))));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let root = temp_root(&files);
    let out = cli(
        root.path(),
        &["run", "--no-junit", "--fail-fast", "--jobs", "1"],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert!(!stdout.contains("--fail-fast stopped\n  "), "{stdout}");
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("not run: --fail-fast"))
        .collect();
    assert_eq!(
        summary.len(),
        1,
        "one line for the runs not started:\n{stdout}"
    );
}

#[test]
fn rerun_failed_and_exclude_select_from_the_last_report() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/pass.yaml", PASSING),
        ("scenarios/a/fail.yaml", FAILING),
    ]);
    let out = cli(root.path(), &["run", "--rerun-failed"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "no report yet: {:?}",
        text(&out)
    );
    assert_eq!(cli(root.path(), &["run"]).status.code(), Some(1));
    let out = cli(root.path(), &["run", "--rerun-failed", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let results = doc["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{stdout}");
    assert_eq!(results[0]["case"], "fail-wrong-payload");
    let out = cli(root.path(), &["run", "--exclude", "fail-*", "--json"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(doc["summary"]["passed"], 2, "{stdout}");
    assert_eq!(doc["summary"]["failed"], 0, "{stdout}");
}

/// Spawn the binary in `dir` with stdout piped; its lines arrive on the receiver.
fn spawn(
    dir: &std::path::Path,
    args: &[&str],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    std::thread::JoinHandle<String>,
) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
        .current_dir(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    (child, rx, err)
}

/// Lines from `rx` until one starts with `prefix` (bounded), all of them returned.
fn until(rx: &std::sync::mpsc::Receiver<String>, prefix: &str) -> Vec<String> {
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no line starting {prefix:?} after {seen:?}"));
        let done = line.starts_with(prefix);
        seen.push(line);
        if done {
            return seen;
        }
    }
}

/// The exit code of `child`, waited for at most a minute.
fn exit_code(mut child: std::process::Child) -> Option<i32> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait().map(|s| s.code()));
    });
    rx.recv_timeout(std::time::Duration::from_secs(60))
        .expect("the command ends")
        .unwrap()
}

async fn external_broker() -> (reference_broker::broker::Broker, String) {
    use reference_broker::broker::{Broker, BrokerConfig};
    let broker = Broker::bind(BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
    (broker, url)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_killed_mid_run_is_reported_once_and_exits_2() {
    let mut files = vec![
        (ALL_SUITE.0.to_string(), ALL_SUITE.1.to_string()),
        ("scenarios/a/slow.yaml".into(), slow("slow-first", 3)),
    ];
    for i in 0..6 {
        files.push((format!("scenarios/b/q{i}.yaml"), quick(&format!("q{i}"))));
    }
    let files: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let root = temp_root(&files);
    let (broker, url) = external_broker().await;
    let (child, rx, err) = spawn(
        root.path(),
        &["run", "--broker", &url, "--jobs", "1", "--timeout", "30s"],
    );
    until(&rx, "running 7 case runs");
    // The slow case runs first (longest first); the broker goes away while it waits.
    broker.shutdown().await;
    let code = tokio::task::spawn_blocking(move || exit_code(child))
        .await
        .unwrap();
    let stdout: Vec<String> = rx.try_iter().collect();
    let stdout = stdout.join("\n");
    let stderr = err.join().unwrap();
    assert_eq!(code, Some(2), "{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("went away during slow-first [5]").count(),
        1,
        "reported once:\n{stdout}"
    );
    assert!(!stdout.contains("FAIL"), "nothing failed:\n{stdout}");
    assert!(
        stdout.contains("6 run(s) not run: the broker went away\n"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(root.path().join("reports/junit.xml")).unwrap();
    assert!(junit.contains("incomplete run: the broker"), "{junit}");
    let json = std::fs::read_to_string(root.path().join("reports/results.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(doc["incomplete"].as_str().unwrap().contains("went away"));
    assert_eq!(doc["summary"]["failed"], 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_writes_partial_reports_and_exits_130() {
    let root = temp_root(&[
        ALL_SUITE,
        ("scenarios/a/slow.yaml", &slow("slow", 50)),
        ("scenarios/a/quick.yaml", &quick("quick")),
    ]);
    let (broker, url) = external_broker().await;
    let (child, rx, err) = spawn(
        root.path(),
        &["run", "--broker", &url, "--jobs", "2", "--timeout", "60s"],
    );
    until(&rx, "pass      all / quick [5]");
    let pid = child.id().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let code = tokio::task::spawn_blocking(move || exit_code(child))
        .await
        .unwrap();
    let stdout = rx.try_iter().collect::<Vec<_>>().join("\n");
    let stderr = err.join().unwrap();
    assert_eq!(code, Some(130), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("INCOMPLETE: interrupted by Ctrl-C"),
        "{stdout}"
    );
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(
        !stderr.contains("stopped"),
        "it did not start this broker: {stderr}"
    );
    let json = std::fs::read_to_string(root.path().join("reports/results.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["incomplete"], "interrupted by Ctrl-C");
    assert_eq!(doc["results"][0]["case"], "quick", "{json}");
    // The unfinished run is listed as not run, not left out.
    let slow = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["case"] == "slow")
        .unwrap_or_else(|| panic!("slow is not in {json}"));
    assert_eq!(slow["verdict"], "skipped", "{json}");
    assert_eq!(slow["reason"], "not run: interrupted by Ctrl-C", "{json}");
    assert!(
        stdout.contains("not run: interrupted by Ctrl-C"),
        "{stdout}"
    );
    let junit = std::fs::read_to_string(root.path().join("reports/junit.xml")).unwrap();
    assert!(junit.contains("incomplete run: interrupted"), "{junit}");
    assert!(
        junit.contains("not run: interrupted by Ctrl-C"),
        "the unfinished run is a skipped testcase: {junit}"
    );
    broker.shutdown().await;
}

#[test]
fn validate_reports_every_error_and_unknown_statements() {
    let root = temp_root(&[
        (
            "a.yaml",
            "name: c\nspec: {\"5\": [MQTT-9.9.9-9]}\nversions: [\"5\"]\nclients: {a: {}}\nsteps: [{connect: {client: a}}]\n",
        ),
        ("b.yaml", "name: d\nversions: [\"5\"]\ncolor: red\nsteps: []\n"),
    ]);
    let out = cli(root.path(), &["validate", "a.yaml", "b.yaml"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains("MQTT-9.9.9-9 is not a normative statement of MQTT 5"),
        "{stderr}"
    );
    assert!(
        stderr.contains("b.yaml:3:1: unknown field `color`"),
        "{stderr}"
    );
    assert!(stderr.contains("2 of 2 file(s) invalid"), "{stderr}");
}

#[test]
fn commands_work_outside_a_checkout() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = cli(elsewhere.path(), &["list"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stdout.contains("smoke-connect-clean"), "{stdout}");
    let out = cli(elsewhere.path(), &["--root", ".", "list"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("--root DIR"), "{stderr}");
}

#[test]
fn parser_internals_stay_out_of_messages() {
    let root = temp_root(&[(
        "s.yaml",
        "name: s\nversions: [\"5\"]\nclients: {a: {}}\nsteps:\n  - sleep: {only: \"5\"}\n",
    )]);
    let out = cli(root.path(), &["validate", "s.yaml"]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("a duration like 1.5s"), "{stderr}");
    assert!(!stderr.contains("untagged"), "{stderr}");
}

#[test]
fn completions_and_man_page_come_from_the_clap_model() {
    let dir = tempfile::tempdir().unwrap();
    let out = cli(dir.path(), &["completions", "bash"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.contains("--rerun-failed"),
        "run's flags are completed"
    );
    assert!(
        stdout.contains("--mqtt-version"),
        "pub/sub flags are completed"
    );
    let out = cli(dir.path(), &["man"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with(".ie") || stdout.contains(".TH"),
        "{stdout}"
    );
    assert!(stdout.contains("mqtt\\-conformance"), "{stdout}");
}
