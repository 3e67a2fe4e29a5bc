//! Brokers in containers: start an image with testcontainers (`GenericImage`), wait until the
//! broker accepts an MQTT connection, and remove the container afterwards.

use std::time::{Duration, Instant};

use reference_broker::client::{Connection, Received, TransportOptions};
use reference_broker::codec::{Connect, Packet, Properties, ProtocolVersion};
use testcontainers::core::error::ClientError;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, TestcontainersError};

use super::engine::{self, EngineError};

/// How to start a broker image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// Broker name, for the deviations of the suites (`emqx`, `mosquitto`...).
    pub name: String,
    /// Image name (`emqx/emqx`).
    pub image: String,
    /// Image tag.
    pub tag: String,
    /// The container port of the plain MQTT listener.
    pub mqtt_port: u16,
    /// Other container ports to publish (WebSocket, TLS...).
    pub extra_ports: Vec<u16>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// Files copied into the container before it starts: (path in the container, content).
    pub files: Vec<(String, Vec<u8>)>,
    /// Command arguments (empty: the image's own).
    pub cmd: Vec<String>,
    /// A log line (stdout or stderr) the broker prints once it is up; waited for first.
    pub ready_log: Option<String>,
    /// Bound on the start: the log line and the first accepted MQTT connection.
    pub startup_timeout: Duration,
}

impl ContainerSpec {
    /// A spec for any image: MQTT on `mqtt_port`, readiness by MQTT CONNECT only.
    pub fn image(reference: &str, mqtt_port: u16) -> ContainerSpec {
        let (image, tag) = split_reference(reference);
        let name = image.rsplit('/').next().unwrap_or(&image).to_string();
        ContainerSpec {
            name,
            image,
            tag,
            mqtt_port,
            extra_ports: Vec::new(),
            env: Vec::new(),
            files: Vec::new(),
            cmd: Vec::new(),
            ready_log: None,
            startup_timeout: Duration::from_secs(60),
        }
    }

    /// `image:tag`.
    pub fn reference(&self) -> String {
        format!("{}:{}", self.image, self.tag)
    }
}

/// Split `name[:tag]` (a registry port is not a tag); the tag defaults to `latest`.
pub fn split_reference(reference: &str) -> (String, String) {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => (
            reference[..last_slash + i].to_string(),
            reference[last_slash + i + 1..].to_string(),
        ),
        None => (reference.to_string(), "latest".to_string()),
    }
}

/// Why a container target cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    /// No usable Docker engine.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The image is neither local nor pullable.
    #[error("cannot pull image {image}: {reason}")]
    Pull {
        /// `image:tag`.
        image: String,
        /// Cause (first line).
        reason: String,
    },
    /// The container failed to start or its log line did not come.
    #[error("container {image} failed to start: {reason}")]
    Start {
        /// `image:tag`.
        image: String,
        /// Cause (first line).
        reason: String,
    },
    /// The broker did not accept an MQTT connection in time.
    #[error(
        "container {image}: no broker accepted an MQTT connection on container port {port} \
         (published as {url}) within {}s; last attempt: {last}. If the broker of this image \
         listens on another port, give that port with --port",
        after.as_secs()
    )]
    NotReady {
        /// `image:tag`.
        image: String,
        /// The container port tried.
        port: u16,
        /// The published address tried.
        url: String,
        /// The bound waited.
        after: Duration,
        /// The last connection error.
        last: String,
    },
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").to_string()
}

/// A running broker container; removed by [`RunningContainer::stop`] (or, as a fallback, when
/// dropped).
pub struct RunningContainer {
    container: ContainerAsync<GenericImage>,
    /// `mqtt://host:port` of the published MQTT port.
    pub url: String,
    /// `image:tag`.
    pub image: String,
}

impl std::fmt::Debug for RunningContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningContainer")
            .field("id", &self.container.id())
            .field("url", &self.url)
            .field("image", &self.image)
            .finish()
    }
}

impl RunningContainer {
    /// The container id.
    pub fn id(&self) -> &str {
        self.container.id()
    }

