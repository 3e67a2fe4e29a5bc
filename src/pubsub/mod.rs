//! `mqtt-conformance pub` and `sub`: poke a broker by hand, as mosquitto_pub/mosquitto_sub and
//! the MQTTX CLI do, through the reference client.
//!
//! Flags follow mosquitto's where they exist (`-h`, `-p`, `-V`, `-t`, `-m`, `-q`, `-r`, `-i`,
//! `-c`, `-k`, `-u`, `-P`, `-L`, `-d`, `-D`, `-v`, `-C`, `-W`, `-F`, `-N`, `-R`, `-E`, `-T`,
//! `-s`, `-l`, `-n`, `-x`), with the MQTTX long forms (`--hostname`, `--port`,
//! `--mqtt-version`, `--client-id`) as aliases. `docs/pubsub.md` has the table.

pub mod format;
pub mod props;

use std::io::{self, BufRead, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use reference_broker::client::{
    parse_url, Client, ClientError, ConnectOptions, Controls, Event, TransportOptions,
};
use reference_broker::codec::{
    Disconnect, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode, RetainHandling,
    Subscription, SubscriptionOptions, Will,
};

pub use format::{message_json, Encoding};

/// Why `pub` or `sub` failed; [`PubSubError::exit_code`] maps each to the command's exit code.
#[derive(Debug, thiserror::Error)]
pub enum PubSubError {
    /// The client failed (connect, closed by the broker, timed out...).
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the payload or writing the output failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// The arguments do not make sense together.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The broker refused the connection (CONNACK with an error code).
    #[error("connection refused: {code}")]
    ConnectRefused {
        /// The code, named for the protocol version in use.
        code: String,
    },
    /// The broker refused a subscription.
    #[error("subscription to {filter:?} refused: {code}")]
    SubscribeRefused {
        /// The filter.
        filter: String,
        /// The SUBACK code, named for the protocol version in use.
        code: String,
    },
    /// The broker answered a publish with an error reason code (MQTT 5).
    #[error("publish to {topic:?} refused: {code}")]
    PublishRefused {
        /// The topic.
        topic: String,
        /// The PUBACK/PUBREC reason code.
        code: ReasonCode,
    },
    /// `-W` ran out before `-C` messages arrived.
    #[error("timed out after {0} s (-W)")]
    TimedOut(u64),
}

impl PubSubError {
    /// The exit code: 27 for `-W` (as mosquitto_sub), 2 for bad arguments and a broker that
    /// cannot be reached, 1 for anything the broker refused or cut.
    pub fn exit_code(&self) -> u8 {
        match self {
            PubSubError::TimedOut(_) => crate::exit::TIMED_OUT,
            PubSubError::Args(_)
            | PubSubError::Client(
                ClientError::InvalidUrl { .. }
                | ClientError::Connect { .. }
                | ClientError::Tls(_)
                | ClientError::WebSocket(_),
            ) => crate::exit::USAGE,
            _ => crate::exit::FAILURES,
        }
    }
}

/// MQTT protocol version on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CliVersion {
    /// MQTT 3.1.
    #[value(name = "3.1", alias = "31", alias = "mqttv31", alias = "3")]
    V31,
    /// MQTT 3.1.1.
    #[value(name = "3.1.1", alias = "311", alias = "4", alias = "mqttv311")]
    V311,
    /// MQTT 5.0.
    #[value(name = "5", alias = "5.0", alias = "mqttv5")]
    V5,
}

