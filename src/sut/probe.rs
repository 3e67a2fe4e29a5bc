//! Discovery: what a broker accepts and announces, learnt by connecting before any case runs
//! (each protocol version, the MQTT 5 CONNACK's limits, how it treats credentials).

use std::time::Duration;

use bytes::Bytes;
use reference_broker::client::{ClientError, Connection, Received, TransportOptions};
use reference_broker::codec::reason::v3;
use reference_broker::codec::{
    Connect, DecodeError, Disconnect, Packet, Properties, ProtocolVersion, QoS, ReasonCode,
    Subscribe, Subscription, SubscriptionOptions,
};
use serde::Serialize;

use super::depth::{self, Depth};
use super::window::{self, Window};
use super::TargetError;
use crate::profile::{Credentials as ProfileCredentials, Profile};
use crate::redact::redact_url;

/// How long the probe waits for a CONNACK.
pub const PROBE_WAIT: Duration = Duration::from_secs(5);
/// How long the probe waits for the SUBACK of its SUBSCRIBE at QoS 2 (no answer: nothing
/// learnt, the cases judge).
pub const SUBACK_WAIT: Duration = Duration::from_secs(2);

/// The versions the probe tries, newest first.
pub const PROBED: [ProtocolVersion; 3] = [
    ProtocolVersion::V5,
    ProtocolVersion::V3_1_1,
    ProtocolVersion::V3_1,
];

/// How a broker answered one CONNECT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Answer {
    /// CONNACK with a success code.
    Accepted,
    /// CONNACK refusing the connection.
    Refused {
        /// The code as received.
        code: u8,
        /// What it means, in the numbering it came in.
        meaning: String,
        /// True when an MQTT 5 CONNECT got a CONNACK in MQTT 3.1.1 form.
        v311_form: bool,
    },
    /// The connection closed without a CONNACK.
    Closed,
    /// Nothing arrived within [`PROBE_WAIT`].
    Silent,
    /// The answer did not decode.
    Malformed {
        /// The decode error.
        error: String,
    },
    /// No TCP/TLS/WebSocket connection opened.
    Unreachable {
        /// The cause.
        error: String,
    },
}

impl Answer {
    /// True for an accepted connection.
    pub fn accepted(&self) -> bool {
        matches!(self, Answer::Accepted)
    }

    /// True for a CONNACK refusal or a close without CONNACK: the broker said no.
    pub fn refused(&self) -> bool {
        matches!(self, Answer::Refused { .. } | Answer::Closed)
    }

    /// One line for tables and skip reasons.
    pub fn describe(&self) -> String {
        match self {
            Answer::Accepted => "accepted".into(),
            Answer::Refused {
                code,
                meaning,
                v311_form,
            } => format!(
                "refused: CONNACK 0x{code:02X} ({meaning}){}",
                if *v311_form {
                    " in MQTT 3.1.1 form"
                } else {
                    ""
                }
            ),
            Answer::Closed => "refused: closed without CONNACK".into(),
            Answer::Silent => format!("no answer within {PROBE_WAIT:?}"),
            Answer::Malformed { error } => format!("malformed answer: {error}"),
            Answer::Unreachable { error } => format!("no connection: {error}"),
        }
    }
}

/// One version tried.
#[derive(Debug, Clone, Serialize)]
pub struct VersionFinding {
    /// `3.1`, `3.1.1` or `5`.
    pub version: &'static str,
    /// The answer to a CONNECT of that version (with the target's credentials).
    pub answer: Answer,
}

/// What the probe learnt about a broker.
#[derive(Debug, Clone, Serialize)]
pub struct Discovery {
    /// The broker URL, without credentials.
    pub url: String,
    /// One finding per version, newest first.
    pub versions: Vec<VersionFinding>,
    /// What the MQTT 5 CONNACK announced (when MQTT 5 was accepted).
    #[serde(skip)]
    pub connack: Option<Properties>,
    /// The announced values as `name = value` pairs (for reports and profiles).
    pub announced: Vec<(String, String)>,
    /// A CONNECT without user name and password.
    pub anonymous: Option<Answer>,
    /// A CONNECT with a user name and a password the broker cannot know.
    pub bad_credentials: Option<Answer>,
    /// A CONNECT with a zero-byte ClientId (MQTT-3.1.3-6: a server MAY accept it).
    pub zero_length_client_id: Option<Answer>,
    /// The QoS granted to a SUBSCRIBE at QoS 2 (the highest the broker delivers at).
    pub granted_qos: Option<u8>,
    /// The in-flight window towards a client, by trying (when QoS 1 was granted).
    pub in_flight: Option<Window>,
    /// The deepest topic accepted, by trying.
    pub topic_depth: Option<Depth>,
}

