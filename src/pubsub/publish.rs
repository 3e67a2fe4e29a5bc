//! `pub`: publish one message, or one per stdin line.

use std::io::{self, BufRead};
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::Controls;
use reference_broker::codec::{Publish, QoS};

use super::{parse_qos, ConnArgs, PubSubError};

/// `mqtt-conformance pub`: publish one message, or one per stdin line.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct PubArgs {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic to publish to.
    #[arg(short = 't', long)]
    pub topic: String,
    /// Payload.
    #[arg(short = 'm', long = "message", group = "payload")]
    pub message: Option<String>,
    /// Send the contents of a file as the payload.
    #[arg(short = 'f', long = "file", group = "payload")]
    pub file: Option<PathBuf>,
    /// Read the whole of stdin as one payload.
    #[arg(short = 's', long = "stdin-file", group = "payload")]
    pub stdin_file: bool,
    /// Publish each line of stdin as a message.
    #[arg(short = 'l', long = "stdin-line", group = "payload")]
    pub stdin_line: bool,
    /// Send an empty payload (with -r: delete the retained message).
    #[arg(short = 'n', long = "null-message", group = "payload")]
    pub null_message: bool,
    /// QoS.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Retain the message.
    #[arg(short = 'r', long)]
    pub retain: bool,
    /// Publish the message this many times.
    #[arg(long, default_value_t = 1)]
    pub repeat: u32,
    /// Message expiry interval in seconds (MQTT 5).
    #[arg(long = "message-expiry")]
    pub message_expiry: Option<u32>,
    /// Content type (MQTT 5).
    #[arg(long = "content-type")]
    pub content_type: Option<String>,
    /// User property `key=value` (MQTT 5), repeatable.
    #[arg(long = "user-property", value_parser = parse_key_value)]
    pub user_properties: Vec<(String, String)>,
    /// Use topic aliases when the broker allows them (MQTT 5).
    #[arg(long = "topic-alias")]
    pub topic_alias: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

/// Publish as `args` say: one message (`-m`, `-f`, `-s`, `-n`), or one per stdin line (`-l`).
pub async fn run_pub(args: PubArgs) -> Result<(), PubSubError> {
    run_pub_from(args, &mut io::stdin().lock()).await
}

/// [`run_pub`] reading `-s`/`-l` payloads from `input`.
pub async fn run_pub_from(args: PubArgs, input: &mut impl BufRead) -> Result<(), PubSubError> {
    let payloads: Vec<Bytes> = if let Some(m) = &args.message {
        vec![Bytes::from(m.clone())]
    } else if let Some(path) = &args.file {
        vec![Bytes::from(std::fs::read(path)?)]
    } else if args.stdin_file {
        let mut all = Vec::new();
        input.read_to_end(&mut all)?;
        vec![Bytes::from(all)]
    } else if args.stdin_line {
        let mut lines = Vec::new();
        for line in input.lines() {
            lines.push(Bytes::from(line?));
        }
        lines
    } else if args.null_message {
        vec![Bytes::new()]
    } else {
        return Err(PubSubError::Args(
            "give a payload: -m MESSAGE, -f FILE, -s, -l or -n".into(),
        ));
    };
    let packet_props = args.conn.packet_properties()?;
    let mut properties = packet_props.publish.clone();
    if args.conn.protocol().is_v5() {
        if args.message_expiry.is_some() {
            properties.message_expiry_interval = args.message_expiry;
        }
        if let Some(c) = &args.content_type {
            properties.content_type = Some(c.as_str().into());
        }
        properties.user_properties.extend(
            args.user_properties
                .iter()
                .map(|(k, v)| (k.as_str().into(), v.as_str().into())),
        );
    }
    let controls = Controls {
        use_topic_aliases: args.topic_alias,
        ..Controls::default()
    };
    let mut s = args.conn.connect("pub", controls, &packet_props).await?;
    for _ in 0..args.repeat {
        for payload in &payloads {
            let reason = s
                .client
                .publish_message(Publish {
                    dup: false,
                    qos: args.qos,
                    retain: args.retain,
                    topic: args.topic.clone().into(),
                    packet_id: 0,
                    properties: properties.clone().into(),
                    payload: payload.clone(),
                })
                .await;
            s.show_trace();
            let reason = reason?;
            if !reason.is_success() {
                return Err(PubSubError::PublishRefused {
                    topic: args.topic.clone(),
                    code: reason,
                });
            }
        }
    }
    if args.qos == QoS::AtMostOnce {
        // Nothing acknowledges QoS 0: ask the broker whether it kept the connection.
        let timeout = Duration::from_secs(args.conn.timeout_secs);
        let alive = s.round_trip(timeout).await;
        s.show_trace();
        alive?;
    }
    s.disconnect(packet_props.disconnect).await
}
