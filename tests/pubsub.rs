//! `pub` and `sub` against the reference broker: the tutorial walkthrough (two sensors, a
//! wildcard subscriber, a retained message, offline messages for a persistent session, a
//! last will after a cut) with mosquitto_pub/sub's flags (`-h`, `-p`, `-V`, `-E`), driven
//! through the same argument parsing as the command line; and the binary itself, spawned as a
//! user would, for exit codes (27 on `-W`), reason names, `-F`, `-d`, `-D` and binary payloads.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use clap::Parser;
use mqtt_conformance::pubsub::{run_pub, run_sub_ready, PubArgs, PubSubError, SubArgs};
use reference_broker::broker::{Broker, BrokerConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

#[derive(Parser)]
struct PubCli {
    #[command(flatten)]
    args: PubArgs,
}

#[derive(Parser)]
struct SubCli {
    #[command(flatten)]
    args: SubArgs,
}

async fn broker() -> (Broker, String) {
    let broker = Broker::bind(BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap()))
        .await
        .unwrap();
    let url = format!("mqtt://{}", broker.tcp_addr().unwrap());
    (broker, url)
}

/// `-h HOST -p PORT` for `url` (`mqtt://host:port`), as mosquitto_pub/sub take them.
fn host_port(url: &str) -> Vec<String> {
    let (host, port) = url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    vec!["-h".into(), host.into(), "-p".into(), port.into()]
}

async fn publish(url: &str, args: &[&str]) {
    let hp = host_port(url);
    let mut argv = vec!["pub"];
    argv.extend(hp.iter().map(String::as_str));
    argv.extend_from_slice(args);
    let cli = PubCli::try_parse_from(argv).unwrap();
    timeout(T, run_pub(cli.args)).await.unwrap().unwrap();
}

/// Start `sub` and wait for its SUBACK; the task returns what it printed.
async fn subscribe(url: &str, args: &[&str]) -> JoinHandle<Result<String, PubSubError>> {
    let mut argv = vec!["sub".to_string()];
    argv.extend(host_port(url));
    argv.extend(args.iter().map(|s| s.to_string()));
    let cli = SubCli::try_parse_from(argv).unwrap();
    let (tx, rx) = oneshot::channel();
    let task = tokio::spawn(async move {
        let mut out = Vec::new();
        run_sub_ready(cli.args, &mut out, move || {
            let _ = tx.send(());
        })
        .await?;
        Ok(String::from_utf8(out).unwrap())
    });
    timeout(T, rx).await.unwrap().unwrap();
    task
}

async fn output(task: JoinHandle<Result<String, PubSubError>>) -> String {
    timeout(T, task).await.unwrap().unwrap().unwrap()
}

