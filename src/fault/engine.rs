//! The embedded Toxiproxy-compatible engine: a registry of named proxies whose toxics run in
//! noxious, each behind a tokio front (see `front`).
//!
//! Why not noxious alone: noxious 1.0.4 binds its listener from a string and never reports the
//! bound address (so `listen: 127.0.0.1:0` could not be reported back), keeps its connections
//! private (so it can neither close them on `enabled: false` nor reset them), and has no
//! `reset_peer` toxic. So each proxy is a front listener (the address reported to clients) that
//! relays every connection over loopback to its own noxious proxy, which applies the toxics and
//! dials the upstream. The front cuts and resets connections; noxious shapes their bytes.
//!
//! Known noxious trap handled here: its remove-all-toxics event clears only the upstream list
//! (the downstream toxics stay), so toxics are always removed one by one.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bmrng::RequestSender;
use noxious::proxy::{ProxyConfig as NoxiousConfig, ProxyRunner, Runner, Toxics};
use noxious::signal::{Close, Stop, Stopper};
use noxious::socket::TcpListener as NoxiousListener;
use noxious::toxic::{
    StreamDirection, Toxic as NoxiousToxic, ToxicEvent, ToxicEventKind, ToxicEventResult,
    ToxicKind as NoxiousKind,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::front::{Connections, Front, ResetRule};
use super::{FaultError, Stream, Toxic, ToxicKind};

/// How many times to retry when the engine's internal loopback port is taken meanwhile.
const INNER_BIND_ATTEMPTS: usize = 8;

/// A proxy as Toxiproxy's API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProxyInfo {
    /// Unique name.
    pub name: String,
    /// The address clients connect to (the bound one, when port 0 was asked for).
    pub listen: SocketAddr,
    /// The address the proxy dials for each client.
    pub upstream: String,
    /// False: the proxy refuses connections and has closed the ones it had.
    pub enabled: bool,
    /// Active toxics, in the order they were added.
    pub toxics: Vec<Toxic>,
}

/// A proxy to create (the body of `POST /proxies`, one entry of `POST /populate`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NewProxy {
    /// Unique name.
    pub name: String,
    /// Where to listen; port 0 picks a free port. Defaults to `127.0.0.1:0`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Where to forward to.
    pub upstream: String,
    /// Whether the proxy starts enabled (default true).
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
}

impl NewProxy {
    /// An enabled proxy listening on a free port of 127.0.0.1.
    pub fn new(name: impl Into<String>, upstream: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            listen: default_listen(),
            upstream: upstream.into(),
            enabled: true,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:0".to_owned()
}

fn enabled_by_default() -> bool {
    true
}

/// Changes to a proxy (the body of `POST /proxies/{p}`); absent fields are unchanged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ProxyUpdate {
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// Must equal the current listen address (moving a proxy is not supported).
    pub listen: Option<String>,
    /// Must equal the current upstream (re-targeting a proxy is not supported).
    pub upstream: Option<String>,
}

/// Changes to a toxic (the body of `POST /proxies/{p}/toxics/{t}`): attributes are merged.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ToxicUpdate {
    /// New probability.
    pub toxicity: Option<f32>,
    /// Attributes to overwrite; the others keep their values.
    #[serde(default)]
    pub attributes: Map<String, Value>,
}

/// The embedded engine: named proxies and their toxics.
#[derive(Debug, Default)]
pub struct Engine {
    proxies: Mutex<BTreeMap<String, Proxy>>,
}

#[derive(Debug)]
struct Proxy {
    name: String,
    listen: SocketAddr,
    upstream: String,
    toxics: Vec<Toxic>,
    noxious: NoxiousProxy,
    connections: Arc<Connections>,
    /// Present while the proxy is enabled.
    front: Option<Front>,
}

/// One noxious proxy on an internal loopback port.
struct NoxiousProxy {
    addr: SocketAddr,
    events: RequestSender<ToxicEvent, ToxicEventResult>,
    stopper: Option<Stopper>,
}

impl std::fmt::Debug for NoxiousProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoxiousProxy")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for NoxiousProxy {
    fn drop(&mut self) {
        if let Some(stopper) = self.stopper.take() {
            stopper.stop();
        }
    }
}