/// Connection options shared by `pub` and `sub`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnArgs {
    /// Broker URL: mqtt://[user:pass@]host:port, mqtts://, ws://, wss://; overrides -h/-p.
    #[arg(short = 'L', long)]
    pub url: Option<String>,
    /// Broker host.
    #[arg(
        short = 'h',
        long = "host",
        visible_alias = "hostname",
        default_value = "localhost"
    )]
    pub host: String,
    /// Broker port (default 1883, 8883 with --cafile or --cert).
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Client identifier (default: a generated one).
    #[arg(short = 'i', long = "id", visible_alias = "client-id")]
    pub client_id: Option<String>,
    /// MQTT version: 5, 3.1.1 (also 311, mqttv311) or 3.1.
    #[arg(
        short = 'V',
        long = "protocol-version",
        visible_alias = "mqtt-version",
        value_enum,
        default_value = "5"
    )]
    pub version: CliVersion,
    /// Disable clean session / clean start (resume a persistent session).
    #[arg(
        short = 'c',
        long = "disable-clean-session",
        visible_alias = "no-clean"
    )]
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
    /// CA certificate (PEM): use TLS (mqtts://) and trust this CA.
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
    /// Print every packet sent and received (stderr).
    #[arg(short = 'd', long)]
    pub debug: bool,
    /// An MQTT 5 property: -D COMMAND NAME VALUE (user-property takes NAME KEY VALUE), e.g.
    /// `-D connect session-expiry-interval 60`, `-D publish user-property unit C`.
    #[arg(short = 'D', long = "property", num_args = 3..=4, value_names = ["COMMAND", "NAME", "VALUE"])]
    pub properties: Vec<String>,
    /// Print help (-h is the host, as in mosquitto_pub/sub).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
}

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
#[command(disable_help_flag = true)]
pub struct SubArgs {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter, repeatable.
    #[arg(short = 't', long = "topic", required = true)]
    pub filters: Vec<String>,
    /// Do not print messages whose topic matches this filter, repeatable.
    #[arg(short = 'T', long = "filter-out")]
    pub filter_out: Vec<String>,
    /// Maximum QoS of the subscriptions.
    #[arg(short = 'q', long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print one JSON object per message, with its flags and properties.
    #[arg(long, conflicts_with_all = ["verbose", "format_string"])]
    pub json: bool,
    /// A mosquitto_sub format string: %t topic, %p payload, %q QoS, %r retain, %m id, %l
    /// length, %x hex, %j JSON, %I/%U time, %P user properties... (see docs/pubsub.md).
    #[arg(short = 'F', long = "format-string", value_name = "FORMAT")]
    pub format_string: Option<String>,
    /// Payload encoding: text, hex or base64 (for binary payloads).
    #[arg(long = "format", value_enum, default_value = "text")]
    pub encoding: Encoding,
    /// Do not add a newline after each message.
    #[arg(short = 'N')]
    pub no_newline: bool,
    /// Do not print stale (retained) messages.
    #[arg(short = 'R', long = "no-retained")]
    pub no_retained: bool,
    /// Exit once the subscriptions are acknowledged (sets up a persistent session with -c).
    #[arg(short = 'E')]
    pub exit_after_subscribe: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Give up after this many seconds, with exit code 27 (as mosquitto_sub).
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

/// A refusal code named for `version`: 3.1.x CONNACK return codes have their own table.
fn connack_code(code: ReasonCode, version: ProtocolVersion) -> String {
    if version.is_v5() {
        code.to_string()
    } else {
        crate::run::trace::v3_return_code(code)
    }
}

/// A SUBACK failure named for `version` (3.1.1 has one: 0x80 Failure).
fn suback_code(code: ReasonCode, version: ProtocolVersion) -> String {
    if version.is_v5() {
        code.to_string()
    } else {
        format!("0x{:02X} (Failure)", code.0)
    }
}

/// A connected client with its `-d` trace cursor.
struct Session {
    client: Client,
    version: ProtocolVersion,
    debug: bool,
    /// Trace entries printed so far (the trace keeps only its first and last ones).
    shown: u64,
}

impl Session {
    /// Print, for `-d`, the trace entries not printed yet.
    fn show_trace(&mut self) {
        if !self.debug {
            return;
        }
        let trace = self.client.trace();
        for entry in trace.since(self.shown) {
            eprintln!("{entry}");
        }
        self.shown = trace.total();
    }

    /// After QoS 0 publishes, make sure the broker still has us: a PINGREQ must be answered.
    /// A broker that dropped the connection (an invalid topic, say) makes this an error.
    async fn round_trip(&mut self, timeout: Duration) -> Result<(), PubSubError> {
        self.client.send_packet(Packet::PingReq).await?;
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.client.next_event(left).await? {
                Event::PingResp => return Ok(()),
                Event::Disconnected(d) => {
                    return Err(ClientError::Closed(format!(
                        " with DISCONNECT reason {}",
                        d.reason
                    ))
                    .into())
                }
                _ => continue,
            }
        }
    }

    /// DISCONNECT with the `-D disconnect` properties.
    async fn disconnect(&mut self, properties: Properties) -> Result<(), PubSubError> {
        let result = self
            .client
            .disconnect_with(Disconnect {
                properties: properties.into(),
                ..Disconnect::default()
            })
            .await;
        self.show_trace();
        Ok(result?)
    }
}

impl ConnArgs {
    fn protocol(&self) -> ProtocolVersion {
        match self.version {
            CliVersion::V31 => ProtocolVersion::V3_1,
            CliVersion::V311 => ProtocolVersion::V3_1_1,
            CliVersion::V5 => ProtocolVersion::V5,
        }
    }

    /// The broker URL: `-L`, else `-h`/`-p` (TLS when a CA or client certificate is given).
    fn broker_url(&self) -> String {
        if let Some(url) = &self.url {
            return url.clone();
        }
        let tls = self.cafile.is_some() || self.cert.is_some();
        let port = self.port.unwrap_or(if tls { 8883 } else { 1883 });
        let host = if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{}://{host}:{port}", if tls { "mqtts" } else { "mqtt" })
    }

