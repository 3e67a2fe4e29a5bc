//! `pub` and `sub` against the reference broker: the tutorial walkthrough (two sensors, a
//! wildcard subscriber, a retained message, offline messages for a persistent session, a
//! last will after a cut), driven through the same argument parsing as the command line.
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

async fn publish(url: &str, args: &[&str]) {
    let mut argv = vec!["pub", "-L", url];
    argv.extend_from_slice(args);
    let cli = PubCli::try_parse_from(argv).unwrap();
    timeout(T, run_pub(cli.args)).await.unwrap().unwrap();
}

/// Start `sub` and wait for its SUBACK; the task returns what it printed.
async fn subscribe(url: &str, args: &[&str]) -> JoinHandle<Result<String, PubSubError>> {
    let mut argv = vec!["sub".to_string(), "-L".into(), url.to_string()];
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
    for version in ["3.1.1", "5"] {
        let id = format!("dashboard-{version}");
        let session = [
            "-i",
            &id,
            "-c",
            "-x",
            "3600",
            "-q",
            "1",
            "--protocol-version",
            version,
        ];
        let mut first = session.to_vec();
        first.extend(["-t", "sensor/+/temperature", "-W", "0"]);
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