impl Engine {
    /// An engine with no proxies.
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates a proxy and starts listening (if enabled).
    pub async fn create_proxy(&self, new: NewProxy) -> Result<ProxyInfo, FaultError> {
        if new.name.is_empty() {
            return Err(FaultError::Invalid("proxy name is empty".to_owned()));
        }
        if new.upstream.is_empty() {
            return Err(FaultError::Invalid("proxy upstream is empty".to_owned()));
        }
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&new.name) {
            return Err(FaultError::ProxyExists(new.name));
        }
        let listener = TcpListener::bind(&new.listen)
            .await
            .map_err(|err| FaultError::io(format!("binding proxy on {}", new.listen), err))?;
        let listen = listener
            .local_addr()
            .map_err(|err| FaultError::io("reading the proxy's bound address", err))?;
        let noxious = start_noxious(&new.name, &new.upstream).await?;
        let connections = Connections::new();
        let front = new
            .enabled
            .then(|| Front::start(listener, noxious.addr, Arc::clone(&connections)));
        let proxy = Proxy {
            name: new.name.clone(),
            listen,
            upstream: new.upstream,
            toxics: Vec::new(),
            noxious,
            connections,
            front,
        };
        tracing::info!(name = %proxy.name, %listen, upstream = %proxy.upstream, "proxy created");
        let info = proxy.info();
        proxies.insert(new.name, proxy);
        Ok(info)
    }

    /// Creates or replaces each proxy (Toxiproxy's `POST /populate`).
    pub async fn populate(&self, proxies: Vec<NewProxy>) -> Result<Vec<ProxyInfo>, FaultError> {
        let mut created = Vec::with_capacity(proxies.len());
        for new in proxies {
            match self.delete_proxy(&new.name).await {
                Ok(()) | Err(FaultError::ProxyNotFound(_)) => {}
                Err(err) => return Err(err),
            }
            created.push(self.create_proxy(new).await?);
        }
        Ok(created)
    }

    /// One proxy.
    pub async fn proxy(&self, name: &str) -> Result<ProxyInfo, FaultError> {
        let proxies = self.proxies.lock().await;
        proxies
            .get(name)
            .map(Proxy::info)
            .ok_or_else(|| FaultError::ProxyNotFound(name.to_owned()))
    }

    /// All proxies, by name.
    pub async fn proxies(&self) -> Vec<ProxyInfo> {
        let proxies = self.proxies.lock().await;
        proxies.values().map(Proxy::info).collect()
    }

    /// Applies a change to a proxy (only `enabled` can change).
    pub async fn update_proxy(
        &self,
        name: &str,
        update: ProxyUpdate,
    ) -> Result<ProxyInfo, FaultError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, name)?;
        if let Some(listen) = update.listen {
            let same = listen
                .parse::<SocketAddr>()
                .is_ok_and(|addr| addr == proxy.listen);
            if !same {
                return Err(FaultError::Invalid(format!(
                    "the embedded server cannot move proxy {name:?} to {listen}"
                )));
            }
        }
        if let Some(upstream) = update.upstream {
            if upstream != proxy.upstream {
                return Err(FaultError::Invalid(format!(
                    "the embedded server cannot re-target proxy {name:?} to {upstream}"
                )));
            }
        }
        if let Some(enabled) = update.enabled {
            proxy.set_enabled(enabled).await?;
        }
        Ok(proxy.info())
    }

    /// Enables (listen again) or disables (close every connection, refuse new ones) a proxy.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyInfo, FaultError> {
        let update = ProxyUpdate {
            enabled: Some(enabled),
            ..ProxyUpdate::default()
        };
        self.update_proxy(name, update).await
    }

    /// Deletes a proxy: closes its listener and its connections.
    pub async fn delete_proxy(&self, name: &str) -> Result<(), FaultError> {
        let proxy = {
            let mut proxies = self.proxies.lock().await;
            proxies
                .remove(name)
                .ok_or_else(|| FaultError::ProxyNotFound(name.to_owned()))?
        };
        proxy.shut().await;
        Ok(())
    }

    /// Deletes every proxy.
    pub async fn clear(&self) {
        let proxies = std::mem::take(&mut *self.proxies.lock().await);
        for proxy in proxies.into_values() {
            proxy.shut().await;
        }
    }

    /// The toxics of a proxy.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultError> {
        Ok(self.proxy(proxy).await?.toxics)
    }

    /// One toxic of a proxy.
    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<Toxic, FaultError> {
        self.toxics(proxy)
            .await?
            .into_iter()
            .find(|t| t.name == toxic)
            .ok_or_else(|| FaultError::ToxicNotFound {
                proxy: proxy.to_owned(),
                toxic: toxic.to_owned(),
            })
    }

    /// Adds a toxic; it acts on existing connections and new ones.
    pub async fn add_toxic(&self, proxy: &str, toxic: Toxic) -> Result<Toxic, FaultError> {
        toxic.validate()?;
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, proxy)?;
        if proxy.toxics.iter().any(|t| t.name == toxic.name) {
            return Err(FaultError::ToxicExists {
                proxy: proxy.name.clone(),
                toxic: toxic.name,
            });
        }
        proxy.install(&toxic).await?;
        proxy.toxics.push(toxic.clone());
        Ok(toxic)
    }

    /// Changes a toxic's toxicity and attributes (merged into the current ones).
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        update: ToxicUpdate,
    ) -> Result<Toxic, FaultError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, proxy)?;
        let index = proxy.toxic_index(toxic)?;
        let old = proxy.toxics[index].clone();
        let mut attributes = old.kind.attributes();
        attributes.extend(update.attributes);
        let new = Toxic {
            kind: ToxicKind::from_parts(old.kind.type_name(), &attributes)?,
            toxicity: update.toxicity.unwrap_or(old.toxicity),
            ..old.clone()
        };
        new.validate()?;
        proxy.uninstall(&old).await?;
        proxy.install(&new).await?;
        proxy.toxics[index] = new.clone();
        Ok(new)
    }

    /// Removes one toxic.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, proxy)?;
        let index = proxy.toxic_index(toxic)?;
        let old = proxy.toxics[index].clone();
        proxy.uninstall(&old).await?;
        proxy.toxics.remove(index);
        Ok(())
    }

    /// Removes every toxic of a proxy, one by one.
    pub async fn remove_all_toxics(&self, proxy: &str) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        get_mut(&mut proxies, proxy)?.heal().await
    }

    /// Toxiproxy's `POST /reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&self) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            proxy.heal().await?;
            proxy.set_enabled(true).await?;
        }
        Ok(())
    }
}