impl Discovery {
    /// The answer to a CONNECT of `version`.
    pub fn answer(&self, version: ProtocolVersion) -> Option<&Answer> {
        self.versions
            .iter()
            .find(|f| f.version == label(version))
            .map(|f| &f.answer)
    }

    /// Why cases of `version` cannot run, or None when the broker accepted it.
    pub fn refusal(&self, version: ProtocolVersion) -> Option<String> {
        let answer = self.answer(version)?;
        (!answer.accepted()).then(|| {
            format!(
                "the probe's MQTT {} CONNECT was {}",
                label(version),
                answer.describe()
            )
        })
    }

    /// True when the broker was seen to refuse a wrong password: it checks passwords.
    pub fn checks_passwords(&self) -> bool {
        self.bad_credentials.as_ref().is_some_and(Answer::refused)
    }

    /// What the probe learnt, as a broker profile (`probe --write-profile`): the credentials
    /// it used, the announced features and limits, and what trying showed.
    pub fn profile(&self, credentials: Option<&Credentials>) -> Profile {
        let flag = |v: Option<u8>| Some(v.is_none_or(|b| b != 0));
        let mut p = Profile {
            description: Some(format!(
                "written by `mqtt-conformance probe` from what {} announced and accepted",
                self.url
            )),
            credentials: credentials.map(|(u, pw)| ProfileCredentials {
                username: u.clone(),
                password: pw.clone(),
            }),
            ..Profile::default()
        };
        if let Some(c) = &self.connack {
            p.features.retain = flag(c.retain_available);
            p.features.wildcard_subscriptions = flag(c.wildcard_subscription_available);
            p.features.shared_subscriptions = flag(c.shared_subscription_available);
            p.features.subscription_identifiers = flag(c.subscription_identifier_available);
            p.limits.maximum_qos = Some(c.maximum_qos.unwrap_or(2));
            p.limits.receive_maximum = c.receive_maximum;
            p.limits.maximum_packet_size = c.maximum_packet_size;
            p.limits.topic_alias_maximum = Some(c.topic_alias_maximum.unwrap_or(0));
            p.limits.server_keep_alive = c.server_keep_alive;
        }
        if let Some(q) = self.granted_qos {
            p.limits.maximum_qos = Some(p.limits.maximum_qos.map_or(q, |m| m.min(q)));
        }
        if let Some(z) = &self.zero_length_client_id {
            p.features.zero_length_client_id = Some(!z.refused());
        }
        if credentials.is_some() {
            p.features.authentication = Some(self.checks_passwords());
        }
        p.limits.max_inflight = self.in_flight.as_ref().and_then(Window::limit);
        p.limits.max_topic_levels = self.topic_depth.as_ref().and_then(Depth::limit);
        p
    }

    /// The findings as rows `(what, finding)`, for the console table.
    pub fn rows(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> = self
            .versions
            .iter()
            .map(|f| (format!("MQTT {}", f.version), f.answer.describe()))
            .collect();
        for (name, value) in &self.announced {
            rows.push((format!("CONNACK {name}"), value.clone()));
        }
        if let Some(a) = &self.anonymous {
            rows.push(("anonymous CONNECT".into(), a.describe()));
        }
        if let Some(a) = &self.bad_credentials {
            rows.push(("wrong password".into(), a.describe()));
        }
        if let Some(a) = &self.zero_length_client_id {
            rows.push(("zero-byte ClientId".into(), a.describe()));
        }
        rows.push((
            "SUBSCRIBE at QoS 2".into(),
            match self.granted_qos {
                Some(q) => format!("granted QoS {q}"),
                None => "refused or unanswered".into(),
            },
        ));
        if let Some(w) = &self.in_flight {
            rows.push(("in-flight window towards a client".into(), w.describe()));
        }
        if let Some(d) = &self.topic_depth {
            rows.push(("topic depth".into(), d.describe()));
        }
        rows
    }
}

