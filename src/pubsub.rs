//! `mqtt-conformance pub` and `sub`: poke a broker by hand, as mosquitto_pub/mosquitto_sub and
//! the MQTTX CLI do, through the reference client.
//!
//! Flags follow mosquitto's where they exist (`-t`, `-m`, `-q`, `-r`, `-i`, `-c`, `-k`, `-u`,
//! `-P`, `-L`, `-v`, `-C`, `-W`, `-s`, `-l`, `-n`, `-x`).

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reference_broker::client::{
    parse_url, Client, ClientError, ConnectOptions, Controls, TransportOptions,
};
use reference_broker::codec::{
    Properties, ProtocolVersion, Publish, QoS, ReasonCode, Subscription, SubscriptionOptions, Will,
};
use serde_json::{json, Map, Value};

/// Why `pub` or `sub` failed.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The client failed (connect, refused, closed, timed out...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the payload or writing the output failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The arguments do not make sense together.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The broker refused a subscription.
    #[error("subscription to {filter:?} refused: {code}")]
    SubscribeRefused {
        /// The filter.
        filter: String,
        /// The SUBACK code.
        code: ReasonCode,
    },
    /// The broker answered a publish with an error reason code (MQTT 5).
    #[error("publish to {topic:?} refused: {code}")]
    PublishRefused {
        /// The topic.
        topic: String,
        /// The PUBACK/PUBREC reason code.
        code: ReasonCode,
    },
}

/// MQTT protocol version on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliVersion {
    /// MQTT 3.1.1.
    #[value(name = "3.1.1", alias = "4", alias = "mqttv311")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5", alias = "5.0", alias = "mqttv5")]
    V5,
}

/// Connection options shared by `pub` and `sub`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Broker URL: mqtt://[user:pass@]host:port, mqtts://, ws://, wss://, or host:port.
    #[arg(short = 'L', long, default_value = "mqtt://127.0.0.1:1883")]
    pub url: String,
    /// Client identifier (default: a generated one).
    #[arg(short = 'i', long = "id")]
    pub client_id: Option<String>,
    /// MQTT version.
    #[arg(
        long = "protocol-version",
        alias = "mqtt-version",
        value_enum,
        default_value = "5"
    )]
    pub version: CliVersion,
    /// Disable clean session / clean start (resume a persistent session).
    #[arg(short = 'c', long = "no-clean")]
    pub no_clean: bool,
    /// Session expiry interval in seconds (MQTT 5; with -c a persistent session needs it).
    #[arg(short = 'x', long = "session-expiry")]
    pub session_expiry: Option<u32>,
    /// Keep alive in seconds.
    #[arg(short = 'k', long = "keepalive", default_value_t = 60)]
    pub keep_alive: u16,
    /// User name (overrides the URL's).
    #[arg(short = 'u', long)]
    pub username: Option<String>,
    /// Password (overrides the URL's).
    #[arg(short = 'P', long)]
    pub password: Option<String>,
    /// Will topic.
    #[arg(long = "will-topic")]
    pub will_topic: Option<String>,
    /// Will payload.
    #[arg(long = "will-payload", requires = "will_topic", default_value = "")]
    pub will_payload: String,
    /// Will QoS.
    #[arg(long = "will-qos", requires = "will_topic", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub will_qos: u8,
    /// Will retain flag.
    #[arg(long = "will-retain", requires = "will_topic")]
    pub will_retain: bool,
    /// Will delay interval in seconds (MQTT 5).
    #[arg(long = "will-delay", requires = "will_topic")]
    pub will_delay: Option<u32>,
    /// CA certificate (PEM) for mqtts:// and wss://.
    #[arg(long)]
    pub cafile: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication.
    #[arg(long, requires = "key")]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM).
    #[arg(long, requires = "cert")]
    pub key: Option<PathBuf>,
    /// Do not verify the broker's certificate (test brokers only).
    #[arg(long)]
    pub insecure: bool,
    /// Seconds to wait for each broker answer.
    #[arg(long = "timeout", default_value_t = 10)]
    pub timeout_secs: u64,
}

/// `mqtt-conformance pub`: publish one message, or one per stdin line.
#[derive(Debug, Clone, clap::Args)]
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
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
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

/// `mqtt-conformance sub`: subscribe and print messages.
#[derive(Debug, Clone, clap::Args)]
pub struct SubArgs {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter, repeatable.
    #[arg(short = 't', long = "topic", required = true)]
    pub filters: Vec<String>,
    /// Maximum QoS of the subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print one JSON object per message, with its flags and properties.
    #[arg(long, conflicts_with = "verbose")]
    pub json: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Exit after this many seconds.
    #[arg(short = 'W', long = "wait")]
    pub wait_secs: Option<u64>,
    /// Do not receive our own publications (MQTT 5 No Local).
    #[arg(long = "no-local")]
    pub no_local: bool,
    /// Retain handling 0, 1 or 2 (MQTT 5).
    #[arg(long = "retain-handling", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub retain_handling: u8,
    /// Keep the retain flag as published (MQTT 5 Retain As Published).
    #[arg(long = "retain-as-published")]
    pub retain_as_published: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("expected key=value, got {s:?}"))
}

