//! The system under test: the broker a run judges (the in-process reference broker on port 0, or an external
//! URL), and what it announces about its optional features.

use reference_broker::broker::BrokerConfig;
use reference_broker::client::TransportOptions;
use reference_broker::codec::{Properties, ProtocolVersion};

use crate::profile::Profile;
use crate::redact::redact_url;
use crate::scenario::{Feature, Version};

pub mod ceilings;
pub mod container;
pub mod depth;
pub mod engine;
pub mod local_image;
pub mod presets;
pub mod probe;
mod reference;
mod restart;
pub mod window;

pub use restart::{CaseBroker, RestartSupport};

/// The largest packet the harness reads from a broker under test (probe, readiness wait,
/// cases that announce no smaller Maximum Packet Size). No case publishes more than a few
/// KiB, so a larger packet is never one the harness asked for: refusing it from its fixed
/// header, before buffering it, bounds the memory a broker claiming a huge Remaining Length
/// (up to 256 MiB) can make the harness use.
pub const READ_LIMIT: usize = 1 << 20;

/// Which broker to run against.
#[derive(Debug, Clone)]
pub enum TargetSpec {
    /// The reference broker, started in-process on 127.0.0.1, port 0.
    Reference,
    /// An external broker by URL (`mqtt://[user:pass@]host:port`, mqtts, ws, wss).
    External {
        /// URL, possibly with credentials.
        url: String,
        /// Broker name for deviation lookup.
        name: String,
    },
    /// A broker in a container, started with testcontainers and removed at shutdown.
    Container(container::ContainerSpec),
}

/// Why a target cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The broker does not answer.
    #[error("broker {url} is unreachable: {reason}")]
    Unreachable {
        /// URL without credentials.
        url: String,
        /// Cause.
        reason: String,
    },
    /// The reference broker failed to start.
    #[error("the reference broker failed to start: {0}")]
    Reference(String),
    /// The container could not be started.
    #[error(transparent)]
    Container(#[from] container::ContainerError),
}

/// A started target.
pub struct RunningTarget {
    /// URL to connect to (may carry credentials; never printed).
    pub url: String,
    /// Name for deviation lookup (`reference` for the in-process broker).
    pub name: String,
    /// Credentials taken from the URL (clients that set none use them).
    pub credentials: Option<(String, String)>,
    /// Features the target profile declares beyond its CONNACK (authentication, enhanced
    /// authentication).
    pub features: Vec<Feature>,
    /// The broker profile (`--profile`, a preset's, or empty): declared features and limits
    /// laid over the probe's findings, credentials, ACL topic root, deviations.
    pub profile: Profile,
    broker: Option<reference::InProcess>,
    container: Option<container::RunningContainer>,
}

impl std::fmt::Debug for RunningTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningTarget")
            .field("url", &self.display_url())
            .field("name", &self.name)
            .finish()
    }
}

impl RunningTarget {
    /// The URL without credentials, for reports.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Use `profile` for this target: its credentials when the URL carries none, its broker
    /// name when `explicit_name` is false (no `--broker-name`), its features, limits, ACL root
    /// and deviations (through [`probe`] and the run).
    pub fn use_profile(&mut self, profile: Profile, explicit_name: bool) {
        if self.credentials.is_none() {
            self.credentials = profile.credential_pair();
        }
        if let (false, Some(name)) = (explicit_name, &profile.broker) {
            self.name = name.clone();
        }
        self.profile = profile;
    }

    /// Stop the in-process broker, if any.
    pub async fn shutdown(self) {
        if let Some(broker) = self.broker {
            reference::stop(broker).await;
        }
        if let Some(c) = self.container {
            c.stop().await;
        }
    }
}

/// Split `user:pass@` out of a URL.
pub fn split_credentials(url: &str) -> (String, Option<(String, String)>) {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_string(), None);
    };
    let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let clean = match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    };
    (clean, Some((user.to_string(), pass.to_string())))
}