/// The label of a version in findings.
pub fn label(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3_1 => "3.1",
        ProtocolVersion::V3_1_1 => "3.1.1",
        ProtocolVersion::V5 => "5",
    }
}

/// What a CONNACK announces, as `name = value` pairs, absent properties with their default.
pub fn announced(p: &Properties) -> Vec<(String, String)> {
    let flag = |v: Option<u8>| match v {
        None => "1 (absent: available)".to_string(),
        Some(b) => b.to_string(),
    };
    let opt = |v: Option<String>, absent: &str| v.unwrap_or_else(|| format!("absent ({absent})"));
    vec![
        (
            "maximum_qos".into(),
            opt(p.maximum_qos.map(|q| q.to_string()), "2"),
        ),
        ("retain_available".into(), flag(p.retain_available)),
        (
            "receive_maximum".into(),
            opt(p.receive_maximum.map(|q| q.to_string()), "65535"),
        ),
        (
            "topic_alias_maximum".into(),
            opt(p.topic_alias_maximum.map(|q| q.to_string()), "0"),
        ),
        (
            "maximum_packet_size".into(),
            opt(p.maximum_packet_size.map(|q| q.to_string()), "no limit"),
        ),
        (
            "wildcard_subscription_available".into(),
            flag(p.wildcard_subscription_available),
        ),
        (
            "shared_subscription_available".into(),
            flag(p.shared_subscription_available),
        ),
        (
            "subscription_identifier_available".into(),
            flag(p.subscription_identifier_available),
        ),
        (
            "server_keep_alive".into(),
            opt(p.server_keep_alive.map(|q| q.to_string()), "the client's"),
        ),
        (
            "session_expiry_interval".into(),
            opt(
                p.session_expiry_interval.map(|q| q.to_string()),
                "the client's",
            ),
        ),
    ]
}

/// Credentials for a CONNECT: user name and password.
pub type Credentials = (String, String);

/// One CONNECT of `version` on a fresh connection, and the broker's answer (with the
/// CONNACK properties when it accepted).
pub async fn try_connect(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    client_id: &str,
    credentials: Option<&Credentials>,
) -> (Answer, Option<Properties>) {
    match session(url, transport, version, client_id, credentials).await {
        Ok((mut conn, props)) => {
            let _ = conn.send(&Packet::Disconnect(Disconnect::default())).await;
            conn.abort();
            (Answer::Accepted, Some(props))
        }
        Err(answer) => (answer, None),
    }
}

/// The Keep Alive of the probe's CONNECTs.
const PROBE_KEEP_ALIVE: u16 = 30;

/// Whether a Server Keep Alive equal to the probe's Keep Alive only echoes the client's: a
/// second MQTT 5 CONNECT with another Keep Alive gets that one back (ejabberd does so). Such a
/// broker imposes nothing, and the cases that need their own Keep Alive can run.
async fn echoes_keep_alive(
    url: &str,
    transport: &TransportOptions,
    client_id: &str,
    credentials: Option<&Credentials>,
) -> bool {
    const OTHER: u16 = 47;
    match session_with_keep_alive(
        url,
        transport,
        ProtocolVersion::V5,
        client_id,
        credentials,
        OTHER,
    )
    .await
    {
        Ok((mut conn, props)) => {
            let _ = conn.send(&Packet::Disconnect(Disconnect::default())).await;
            conn.abort();
            props.server_keep_alive == Some(OTHER)
        }
        Err(_) => false,
    }
}

/// A connection with an accepted CONNECT of `version`, or the broker's answer.
pub(super) async fn session(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    client_id: &str,
    credentials: Option<&Credentials>,
) -> Result<(Connection, Properties), Answer> {
    session_with_keep_alive(
        url,
        transport,
        version,
        client_id,
        credentials,
        PROBE_KEEP_ALIVE,
    )
    .await
}