    /// The host port a container port is published on.
    pub async fn host_port(&self, container_port: u16) -> Option<u16> {
        self.container
            .get_host_port_ipv4(container_port.tcp())
            .await
            .ok()
    }

    /// Stop and remove the container (bounded: 30 s).
    pub async fn stop(self) {
        let id = self.container.id().to_string();
        match tokio::time::timeout(Duration::from_secs(30), self.container.rm()).await {
            Ok(Ok(())) => tracing::debug!("removed container {id}"),
            Ok(Err(e)) => tracing::warn!("cannot remove container {id}: {e}"),
            Err(_) => tracing::warn!("removing container {id} timed out"),
        }
    }
}

/// Start the container, wait for the broker to accept an MQTT connection, and return it.
pub async fn start(spec: &ContainerSpec) -> Result<RunningContainer, ContainerError> {
    let engine = engine::ensure().await?;
    let reference = spec.reference();
    let mut image = GenericImage::new(spec.image.clone(), spec.tag.clone())
        .with_exposed_port(spec.mqtt_port.tcp());
    for p in &spec.extra_ports {
        image = image.with_exposed_port(p.tcp());
    }
    if let Some(line) = &spec.ready_log {
        image = image.with_wait_for(WaitFor::message_on_either_std(line.as_bytes()));
    }
    let mut request = image
        .with_startup_timeout(spec.startup_timeout)
        .with_label("org.mqtt-conformance.broker", spec.name.clone());
    for (k, v) in &spec.env {
        request = request.with_env_var(k.clone(), v.clone());
    }
    for (path, content) in &spec.files {
        request = request.with_copy_to(path.clone(), content.clone());
    }
    if !spec.cmd.is_empty() {
        request = request.with_cmd(spec.cmd.clone());
    }
    let started = Instant::now();
    let container = request.start().await.map_err(|e| match e {
        TestcontainersError::Client(ClientError::PullImage { err, .. }) => ContainerError::Pull {
            image: reference.clone(),
            reason: first_line(&err.to_string()),
        },
        other => ContainerError::Start {
            image: reference.clone(),
            reason: first_line(&other.to_string()),
        },
    })?;
    let start_err = |e: TestcontainersError| ContainerError::Start {
        image: reference.clone(),
        reason: first_line(&e.to_string()),
    };
    let port = container
        .get_host_port_ipv4(spec.mqtt_port.tcp())
        .await
        .map_err(start_err)?;
    let host = match engine.published_host() {
        Some(h) => h,
        None => container.get_host().await.map_err(start_err)?.to_string(),
    };
    let host = match host.as_str() {
        "localhost" => "127.0.0.1".to_string(),
        h => h.to_string(),
    };
    let url = format!("mqtt://{host}:{port}");
    let running = RunningContainer {
        container,
        url,
        image: reference.clone(),
    };
    let remaining = spec
        .startup_timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_secs(5));
    let what = format!(
        "the broker of {reference} to accept an MQTT CONNECT on container port {} ({})",
        spec.mqtt_port, running.url
    );
    // A start can take a while (and a wrong --port never ends): say what is awaited.
    eprintln!("waiting up to {}s for {what}", remaining.as_secs());
    let progress = |waited: Duration, last: &str| {
        eprintln!(
            "still waiting ({}s of {}s) for {what}; last attempt: {last}",
            waited.as_secs(),
            remaining.as_secs()
        );
    };
    if let Err(last) = wait_for_mqtt_reporting(&running.url, remaining, &progress).await {
        let after = started.elapsed();
        let url = running.url.clone();
        running.stop().await;
        return Err(ContainerError::NotReady {
            image: reference,
            port: spec.mqtt_port,
            url,
            after,
            last,
        });
    }
    Ok(running)
}

/// Retry an MQTT 3.1.1 CONNECT every 250 ms until a CONNACK accepts it or `within` runs out;
/// the error is the last failure.
pub async fn wait_for_mqtt(url: &str, within: Duration) -> Result<(), String> {
    wait_for_mqtt_reporting(url, within, &|_, _| {}).await
}