/// Start (or reach) the target.
pub async fn start(spec: &TargetSpec) -> Result<RunningTarget, TargetError> {
    match spec {
        TargetSpec::Reference => {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            start_reference(BrokerConfig::default_tcp(addr)).await
        }
        TargetSpec::External { url, name } => {
            let (clean, credentials) = split_credentials(url);
            // Credentials in the URL do not show that the broker checks them: the probe (a
            // wrong password refused) or a profile does.
            Ok(RunningTarget {
                url: clean,
                name: name.clone(),
                credentials,
                features: Vec::new(),
                profile: Profile::default(),
                broker: None,
                container: None,
            })
        }
        TargetSpec::Container(spec) => {
            let running = container::start(spec).await?;
            Ok(RunningTarget {
                url: running.url.clone(),
                name: spec.name.clone(),
                credentials: None,
                features: Vec::new(),
                profile: Profile::default(),
                broker: None,
                container: Some(running),
            })
        }
    }
}

/// Start the in-process reference broker with `config` (a variant or a defect in selftest),
/// listening on 127.0.0.1, port 0, with its test user and challenge authentication.
pub async fn start_reference(config: BrokerConfig) -> Result<RunningTarget, TargetError> {
    let secret = format!("mqttc-{}", crate::run_id::new_run_id());
    let (broker, bound) = reference::start(&secret, config).await?;
    Ok(RunningTarget {
        url: format!("mqtt://{bound}"),
        name: "reference".into(),
        credentials: None,
        features: vec![Feature::Authentication, Feature::EnhancedAuth],
        profile: Profile::default(),
        broker: Some(broker),
        container: None,
    })
}

/// What a target supports, from its MQTT 5 CONNACK and its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// MQTT 5 accepted.
    pub v5: bool,
    /// Maximum QoS (CONNACK Maximum QoS; 2 when absent).
    pub maximum_qos: u8,
    /// Retain Available.
    pub retain: bool,
    /// Wildcard Subscription Available.
    pub wildcard: bool,
    /// Shared Subscription Available.
    pub shared: bool,
    /// Subscription Identifier Available.
    pub subscription_identifiers: bool,
    /// Topic Alias Maximum.
    pub topic_alias_maximum: u16,
    /// TLS transport.
    pub tls: bool,
    /// WebSocket transport.
    pub websocket: bool,
    /// The broker authenticates users (credentials provided, or declared by the profile).
    pub authentication: bool,
    /// The profile declares an enhanced authentication method.
    pub enhanced_auth: bool,
    /// The Server Keep Alive of the probe's CONNACK, if any (MQTT 5).
    pub server_keep_alive: Option<u16>,
    /// Versions the probe saw refused, with its finding (their cases are skipped).
    pub refusals: Vec<(Version, String)>,
    /// A zero-byte ClientId is accepted (probed, or declared by the profile).
    pub zero_length_client_id: bool,
    /// Where the Maximum QoS comes from, for skip reasons (`the MQTT 5 CONNACK`, ...).
    pub maximum_qos_source: String,
    /// The limits a case's needs are held against (CONNACK, probe, profile).
    pub ceilings: ceilings::Ceilings,
    /// The first topic levels of every case's topics (the profile's ACL root, else `mqttc`):
    /// they count towards the topic depth.
    pub topic_root: String,
}

impl Capabilities {
    /// Capabilities from CONNACK properties (MQTT 5 section 3.2.2.3: absent means available).
    pub fn from_connack(props: &Properties, url: &str, profile: &[Feature]) -> Capabilities {
        let on = |v: Option<u8>| v.is_none_or(|b| b != 0);
        Capabilities {
            v5: true,
            maximum_qos: props.maximum_qos.unwrap_or(2),
            retain: on(props.retain_available),
            wildcard: on(props.wildcard_subscription_available),
            shared: on(props.shared_subscription_available),
            subscription_identifiers: on(props.subscription_identifier_available),
            topic_alias_maximum: props.topic_alias_maximum.unwrap_or(0),
            tls: url.starts_with("mqtts://") || url.starts_with("wss://"),
            websocket: url.starts_with("ws://") || url.starts_with("wss://"),
            authentication: profile.contains(&Feature::Authentication),
            enhanced_auth: profile.contains(&Feature::EnhancedAuth),
            server_keep_alive: props.server_keep_alive,
            refusals: Vec::new(),
            zero_length_client_id: true,
            maximum_qos_source: "the MQTT 5 CONNACK".into(),
            ceilings: ceilings::Ceilings::from_connack(props),
            topic_root: probe::DEFAULT_ROOT.into(),
        }
    }