/// [`session`] with the CONNECT's Keep Alive.
async fn session_with_keep_alive(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    client_id: &str,
    credentials: Option<&Credentials>,
    keep_alive: u16,
) -> Result<(Connection, Properties), Answer> {
    let mut conn = match Connection::open(url, transport).await {
        Ok(c) => c,
        Err(e) => {
            return Err(Answer::Unreachable {
                error: redact_error(&e),
            })
        }
    };
    // A huge length claim is refused from its header, never buffered.
    conn.set_max_packet_size(super::READ_LIMIT);
    let connect = Connect {
        protocol: version,
        clean_start: true,
        keep_alive,
        client_id: client_id.to_string(),
        will: None,
        username: credentials.map(|(u, _)| u.clone()),
        password: credentials.map(|(_, p)| Bytes::from(p.clone())),
        properties: Properties::default().into(),
    };
    if let Err(e) = conn.send(&Packet::Connect(Box::new(connect))).await {
        conn.abort();
        return Err(match e {
            ClientError::Closed(_) => Answer::Closed,
            other => Answer::Unreachable {
                error: redact_error(&other),
            },
        });
    }
    let answer = match conn.recv(PROBE_WAIT).await {
        Ok(Received::Packet(Packet::ConnAck(ack))) => {
            let success = if version.is_v5() {
                ack.code.is_success()
            } else {
                ack.code.0 == 0
            };
            if success {
                return Ok((conn, (*ack.properties).clone()));
            }
            refusal(ack.code, version.is_v5(), false)
        }
        Ok(Received::Packet(other)) => Answer::Malformed {
            error: format!("{:?} instead of CONNACK", other.packet_type()),
        },
        Ok(Received::Closed) | Err(ClientError::Closed(_)) => Answer::Closed,
        Err(ClientError::Decode(DecodeError::V311ConnAckRefusal(code))) => {
            refusal(ReasonCode(code), false, true)
        }
        Err(ClientError::Timeout(..)) => Answer::Silent,
        Err(ClientError::Decode(e)) => Answer::Malformed {
            error: e.to_string(),
        },
        Err(ClientError::Io(_)) => Answer::Closed,
        Err(e) => Answer::Malformed {
            error: redact_error(&e),
        },
    };
    conn.abort();
    Err(answer)
}

/// The QoS a SUBSCRIBE at QoS 2 is granted (a broker may grant less, MQTT-3.8.4-6 /
/// 3.9.3): the highest QoS it delivers at. None when the SUBSCRIBE is refused or unanswered.
pub async fn granted_qos(
    url: &str,
    transport: &TransportOptions,
    version: ProtocolVersion,
    filter: &str,
    run_id: &str,
    credentials: Option<&Credentials>,
) -> Option<u8> {
    let id = format!("{run_id}-probe-qos");
    let (mut conn, _) = session(url, transport, version, &id, credentials)
        .await
        .ok()?;
    let subscribe = Subscribe {
        packet_id: 1,
        properties: Properties::default().into(),
        subscriptions: vec![Subscription {
            filter: filter.to_string(),
            options: SubscriptionOptions {
                qos: QoS::ExactlyOnce,
                ..SubscriptionOptions::default()
            },
        }],
    };
    let mut granted = None;
    if conn.send(&Packet::Subscribe(subscribe)).await.is_ok() {
        if let Ok(Received::Packet(Packet::SubAck(ack))) = conn.recv(SUBACK_WAIT).await {
            granted = ack.reason_codes.first().map(|c| c.0).filter(|c| *c <= 2);
        }
    }
    let _ = conn.send(&Packet::Disconnect(Disconnect::default())).await;
    conn.abort();
    granted
}

fn refusal(code: ReasonCode, v5_numbering: bool, v311_form: bool) -> Answer {
    let meaning = if v5_numbering {
        code.name()
            .unwrap_or("not an MQTT 5 CONNACK code")
            .to_string()
    } else {
        v3::connack_name(code)
            .unwrap_or("not a 3.1.1 return code")
            .to_string()
    };
    Answer::Refused {
        code: code.0,
        meaning,
        v311_form,
    }
}

/// A client error without the broker URL's credentials (the URL is never in the text).
pub(crate) fn redact_error(e: &ClientError) -> String {
    match e {
        ClientError::InvalidUrl { .. } => "invalid broker URL".into(),
        ClientError::Connect { source, .. } => source.to_string(),
        other => other.to_string(),
    }
}