/// How often a wait for a broker that does not answer yet reports that it is still waiting.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// [`wait_for_mqtt`], calling `progress(waited, last error)` every [`PROGRESS_EVERY`] while
/// no CONNACK has come.
pub async fn wait_for_mqtt_reporting(
    url: &str,
    within: Duration,
    progress: &dyn Fn(Duration, &str),
) -> Result<(), String> {
    let begun = tokio::time::Instant::now();
    let deadline = begun + within;
    let mut next_report = begun + PROGRESS_EVERY;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last = String::from("not tried");
    let mut attempt = 0u32;
    loop {
        tick.tick().await;
        if tokio::time::Instant::now() >= deadline {
            return Err(last);
        }
        attempt += 1;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, try_connect(url, attempt)).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(e)) => last = e,
            Err(_) => last = "CONNECT timed out".into(),
        }
        let now = tokio::time::Instant::now();
        if now >= next_report && now < deadline {
            progress(now - begun, &last);
            next_report = now + PROGRESS_EVERY;
        }
    }
}

async fn try_connect(url: &str, attempt: u32) -> Result<(), String> {
    let options = TransportOptions {
        connect_timeout: Some(Duration::from_secs(2)),
        ..TransportOptions::default()
    };
    let mut conn = Connection::open(url, &options)
        .await
        .map_err(|e| e.to_string())?;
    conn.set_max_packet_size(super::READ_LIMIT);
    let connect = Connect {
        protocol: ProtocolVersion::V3_1_1,
        clean_start: true,
        keep_alive: 10,
        client_id: format!("mqtt-conformance-ready-{attempt}"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default().into(),
    };
    conn.send(&Packet::Connect(Box::new(connect)))
        .await
        .map_err(|e| e.to_string())?;
    let answer = conn.recv(Duration::from_secs(2)).await;
    conn.abort();
    match answer {
        // [MQTT-3.2.2-5] (3.1.1): return code 0 accepts the connection.
        Ok(Received::Packet(Packet::ConnAck(ack))) if ack.code.is_success() => Ok(()),
        Ok(Received::Packet(Packet::ConnAck(ack))) => {
            Err(format!("CONNACK refused with code 0x{:02x}", ack.code.0))
        }
        Ok(Received::Closed) => Err("the connection closed without a CONNACK".into()),
        Ok(Received::Packet(other)) => Err(format!(
            "{} instead of a CONNACK",
            reference_broker::client::PacketDisplay(&other)
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn references_split_into_image_and_tag() {
        assert_eq!(
            split_reference("emqx/emqx:5.8.6"),
            ("emqx/emqx".into(), "5.8.6".into())
        );
        assert_eq!(
            split_reference("eclipse-mosquitto"),
            ("eclipse-mosquitto".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/broker"),
            ("localhost:5000/broker".into(), "latest".into())
        );
        assert_eq!(
            split_reference("localhost:5000/broker:1"),
            ("localhost:5000/broker".into(), "1".into())
        );
    }

    #[test]
    fn an_image_spec_is_named_after_the_image() {
        let spec = ContainerSpec::image("example.org/acme/broker:2", 1884);
        assert_eq!(spec.name, "broker");
        assert_eq!(spec.reference(), "example.org/acme/broker:2");
        assert_eq!(spec.mqtt_port, 1884);
    }

    #[tokio::test]
    async fn waiting_on_a_closed_port_ends_with_the_last_error() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let err = wait_for_mqtt(&format!("mqtt://{addr}"), Duration::from_millis(800))
            .await
            .unwrap_err();
        assert!(!err.is_empty());
    }

    #[tokio::test]
    async fn waiting_ends_once_a_broker_accepts() {
        let (broker, addr) = super::super::reference::start(
            "secret",
            reference_broker::broker::BrokerConfig::default_tcp(([127, 0, 0, 1], 0).into()),
        )
        .await
        .unwrap();
        wait_for_mqtt(&format!("mqtt://{addr}"), Duration::from_secs(5))
            .await
            .unwrap();
        super::super::reference::stop(broker).await;
    }
}