fn qos(value: u8) -> QoS {
    QoS::from_u8(value).unwrap_or(QoS::AtMostOnce)
}

impl ConnArgs {
    fn protocol(&self) -> ProtocolVersion {
        match self.version {
            CliVersion::V311 => ProtocolVersion::V3_1_1,
            CliVersion::V5 => ProtocolVersion::V5,
        }
    }

    fn options(&self, role: &str) -> ConnectOptions {
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("mqttc-{role}-{}", std::process::id()));
        let mut o = ConnectOptions::new(id)
            .version(self.protocol())
            .clean_start(!self.no_clean)
            .keep_alive(self.keep_alive);
        if let Some(s) = self.session_expiry {
            o = o.session_expiry(s);
        }
        if let Some(user) = &self.username {
            o = o.credentials(
                user.clone(),
                self.password.as_ref().map(|p| Bytes::from(p.clone())),
            );
        }
        if let Some(topic) = &self.will_topic {
            o = o.will(Will {
                topic: topic.clone(),
                payload: Bytes::from(self.will_payload.clone()),
                qos: qos(self.will_qos),
                retain: self.will_retain,
                properties: Properties {
                    will_delay_interval: self.will_delay,
                    ..Properties::default()
                }
                .into(),
            });
        }
        o
    }

    fn transport(&self) -> TransportOptions {
        TransportOptions {
            insecure_tls: self.insecure,
            ca_file: self.cafile.clone(),
            connect_timeout: Some(Duration::from_secs(self.timeout_secs)),
            client_cert: self.cert.clone(),
            client_key: self.key.clone(),
        }
    }

    async fn connect(&self, role: &str, controls: Controls) -> Result<Client, PubSubError> {
        let url = parse_url(&self.url)?;
        let mut client =
            Client::connect_with(&url, &self.transport(), self.options(role), controls).await?;
        client.set_timeout(Duration::from_secs(self.timeout_secs));
        client.set_tracing(false);
        Ok(client)
    }
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
    let mut properties = Properties::default();
    if args.conn.version == CliVersion::V5 {
        properties.message_expiry_interval = args.message_expiry;
        properties.content_type = args.content_type.clone().map(Into::into);
        properties.user_properties = args
            .user_properties
            .iter()
            .map(|(k, v)| (k.as_str().into(), v.as_str().into()))
            .collect();
    }
    let controls = Controls {
        use_topic_aliases: args.topic_alias,
        ..Controls::default()
    };
    let mut client = args.conn.connect("pub", controls).await?;
    for _ in 0..args.repeat {
        for payload in &payloads {
            let reason = client
                .publish_message(Publish {
                    dup: false,
                    qos: qos(args.qos),
                    retain: args.retain,
                    topic: args.topic.clone().into(),
                    packet_id: 0,
                    properties: properties.clone().into(),
                    payload: payload.clone(),
                })
                .await?;
            if !reason.is_success() {
                return Err(PubSubError::PublishRefused {
                    topic: args.topic.clone(),
                    code: reason,
                });
            }
        }
    }
    client.disconnect().await?;
    Ok(())
}

/// Subscribe and print messages to stdout until `-C` messages, `-W` seconds, or the end.
pub async fn run_sub(args: SubArgs) -> Result<(), PubSubError> {
    run_sub_to(args, &mut io::stdout().lock()).await
}

/// [`run_sub`] writing to `out`, one line per message, flushed as it arrives.
pub async fn run_sub_to(args: SubArgs, out: &mut impl Write) -> Result<(), PubSubError> {
    run_sub_ready(args, out, || {}).await
}