fn get_mut<'a>(
    proxies: &'a mut BTreeMap<String, Proxy>,
    name: &str,
) -> Result<&'a mut Proxy, FaultError> {
    proxies
        .get_mut(name)
        .ok_or_else(|| FaultError::ProxyNotFound(name.to_owned()))
}

impl Proxy {
    fn info(&self) -> ProxyInfo {
        ProxyInfo {
            name: self.name.clone(),
            listen: self.listen,
            upstream: self.upstream.clone(),
            enabled: self.front.is_some(),
            toxics: self.toxics.clone(),
        }
    }

    fn toxic_index(&self, toxic: &str) -> Result<usize, FaultError> {
        self.toxics
            .iter()
            .position(|t| t.name == toxic)
            .ok_or_else(|| FaultError::ToxicNotFound {
                proxy: self.name.clone(),
                toxic: toxic.to_owned(),
            })
    }

    async fn set_enabled(&mut self, enabled: bool) -> Result<(), FaultError> {
        match (enabled, self.front.take()) {
            (true, Some(front)) => self.front = Some(front),
            (true, None) => {
                let listener = TcpListener::bind(self.listen).await.map_err(|err| {
                    FaultError::io(format!("re-binding proxy on {}", self.listen), err)
                })?;
                self.front = Some(Front::start(
                    listener,
                    self.noxious.addr,
                    Arc::clone(&self.connections),
                ));
                tracing::info!(name = %self.name, "proxy enabled");
            }
            (false, Some(front)) => {
                front.stop().await;
                self.connections.close_all();
                tracing::info!(name = %self.name, "proxy disabled");
            }
            (false, None) => {}
        }
        Ok(())
    }

    async fn heal(&mut self) -> Result<(), FaultError> {
        // Not noxious's RemoveAllToxics: it leaves the downstream toxics in place.
        while let Some(toxic) = self.toxics.last().cloned() {
            self.uninstall(&toxic).await?;
            self.toxics.pop();
        }
        Ok(())
    }