    /// Lay a profile's declared features and limits over what discovery found: a declared
    /// value wins; a Maximum QoS is the lowest of the announced, probed and declared ones.
    pub fn declare(&mut self, profile: &Profile) {
        let f = &profile.features;
        let set = |slot: &mut bool, v: Option<bool>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(&mut self.retain, f.retain);
        set(&mut self.wildcard, f.wildcard_subscriptions);
        set(&mut self.shared, f.shared_subscriptions);
        set(
            &mut self.subscription_identifiers,
            f.subscription_identifiers,
        );
        set(&mut self.authentication, f.authentication);
        set(&mut self.enhanced_auth, f.enhanced_auth);
        set(&mut self.zero_length_client_id, f.zero_length_client_id);
        let l = &profile.limits;
        if let Some(q) = l.maximum_qos.filter(|q| *q < self.maximum_qos) {
            self.maximum_qos = q;
            self.maximum_qos_source = "the profile".into();
        }
        if let Some(t) = l.topic_alias_maximum {
            self.topic_alias_maximum = t;
        }
        if let Some(k) = l.server_keep_alive {
            self.server_keep_alive = Some(k);
        }
        self.ceilings.declare(l);
        if let Some(root) = &profile.acl.topic_root {
            self.topic_root.clone_from(root);
        }
    }

    /// Why cases of `version` cannot run (the probe saw it refused), if so.
    pub fn refusal(&self, version: Version) -> Option<&str> {
        self.refusals
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, r)| r.as_str())
    }

    /// Why `feature` is unmet under `version`, or None when the target has it.
    pub fn unmet(&self, feature: Feature, version: Version) -> Option<String> {
        let announced =
            |what: &str| format!("the broker announces no {what} in its MQTT 5 CONNACK");
        let missing = match feature {
            Feature::Retain if !self.retain => announced("Retain Available"),
            Feature::WildcardSubscriptions if !self.wildcard => {
                announced("Wildcard Subscription Available")
            }
            Feature::SharedSubscriptions if !self.shared => {
                announced("Shared Subscription Available")
            }
            Feature::SubscriptionIdentifiers if !self.subscription_identifiers => {
                announced("Subscription Identifier Available")
            }
            Feature::Qos1 | Feature::Qos2 if self.maximum_qos < qos_of(feature) => format!(
                "Maximum QoS is {} ({})",
                self.maximum_qos, self.maximum_qos_source
            ),
            Feature::ZeroLengthClientId if !self.zero_length_client_id => {
                "the broker refused the probe's zero-byte ClientId, or the profile declares zero_length_client_id = false (accepting one is a MAY, MQTT-3.1.3-6)".into()
            }
            Feature::TopicAlias if self.topic_alias_maximum == 0 => {
                "Topic Alias Maximum is 0".into()
            }
            Feature::Tls if !self.tls => "the target is not a TLS listener".into(),
            Feature::Websocket if !self.websocket => {
                "the target is not a WebSocket listener".into()
            }
            Feature::Authentication if !self.authentication => {
                "no credentials, or the broker was not seen to refuse a wrong password and no profile declares that it checks them".into()
            }
            Feature::EnhancedAuth if !self.enhanced_auth => {
                "the target profile declares no enhanced authentication method".into()
            }
            Feature::ClientKeepAlive if version == Version::V5 => match self.server_keep_alive {
                Some(s) => format!("the broker imposes a Server Keep Alive of {s} s"),
                None => return None,
            },
            _ => return None,
        };
        Some(format!("requires {}: {missing}", feature.name()))
    }
}