/// [`run_sub_to`] calling `ready` once the SUBACK has arrived (tests and scripts that must
/// not publish before the subscription exists).
pub async fn run_sub_ready(
    args: SubArgs,
    out: &mut impl Write,
    ready: impl FnOnce(),
) -> Result<(), PubSubError> {
    let mut client = args.conn.connect("sub", Controls::default()).await?;
    let subscriptions = args
        .filters
        .iter()
        .map(|f| Subscription {
            filter: f.clone(),
            options: SubscriptionOptions {
                qos: qos(args.qos),
                no_local: args.no_local,
                retain_as_published: args.retain_as_published,
                retain_handling: match args.retain_handling {
                    1 => reference_broker::codec::RetainHandling::SendIfNew,
                    2 => reference_broker::codec::RetainHandling::DoNotSend,
                    _ => reference_broker::codec::RetainHandling::SendAtSubscribe,
                },
            },
        })
        .collect();
    let ack = client
        .subscribe_many(subscriptions, Properties::default())
        .await?;
    for (filter, code) in args.filters.iter().zip(&ack.reason_codes) {
        // 3.1.1 SUBACK failure is 0x80 too; granted codes are 0..=2 in both versions.
        if !code.is_success() {
            return Err(PubSubError::SubscribeRefused {
                filter: filter.clone(),
                code: *code,
            });
        }
    }
    ready();
    let deadline = args
        .wait_secs
        .map(|s| Instant::now() + Duration::from_secs(s));
    let mut received = 0u64;
    loop {
        if args.count.is_some_and(|c| received >= c) {
            break;
        }
        // Wake up at least once an hour when no -W is given; keep alive runs meanwhile.
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if wait.is_zero() {
            break;
        }
        match client.recv_message(wait).await {
            Ok(m) => {
                received += 1;
                writeln!(out, "{}", format_message(&m, args.verbose, args.json))?;
                out.flush()?;
            }
            Err(ClientError::Timeout(..)) => {
                if deadline.is_some() {
                    break;
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    client.disconnect().await?;
    Ok(())
}

/// One output line for a message: the payload, `topic payload` with `-v`, or JSON.
pub fn format_message(m: &Publish, verbose: bool, json: bool) -> String {
    let text = String::from_utf8_lossy(&m.payload);
    if json {
        message_json(m).to_string()
    } else if verbose {
        format!("{} {}", m.topic, text)
    } else {
        text.into_owned()
    }
}

/// A message as a JSON object: topic, payload (text, or `payload_hex`), qos, retain, dup,
/// and the MQTT 5 properties that are set.
pub fn message_json(m: &Publish) -> Value {
    let mut obj = Map::new();
    obj.insert("topic".into(), json!(*m.topic));
    match std::str::from_utf8(&m.payload) {
        Ok(text) => obj.insert("payload".into(), json!(text)),
        Err(_) => obj.insert("payload_hex".into(), json!(hex(&m.payload))),
    };
    obj.insert("qos".into(), json!(m.qos.as_u8()));
    obj.insert("retain".into(), json!(m.retain));
    obj.insert("dup".into(), json!(m.dup));
    if m.qos != QoS::AtMostOnce {
        obj.insert("packet_id".into(), json!(m.packet_id));
    }
    let props = properties_json(&m.properties);
    if !props.is_empty() {
        obj.insert("properties".into(), Value::Object(props));
    }
    Value::Object(obj)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The PUBLISH properties that are set, by their snake_case names.
fn properties_json(p: &Properties) -> Map<String, Value> {
    let mut m = Map::new();
    if let Some(v) = p.payload_format_indicator {
        m.insert("payload_format_indicator".into(), json!(v));
    }
    if let Some(v) = p.message_expiry_interval {
        m.insert("message_expiry_interval".into(), json!(v));
    }
    if let Some(v) = &p.content_type {
        m.insert("content_type".into(), json!(**v));
    }
    if let Some(v) = &p.response_topic {
        m.insert("response_topic".into(), json!(**v));
    }
    if let Some(v) = &p.correlation_data {
        m.insert("correlation_data_hex".into(), json!(hex(v)));
    }
    if !p.subscription_identifiers.is_empty() {
        m.insert(
            "subscription_identifiers".into(),
            json!(p.subscription_identifiers),
        );
    }
    if let Some(v) = p.topic_alias {
        m.insert("topic_alias".into(), json!(v));
    }
    if !p.user_properties.is_empty() {
        let pairs: Vec<Value> = p
            .user_properties
            .iter()
            .map(|(k, v)| json!([**k, **v]))
            .collect();
        m.insert("user_properties".into(), Value::Array(pairs));
    }
    m
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn json_line_has_flags_and_properties() {
        let mut p = Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: true,
            topic: "sensor/1/temperature".into(),
            packet_id: 3,
            properties: Default::default(),
            payload: Bytes::from_static(b"21.5"),
        };
        p.properties
            .user_properties
            .push(("unit".into(), "C".into()));
        p.properties.message_expiry_interval = Some(60);
        assert_eq!(
            format_message(&p, false, true),
            r#"{"dup":false,"packet_id":3,"payload":"21.5","properties":{"message_expiry_interval":60,"user_properties":[["unit","C"]]},"qos":1,"retain":true,"topic":"sensor/1/temperature"}"#
        );
        assert_eq!(format_message(&p, true, false), "sensor/1/temperature 21.5");
        assert_eq!(format_message(&p, false, false), "21.5");
        p.payload = Bytes::from_static(&[0xff, 0x00]);
        assert!(format_message(&p, false, true).contains(r#""payload_hex":"ff00""#));
    }
}