    async fn install(&self, toxic: &Toxic) -> Result<(), FaultError> {
        match to_noxious(toxic) {
            Some(noxious) => self.send(ToxicEventKind::AddToxic(noxious)).await,
            None => {
                if let ToxicKind::ResetPeer { timeout } = toxic.kind {
                    self.connections.add_reset(ResetRule {
                        name: toxic.name.clone(),
                        stream: toxic.stream,
                        after: Duration::from_millis(timeout),
                        toxicity: toxic.toxicity,
                    });
                }
                Ok(())
            }
        }
    }

    async fn uninstall(&self, toxic: &Toxic) -> Result<(), FaultError> {
        if matches!(toxic.kind, ToxicKind::ResetPeer { .. }) {
            self.connections.remove_reset(&toxic.name);
            Ok(())
        } else {
            self.send(ToxicEventKind::RemoveToxic(toxic.name.clone()))
                .await
        }
    }

    async fn send(&self, kind: ToxicEventKind) -> Result<(), FaultError> {
        let event = ToxicEvent::new(self.name.clone(), kind);
        match self.noxious.events.send_receive(event).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(FaultError::Invalid(format!(
                "noxious refused the toxic change on {:?}: {err}",
                self.name
            ))),
            Err(_) => Err(FaultError::EngineGone(self.name.clone())),
        }
    }

    async fn shut(mut self) {
        if let Some(front) = self.front.take() {
            front.stop().await;
        }
        self.connections.close_all();
        tracing::info!(name = %self.name, "proxy deleted");
        // Dropping `noxious` stops the noxious proxy.
    }
}

/// Starts a noxious proxy on a free loopback port.
///
/// noxious binds from an address string and never reports the bound port, so a free port is
/// found first (bind port 0, read it, release it) and handed to noxious; if something else takes
/// it in between, noxious's bind fails with `AddrInUse` and another port is tried.
async fn start_noxious(name: &str, upstream: &str) -> Result<NoxiousProxy, FaultError> {
    let mut last_error = None;
    for _ in 0..INNER_BIND_ATTEMPTS {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|probe| probe.local_addr())
            .map_err(|err| FaultError::io("finding a free loopback port", err))?;
        let config = NoxiousConfig {
            name: name.to_owned(),
            listen: addr.to_string(),
            upstream: upstream.to_owned(),
            enabled: true,
            rand_seed: None,
        };
        match <ProxyRunner as Runner>::initialize_proxy::<NoxiousListener>(config, Toxics::empty())
            .await
        {
            Ok((listener, info)) => {
                let (events, receiver) = bmrng::channel(1);
                let (stop, stopper) = Stop::new();
                let (_close, closer) = Close::new();
                tokio::spawn(async move {
                    if let Err(err) =
                        <ProxyRunner as Runner>::run_proxy(listener, info, receiver, stop, closer)
                            .await
                    {
                        tracing::warn!(%err, "noxious proxy ended with an error");
                    }
                });
                return Ok(NoxiousProxy {
                    addr,
                    events,
                    stopper: Some(stopper),
                });
            }
            Err(err) if err.kind() == std::io::ErrorKind::AddrInUse => last_error = Some(err),
            Err(err) => return Err(FaultError::io("starting the noxious proxy", err)),
        }
    }
    Err(FaultError::io(
        "starting the noxious proxy",
        last_error.unwrap_or_else(|| std::io::Error::other("no free loopback port")),
    ))
}

/// The noxious form of a toxic; `None` for `reset_peer`, which the front implements.
fn to_noxious(toxic: &Toxic) -> Option<NoxiousToxic> {
    let kind = match toxic.kind {
        ToxicKind::Latency { latency, jitter } => NoxiousKind::Latency { latency, jitter },
        ToxicKind::Bandwidth { rate } => NoxiousKind::Bandwidth { rate },
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => NoxiousKind::Slicer {
            average_size,
            size_variation,
            delay,
        },
        ToxicKind::LimitData { bytes } => NoxiousKind::LimitData { bytes },
        ToxicKind::SlowClose { delay } => NoxiousKind::SlowClose { delay },
        ToxicKind::Timeout { timeout } => NoxiousKind::Timeout { timeout },
        ToxicKind::ResetPeer { .. } => return None,
    };
    Some(NoxiousToxic {
        kind,
        name: toxic.name.clone(),
        toxicity: toxic.toxicity,
        direction: match toxic.stream {
            Stream::Upstream => StreamDirection::Upstream,
            Stream::Downstream => StreamDirection::Downstream,
        },
    })
}