    fn options(&self, role: &str, props: &props::PacketProperties) -> ConnectOptions {
        let id = self
            .client_id
            .clone()
            .unwrap_or_else(|| format!("mqttc-{role}-{}", std::process::id()));
        let mut o = ConnectOptions::new(id)
            .version(self.protocol())
            .clean_start(!self.no_clean)
            .keep_alive(self.keep_alive);
        if self.protocol().is_v5() {
            o.properties = props.connect.clone();
        }
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
            let mut properties = props.will.clone();
            if self.will_delay.is_some() {
                properties.will_delay_interval = self.will_delay;
            }
            o = o.will(Will {
                topic: topic.clone(),
                payload: Bytes::from(self.will_payload.clone()),
                qos: qos(self.will_qos),
                retain: self.will_retain,
                properties: properties.into(),
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

    async fn connect(
        &self,
        role: &str,
        controls: Controls,
        props: &props::PacketProperties,
    ) -> Result<Session, PubSubError> {
        let url = parse_url(&self.broker_url())?;
        let version = self.protocol();
        let client = match Client::connect_with(
            &url,
            &self.transport(),
            self.options(role, props),
            controls,
        )
        .await
        {
            Ok(c) => c,
            Err(ClientError::Refused(code)) => {
                return Err(PubSubError::ConnectRefused {
                    code: connack_code(code, version),
                })
            }
            Err(e) => return Err(e.into()),
        };
        let mut session = Session {
            client,
            version,
            debug: self.debug,
            shown: 0,
        };
        session
            .client
            .set_timeout(Duration::from_secs(self.timeout_secs));
        session.client.set_tracing(self.debug);
        session.show_trace();
        Ok(session)
    }

    fn packet_properties(&self) -> Result<props::PacketProperties, PubSubError> {
        if !self.properties.is_empty() && !self.protocol().is_v5() {
            return Err(PubSubError::Args("-D properties need MQTT 5 (-V 5)".into()));
        }
        props::parse(&self.properties).map_err(PubSubError::Args)
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
                    qos: qos(args.qos),
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
    if args.qos == 0 {
        // Nothing acknowledges QoS 0: ask the broker whether it kept the connection.
        let timeout = Duration::from_secs(args.conn.timeout_secs);
        let alive = s.round_trip(timeout).await;
        s.show_trace();
        alive?;
    }
    s.disconnect(packet_props.disconnect).await
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
    let started = Instant::now();
    let packet_props = args.conn.packet_properties()?;
    let mut s = args
        .conn
        .connect("sub", Controls::default(), &packet_props)
        .await?;
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
                    1 => RetainHandling::SendIfNew,
                    2 => RetainHandling::DoNotSend,
                    _ => RetainHandling::SendAtSubscribe,
                },
            },
        })
        .collect();
    let ack = s
        .client
        .subscribe_many(subscriptions, packet_props.subscribe.clone())
        .await;
    s.show_trace();
    let ack = ack?;
    for (filter, code) in args.filters.iter().zip(&ack.reason_codes) {
        // 3.1.1 SUBACK failure is 0x80 too; granted codes are 0..=2 in both versions.
        if !code.is_success() {
            return Err(PubSubError::SubscribeRefused {
                filter: filter.clone(),
                code: suback_code(*code, s.version),
            });
        }
    }
    ready();
    if args.exit_after_subscribe {
        return s.disconnect(packet_props.disconnect).await;
    }
    // -W counts from the connection, as mosquitto_sub's does.
    let deadline = args.wait_secs.map(|w| started + Duration::from_secs(w));
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
            let _ = s.disconnect(packet_props.disconnect.clone()).await;
            return Err(PubSubError::TimedOut(args.wait_secs.unwrap_or(0)));
        }
        let next = s.client.recv_message(wait).await;
        s.show_trace();
        match next {
            Ok(m) => {
                if (args.no_retained && m.retain)
                    || args
                        .filter_out
                        .iter()
                        .any(|f| reference_broker::topic::matches(f, &m.topic))
                {
                    continue;
                }
                received += 1;
                let mut bytes = if args.json {
                    message_json(&m).to_string().into_bytes()
                } else if let Some(f) = &args.format_string {
                    format::template(f, &m, args.encoding, SystemTime::now())
                } else {
                    format::line(&m, args.verbose, args.encoding)
                };
                if !args.no_newline {
                    bytes.push(b'\n');
                }
                out.write_all(&bytes)?;
                out.flush()?;
            }
            Err(ClientError::Timeout(..)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    s.disconnect(packet_props.disconnect).await
}