/// Probe the broker at `url`: every version, then (on the newest accepted version) a CONNECT
/// without credentials and one with a wrong password. Unreachable only when no connection
/// opens at all.
pub async fn discover(
    url: &str,
    transport: &TransportOptions,
    run_id: &str,
    credentials: Option<&Credentials>,
) -> Result<Discovery, TargetError> {
    discover_rooted(url, transport, run_id, credentials, DEFAULT_ROOT).await
}

/// The first topic level of the probe's and the cases' topics when no profile names one.
pub const DEFAULT_ROOT: &str = "mqttc";

/// [`discover`], with the probe's SUBSCRIBE under `topic_root` (a profile's ACL root).
pub async fn discover_rooted(
    url: &str,
    transport: &TransportOptions,
    run_id: &str,
    credentials: Option<&Credentials>,
    topic_root: &str,
) -> Result<Discovery, TargetError> {
    let mut versions = Vec::new();
    let mut connack: Option<Properties> = None;
    let mut echoed_keep_alive = false;
    for version in PROBED {
        let id = format!("{run_id}-probe-{}", version.level());
        let (answer, props) = try_connect(url, transport, version, &id, credentials).await;
        if let Answer::Unreachable { error } = &answer {
            if versions.is_empty() {
                return Err(TargetError::Unreachable {
                    url: redact_url(url),
                    reason: error.clone(),
                });
            }
        }
        if version.is_v5() {
            connack = props;
        }
        versions.push(VersionFinding {
            version: label(version),
            answer,
        });
    }
    if let Some(c) = connack
        .as_mut()
        .filter(|c| c.server_keep_alive == Some(PROBE_KEEP_ALIVE))
    {
        let id = format!("{run_id}-probe-keepalive");
        if echoes_keep_alive(url, transport, &id, credentials).await {
            c.server_keep_alive = None;
            echoed_keep_alive = true;
        }
    }
    let newest = PROBED
        .iter()
        .zip(&versions)
        .find(|(_, f)| f.answer.accepted())
        .map(|(v, _)| *v);
    let (mut anonymous, mut bad_credentials) = (None, None);
    let (mut zero_length_client_id, mut granted) = (None, None);
    let (mut in_flight, mut topic_depth) = (None, None);
    if let Some(version) = newest {
        zero_length_client_id = Some(
            try_connect(url, transport, version, "", credentials)
                .await
                .0,
        );
        let filter = format!("{topic_root}/{run_id}/probe/qos");
        granted = granted_qos(url, transport, version, &filter, run_id, credentials).await;
        // What can be learnt safely by trying, on topics of the probe's own.
        if granted.is_some_and(|q| q >= 1) {
            let topic = format!("{topic_root}/{run_id}/probe/window");
            in_flight = Some(
                window::in_flight_window(url, transport, version, &topic, run_id, credentials)
                    .await,
            );
        }
        let base = format!("{topic_root}/{run_id}/probe/depth");
        topic_depth =
            Some(depth::topic_depth(url, transport, version, &base, run_id, credentials).await);
        if credentials.is_some() {
            let id = format!("{run_id}-probe-anon");
            anonymous = Some(try_connect(url, transport, version, &id, None).await.0);
        }
        let user = credentials.map_or("mqttc-probe", |(u, _)| u.as_str());
        let wrong = (user.to_string(), format!("wrong-{run_id}"));
        let id = format!("{run_id}-probe-badpw");
        bad_credentials = Some(
            try_connect(url, transport, version, &id, Some(&wrong))
                .await
                .0,
        );
    }
    let mut announced = connack.as_ref().map(announced).unwrap_or_default();
    if echoed_keep_alive {
        if let Some(row) = announced.iter_mut().find(|(k, _)| k == "server_keep_alive") {
            row.1 = format!(
                "the client's, echoed ({PROBE_KEEP_ALIVE} for {PROBE_KEEP_ALIVE}, 47 for 47)"
            );
        }
    }
    Ok(Discovery {
        url: redact_url(url),
        announced,
        versions,
        connack,
        anonymous,
        bad_credentials,
        zero_length_client_id,
        granted_qos: granted,
        in_flight,
        topic_depth,
    })
}
