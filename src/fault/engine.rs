//! The embedded Toxiproxy-compatible engine: a registry of named proxies and their toxics.
//!
//! The proxying itself is ours (`proxy`, `link`), with tokio, not noxious 1.0.4, which was tried
//! first and measured unfit: its bandwidth toxic panics (`Duration` subtraction overflow) on
//! chunks above about `rate × 100` bytes (5000 bytes at 10 KB/s, measured), since it cuts 100-byte
//! slices where Toxiproxy cuts `rate × 100`, yet counts 100 ms per slice; every toxic change rebuilds the links and drops the bytes inside the toxics (8
//! bytes held by a 500 ms latency never arrived after the toxic was removed); its remove-all only
//! clears the upstream list; it never reports the port it bound for `listen: …:0`; and its
//! connections are private, so they can neither be closed on `enabled: false` nor reset.
//! The toxics follow Toxiproxy's semantics (see `link`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

use super::proxy::{Acceptor, Connections};
use super::{FaultError, Toxic, ToxicKind};

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
    connections: Arc<Connections>,
    /// Present while the proxy is enabled.
    acceptor: Option<Acceptor>,
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
        let connections = Connections::new();
        let acceptor = new
            .enabled
            .then(|| Acceptor::start(listener, new.upstream.clone(), Arc::clone(&connections)));
        let proxy = Proxy {
            name: new.name.clone(),
            listen,
            upstream: new.upstream,
            toxics: Vec::new(),
            connections,
            acceptor,
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
        validate(&toxic)?;
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, proxy)?;
        if proxy.toxics.iter().any(|t| t.name == toxic.name) {
            return Err(FaultError::ToxicExists {
                proxy: proxy.name.clone(),
                toxic: toxic.name,
            });
        }
        proxy.toxics.push(toxic.clone());
        proxy.publish();
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
        validate(&new)?;
        proxy.toxics[index] = new.clone();
        proxy.publish();
        Ok(new)
    }

    /// Removes one toxic.
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        let proxy = get_mut(&mut proxies, proxy)?;
        let index = proxy.toxic_index(toxic)?;
        proxy.toxics.remove(index);
        proxy.publish();
        Ok(())
    }

    /// Removes every toxic of a proxy, one by one.
    pub async fn remove_all_toxics(&self, proxy: &str) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        get_mut(&mut proxies, proxy)?.heal();
        Ok(())
    }

    /// Toxiproxy's `POST /reset`: every proxy enabled, every toxic removed.
    pub async fn reset(&self) -> Result<(), FaultError> {
        let mut proxies = self.proxies.lock().await;
        for proxy in proxies.values_mut() {
            proxy.heal();
            proxy.set_enabled(true).await?;
        }
        Ok(())
    }
}

/// Checks a toxic as the API would on parsing it (e.g. a slicer needs
/// `size_variation < average_size`).
fn validate(toxic: &Toxic) -> Result<(), FaultError> {
    toxic.validate()?;
    ToxicKind::from_parts(toxic.kind.type_name(), &toxic.kind.attributes()).map(drop)
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
            enabled: self.acceptor.is_some(),
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

    /// Hands the current toxics to the connections.
    fn publish(&self) {
        self.connections.set_toxics(&self.toxics);
    }

    fn heal(&mut self) {
        self.toxics.clear();
        self.publish();
    }

    async fn set_enabled(&mut self, enabled: bool) -> Result<(), FaultError> {
        match (enabled, self.acceptor.take()) {
            (true, Some(acceptor)) => self.acceptor = Some(acceptor),
            (true, None) => {
                let listener = TcpListener::bind(self.listen).await.map_err(|err| {
                    FaultError::io(format!("re-binding proxy on {}", self.listen), err)
                })?;
                self.acceptor = Some(Acceptor::start(
                    listener,
                    self.upstream.clone(),
                    Arc::clone(&self.connections),
                ));
                tracing::info!(name = %self.name, "proxy enabled");
            }
            (false, Some(acceptor)) => {
                acceptor.stop().await;
                self.connections.close_all();
                tracing::info!(name = %self.name, "proxy disabled");
            }
            (false, None) => {}
        }
        Ok(())
    }

    async fn shut(mut self) {
        if let Some(acceptor) = self.acceptor.take() {
            acceptor.stop().await;
        }
        self.connections.close_all();
        tracing::info!(name = %self.name, "proxy deleted");
    }
}