#[tokio::test]
async fn tutorial_walkthrough() {
    let (broker, url) = broker().await;

    // Two sensors, one wildcard subscriber.
    let sub = subscribe(&url, &["-t", "sensor/+/temperature", "-v", "-C", "2"]).await;
    publish(&url, &["-t", "sensor/1/temperature", "-m", "21.5"]).await;
    publish(&url, &["-t", "sensor/2/temperature", "-m", "19.0"]).await;
    assert_eq!(
        output(sub).await,
        "sensor/1/temperature 21.5\nsensor/2/temperature 19.0\n"
    );

    // Offline messages for a persistent session (clean session false, QoS 1), in 3.1.1
    // and 5.
    for version in ["mqttv311", "5"] {
        let id = format!("dashboard-{version}");
        let session = ["-i", &id, "-c", "-x", "3600", "-q", "1", "-V", version];
        // -E: subscribe, then leave at once (the session stays, as with mosquitto_sub -E).
        let mut first = session.to_vec();
        first.extend(["-t", "sensor/+/temperature", "-E"]);
        output(subscribe(&url, &first).await).await;
        publish(
            &url,
            &["-q", "1", "-t", "sensor/1/temperature", "-m", "23.0"],
        )
        .await;
        publish(
            &url,
            &["-q", "1", "-t", "sensor/2/temperature", "-m", "18.5"],
        )
        .await;
        let mut again = session.to_vec();
        again.extend(["-t", "sensor/+/temperature", "-v", "-C", "2"]);
        assert_eq!(
            output(subscribe(&url, &again).await).await,
            "sensor/1/temperature 23.0\nsensor/2/temperature 18.5\n",
            "{version}"
        );
    }

    // A retained message reaches a subscriber that arrives later.
    publish(
        &url,
        &["-r", "-q", "1", "-t", "sensor/1/temperature", "-m", "22.0"],
    )
    .await;
    let late = subscribe(&url, &["-t", "sensor/1/temperature", "--json", "-C", "1"]).await;
    let line = output(late).await;
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["topic"], "sensor/1/temperature");
    assert_eq!(v["payload"], "22.0");
    assert_eq!(v["retain"], true);
    // Clear it: an empty retained message.
    publish(&url, &["-r", "-n", "-t", "sensor/1/temperature"]).await;

    // A last will after a cut: the sensor's connection dies without DISCONNECT.
    let watcher = subscribe(&url, &["-t", "sensor/1/status", "-v", "-C", "1"]).await;
    let sensor = subscribe(
        &url,
        &[
            "-i",
            "sensor1",
            "-t",
            "sensor/1/cmd",
            "--will-topic",
            "sensor/1/status",
            "--will-payload",
            "offline",
            "--will-qos",
            "1",
        ],
    )
    .await;
    sensor.abort(); // drops the socket: no DISCONNECT
    assert!(timeout(T, sensor)
        .await
        .unwrap()
        .unwrap_err()
        .is_cancelled());
    assert_eq!(output(watcher).await, "sensor/1/status offline\n");

    broker.shutdown().await;
}

#[tokio::test]
async fn stdin_lines_and_json_properties() {
    let (broker, url) = broker().await;
    let sub = subscribe(&url, &["-t", "lines/t", "--json", "-C", "2", "-q", "1"]).await;
    let cli = PubCli::try_parse_from([
        "pub",
        "-L",
        &url,
        "-t",
        "lines/t",
        "-l",
        "-q",
        "1",
        "--user-property",
        "unit=C",
        "--content-type",
        "text/plain",
    ])
    .unwrap();
    let mut input = std::io::Cursor::new(b"a\nb\n".to_vec());
    timeout(
        T,
        mqtt_conformance::pubsub::run_pub_from(cli.args, &mut input),
    )
    .await
    .unwrap()
    .unwrap();
    let out = output(sub).await;
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["payload"], "a");
    assert_eq!(lines[1]["payload"], "b");
    assert_eq!(lines[0]["qos"], 1);
    assert_eq!(lines[0]["properties"]["user_properties"][0][0], "unit");
    assert_eq!(lines[0]["properties"]["content_type"], "text/plain");
    broker.shutdown().await;
}

#[tokio::test]
async fn errors_are_typed() {
    let (broker, url) = broker().await;
    // No payload given.
    let cli = PubCli::try_parse_from(["pub", "-L", &url, "-t", "x"]).unwrap();
    assert!(matches!(run_pub(cli.args).await, Err(PubSubError::Args(_))));
    // A wildcard filter that is invalid: the broker refuses it (or closes).
    let cli = SubCli::try_parse_from(["sub", "-L", &url, "-t", "a/#/b", "-C", "1"]).unwrap();
    let r = timeout(T, run_sub_ready(cli.args, &mut Vec::new(), || {}))
        .await
        .unwrap();
    assert!(
        matches!(
            r,
            Err(PubSubError::SubscribeRefused { .. }) | Err(PubSubError::Client(_))
        ),
        "{r:?}"
    );
    broker.shutdown().await;
    // Nobody listening any more.
    let cli = PubCli::try_parse_from(["pub", "-L", &url, "-t", "x", "-m", "y"]).unwrap();
    assert!(matches!(
        run_pub(cli.args).await,
        Err(PubSubError::Client(_))
    ));
}

