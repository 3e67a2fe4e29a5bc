//! Connection options shared by `pub` and `sub`, and the connected client they drive.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use reference_broker::client::{
    parse_url, Client, ClientError, ConnectOptions, Controls, Event, TransportOptions,
};
use reference_broker::codec::{
    Disconnect, Packet, Properties, ProtocolVersion, QoS, ReasonCode, Will,
};

use super::{parse_qos, props, CliVersion, PubSubError};

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
    #[arg(long = "will-qos", requires = "will_topic", default_value = "0", value_parser = parse_qos)]
    pub will_qos: QoS,
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

/// A refusal code named for `version`: 3.1.x CONNACK return codes have their own table.
fn connack_code(code: ReasonCode, version: ProtocolVersion) -> String {
    if version.is_v5() {
        code.to_string()
    } else {
        crate::run::trace::v3_return_code(code)
    }
}

/// A connected client with its `-d` trace cursor.
pub(super) struct Session {
    pub(super) client: Client,
    pub(super) version: ProtocolVersion,
    debug: bool,
    /// Trace entries printed so far (the trace keeps only its first and last ones).
    shown: u64,
}

impl Session {
    /// Print, for `-d`, the trace entries not printed yet.
    pub(super) fn show_trace(&mut self) {
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
    pub(super) async fn round_trip(&mut self, timeout: Duration) -> Result<(), PubSubError> {
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
    pub(super) async fn disconnect(&mut self, properties: Properties) -> Result<(), PubSubError> {
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
    pub(super) fn protocol(&self) -> ProtocolVersion {
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
                qos: self.will_qos,
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

    pub(super) async fn connect(
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

    pub(super) fn packet_properties(&self) -> Result<props::PacketProperties, PubSubError> {
        if !self.properties.is_empty() && !self.protocol().is_v5() {
            return Err(PubSubError::Args("-D properties need MQTT 5 (-V 5)".into()));
        }
        props::parse(&self.properties).map_err(PubSubError::Args)
    }
}