/// The QoS a `qos1`/`qos2` feature stands for.
fn qos_of(feature: Feature) -> u8 {
    match feature {
        Feature::Qos2 => 2,
        _ => 1,
    }
}

/// Probe the target (see [`probe::discover`]) and derive what the plan needs from it. An
/// unreachable broker is an error; a refused version makes its cases skip with the probe's
/// finding as the reason.
pub async fn probe(
    target: &RunningTarget,
    transport: &TransportOptions,
    run_id: &str,
) -> Result<(Capabilities, probe::Discovery), TargetError> {
    let root = target
        .profile
        .acl
        .topic_root
        .as_deref()
        .unwrap_or(probe::DEFAULT_ROOT);
    let found = probe::discover_rooted(
        &target.url,
        transport,
        run_id,
        target.credentials.as_ref(),
        root,
    )
    .await?;
    let props = found.connack.clone().unwrap_or_default();
    let mut caps = Capabilities::from_connack(&props, &target.url, &target.features);
    caps.v5 = found
        .answer(ProtocolVersion::V5)
        .is_some_and(probe::Answer::accepted);
    caps.refusals = [Version::V311, Version::V5]
        .into_iter()
        .filter_map(|v| found.refusal(v.protocol()).map(|r| (v, r)))
        .collect();
    // The broker demonstrably checks passwords, and the target has valid credentials.
    if target.credentials.is_some() && found.checks_passwords() {
        caps.authentication = true;
    }
    if let Some(zero) = &found.zero_length_client_id {
        // Only a refusal says "not allowed"; silence or garbage is judged by the cases.
        caps.zero_length_client_id = !zero.refused();
    }
    if let Some(q) = found.granted_qos.filter(|q| *q < caps.maximum_qos) {
        caps.maximum_qos = q;
        caps.maximum_qos_source = format!("a SUBSCRIBE at QoS 2 was granted QoS {q}");
    }
    if let Some(w) = found.in_flight.as_ref().and_then(window::Window::limit) {
        caps.ceilings.max_inflight = Some(ceilings::Ceiling::new(
            w,
            format!(
                "the probe: {w} QoS 1 messages arrived unacknowledged, more only after PUBACKs"
            ),
        ));
    }
    if let Some(d) = &found.topic_depth {
        if let (Some(levels), depth::Depth::Limit { refused, how, .. }) = (d.limit(), d) {
            caps.ceilings.max_topic_levels = Some(ceilings::Ceiling::new(
                levels,
                format!("the probe: a topic of {refused} levels got {how}"),
            ));
        }
    }
    caps.declare(&target.profile);
    Ok((caps, found))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_from_urls() {
        let (url, creds) = split_credentials("mqtt://u:p@h:1883");
        assert_eq!(url, "mqtt://h:1883");
        assert_eq!(creds, Some(("u".into(), "p".into())));
        assert_eq!(split_credentials("mqtt://h:1").1, None);
    }

    #[test]
    fn absent_connack_properties_mean_available() {
        let caps = Capabilities::from_connack(&Properties::default(), "mqtt://h:1", &[]);
        assert_eq!(caps.unmet(Feature::Retain, Version::V5), None);
        assert_eq!(caps.unmet(Feature::Qos2, Version::V5), None);
        let limited = Capabilities::from_connack(
            &Properties {
                maximum_qos: Some(1),
                retain_available: Some(0),
                ..Default::default()
            },
            "mqtt://h:1",
            &[],
        );
        assert!(limited.unmet(Feature::Qos2, Version::V5).is_some());
        assert!(limited.unmet(Feature::Retain, Version::V5).is_some());
        assert_eq!(limited.unmet(Feature::Qos1, Version::V5), None);
    }
}