/// Run the binary with `args`, bounded to a minute; (exit code, stdout, stderr).
async fn cli(args: &[&str]) -> (Option<i32>, String, String) {
    let out = timeout(
        Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mqtt-conformance"))
            .args(args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_binary_speaks_mosquitto() {
    let (broker, url) = broker().await;
    let hp = host_port(&url);
    let hp: Vec<&str> = hp.iter().map(String::as_str).collect();
    let with = |rest: &[&'static str]| {
        let mut v = hp.clone();
        v.extend_from_slice(rest);
        v
    };

    // -h is the host; --help is the help.
    let (code, help, _) = cli(&["sub", "--help"]).await;
    assert_eq!(code, Some(0));
    assert!(help.contains("--hostname"), "{help}");

    // -W runs out: exit 27, as mosquitto_sub.
    let mut args = vec!["sub"];
    args.extend(with(&["-t", "nothing/here", "-W", "1"]));
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(27), "{stderr}");

    // A retained binary message, printed by a -F format string and as base64; -R hides it.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), [0xff, 0x00, 0x10]).unwrap();
    let path = file.path().to_str().unwrap().to_string();
    let mut args = vec!["pub"];
    args.extend(with(&[
        "-r",
        "-q",
        "1",
        "-t",
        "bin/1",
        "-D",
        "publish",
        "user-property",
        "unit",
        "C",
    ]));
    args.extend(["-f", path.as_str()]);
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    let mut args = vec!["sub"];
    args.extend(with(&[
        "-t",
        "bin/#",
        "-C",
        "1",
        "-F",
        "%t q%q r%r %x %P|%l B",
    ]));
    let (code, stdout, stderr) = cli(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "bin/1 q0 r1 ff0010 unit:C|3 B\n");
    let mut args = vec!["sub"];
    args.extend(with(&[
        "-t", "bin/#", "-C", "1", "--format", "base64", "-N",
    ]));
    let (_, stdout, _) = cli(&args).await;
    assert_eq!(stdout, "/wAQ");
    let mut args = vec!["sub"];
    args.extend(with(&["-t", "bin/#", "-R", "-W", "1"]));
    let (code, stdout, _) = cli(&args).await;
    assert_eq!(
        (code, stdout.as_str()),
        (Some(27), ""),
        "-R skips the stale message"
    );

    // -d shows the packets as MQTT people read them; passwords stay hidden.
    let mut args = vec!["pub"];
    args.extend(with(&[
        "-d", "-t", "dbg", "-m", "m4", "-q", "1", "-u", "u", "-P", "secret",
    ]));
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("-> CONNECT v5"), "{stderr}");
    assert!(
        stderr.contains("-> PUBLISH topic=\"dbg\" qos=1 id=1 retain=0 dup=0 payload=\"m4\" (2 B)"),
        "{stderr}"
    );
    assert!(stderr.contains("<- PUBACK"), "{stderr}");
    assert!(!stderr.contains("secret"), "{stderr}");

    // A QoS 0 publish to an invalid topic: the broker drops the connection; not exit 0, and
    // the reason is named.
    for version in ["5", "3.1.1"] {
        let mut args = vec!["pub"];
        args.extend(with(&["-V", version, "-t", "a/+/b", "-m", "x"]));
        let (code, _, stderr) = cli(&args).await;
        assert_eq!(code, Some(1), "{version}: {stderr}");
        assert!(stderr.contains("closed by broker"), "{version}: {stderr}");
        if version == "5" {
            assert!(stderr.contains("(Topic Name invalid)"), "{stderr}");
        }
    }

    // A refused subscription: named, exit 1.
    let mut args = vec!["sub"];
    args.extend(with(&["-t", "a/#/b", "-C", "1"]));
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.starts_with("sub: "), "{stderr}");
    assert!(
        stderr.contains("(Topic Filter invalid)") || stderr.contains("closed by broker"),
        "{stderr}"
    );

    // Bad -D: usage, exit 2.
    let mut args = vec!["pub"];
    args.extend(with(&[
        "-t",
        "x",
        "-m",
        "y",
        "-D",
        "publish",
        "session-expiry-interval",
        "1",
    ]));
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("not a publish property"), "{stderr}");
    broker.shutdown().await;

    // Nobody listening: unreachable is exit 2, said once.
    let mut args = vec!["pub"];
    args.extend(with(&["-t", "x", "-m", "y"]));
    let (code, _, stderr) = cli(&args).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
}
