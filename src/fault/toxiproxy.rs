//! [`FaultInjector`] over a real Toxiproxy server, through the `toxiproxy_rust` client.
//!
//! Traps of `toxiproxy_rust` 0.1.6 handled here:
//! - it is blocking (reqwest's blocking client) and panics on a tokio runtime thread: every call
//!   runs on one dedicated thread that owns the client (created and dropped there; creating a
//!   client per call in `spawn_blocking` cost 65-230 ms each, measured), and a panic inside it
//!   (its toxic builders panic on transport errors) becomes an error;
//! - it ignores HTTP status codes: after each change the proxy or its toxics are read back, and a
//!   change that did not happen is [`FaultError::Refused`];
//! - it has no `reset_peer`, no toxic names of one's own and no single-toxic delete: those go
//!   through a raw HTTP request (same reqwest as the crate), status checked.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::oneshot;
use toxiproxy_rust::client::Client;
use toxiproxy_rust::proxy::{Proxy, ProxyPack};
use toxiproxy_rust::toxic::ToxicPack;

use super::{FaultError, FaultInjector, Stream, Toxic, ToxicKind};

/// A job for the client thread.
type Job = Box<dyn FnOnce(&mut Clients) + Send>;

/// The blocking HTTP clients, owned by one thread (creating one costs 65-230 ms in a debug
/// build, measured, so they are kept rather than made per call).
struct Clients {
    api: SocketAddr,
    toxiproxy: Client,
    http: reqwest::blocking::Client,
}

impl Clients {
    fn new(api: SocketAddr) -> Self {
        Self {
            api,
            toxiproxy: Client::new(api),
            http: reqwest::blocking::Client::new(),
        }
    }

    /// Runs jobs until every sender is dropped. A panicking job (the crate's toxic builders
    /// panic on transport errors, poisoning its client lock) gets fresh clients afterwards.
    fn serve(api: SocketAddr, jobs: mpsc::Receiver<Job>) {
        let mut clients = Self::new(api);
        for job in jobs {
            if catch_unwind(AssertUnwindSafe(|| job(&mut clients))).is_err() {
                clients = Self::new(api);
            }
        }
    }
}

/// Faults applied by a Toxiproxy server reached over HTTP.
#[derive(Clone)]
pub struct ToxiproxyInjector {
    api: SocketAddr,
    listen_host: String,
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for ToxiproxyInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToxiproxyInjector")
            .field("api", &self.api)
            .field("listen_host", &self.listen_host)
            .finish_non_exhaustive()
    }
}

impl ToxiproxyInjector {
    /// A client of the Toxiproxy API at `api` (e.g. `127.0.0.1:8474`); proxies listen on
    /// `127.0.0.1`, port chosen by the server. Starts the thread that owns the blocking
    /// clients; it ends when the injector (and its clones) are dropped.
    pub fn new(api: SocketAddr) -> Self {
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("toxiproxy-client-{api}"))
            .spawn(move || Clients::serve(api, receiver))
            .map_err(|err| tracing::error!(%err, "cannot start the toxiproxy client thread"))
            .ok();
        Self {
            api,
            listen_host: "127.0.0.1".to_owned(),
            jobs,
        }
    }

    /// Sets the host proxies listen on (e.g. `0.0.0.0` for Toxiproxy in a container).
    pub fn with_listen_host(mut self, host: impl Into<String>) -> Self {
        self.listen_host = host.into();
        self
    }

    /// The API address.
    pub fn api(&self) -> SocketAddr {
        self.api
    }

    fn error(api: SocketAddr, message: impl Into<String>) -> FaultError {
        FaultError::Toxiproxy {
            server: api.to_string(),
            message: message.into(),
        }
    }

    /// Runs `op` on the client thread, off the tokio runtime.
    async fn blocking<T, F>(&self, op: F) -> Result<T, FaultError>
    where
        T: Send + 'static,
        F: FnOnce(SocketAddr, &Clients) -> Result<T, FaultError> + Send + 'static,
    {
        let api = self.api;
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |clients: &mut Clients| {
            let _ = reply.send(op(clients.api, clients));
        });
        self.jobs
            .send(job)
            .map_err(|_| Self::error(api, "the toxiproxy client thread is gone"))?;
        answer.await.map_err(|_| {
            // The job was dropped unanswered: it panicked.
            Self::error(api, "the toxiproxy client panicked (transport error?)")
        })?
    }
}

fn find_proxy(api: SocketAddr, client: &Client, name: &str) -> Result<Proxy, FaultError> {
    // A missing proxy answers 404 with an error body, which fails to deserialise.
    client
        .find_proxy(name)
        .map_err(|message| match client.all() {
            Ok(all) if !all.contains_key(name) => FaultError::ProxyNotFound(name.to_owned()),
            _ => ToxiproxyInjector::error(api, message),
        })
}

fn read_toxics(api: SocketAddr, proxy: &Proxy) -> Result<Vec<Toxic>, FaultError> {
    let packs = proxy
        .toxics()
        .map_err(|message| ToxiproxyInjector::error(api, message))?;
    packs.into_iter().map(from_pack).collect()
}

fn from_pack(pack: ToxicPack) -> Result<Toxic, FaultError> {
    let attributes: Map<String, Value> = pack
        .attributes
        .into_iter()
        .map(|(key, value)| (key, Value::from(value)))
        .collect();
    let stream = match pack.stream.as_str() {
        "upstream" => Stream::Upstream,
        "downstream" => Stream::Downstream,
        other => {
            return Err(FaultError::Invalid(format!(
                "toxic {:?} has an unknown stream {other:?}",
                pack.name
            )))
        }
    };
    Ok(Toxic {
        name: pack.name,
        kind: ToxicKind::from_parts(&pack.r#type, &attributes)?,
        stream,
        toxicity: pack.toxicity,
    })
}

fn attr(toxic: &Toxic, value: u64) -> Result<u32, FaultError> {
    u32::try_from(value).map_err(|_| {
        FaultError::Invalid(format!(
            "attribute {value} of toxic {:?} does not fit the toxiproxy client",
            toxic.name
        ))
    })
}

/// Adds a toxic with the crate's builders (default names only).
fn add_with_builders(proxy: &Proxy, toxic: &Toxic) -> Result<bool, FaultError> {
    let stream = toxic.stream.to_string();
    let toxicity = toxic.toxicity;
    match toxic.kind {
        ToxicKind::Latency { latency, jitter } => {
            proxy.with_latency(
                stream,
                attr(toxic, latency)?,
                attr(toxic, jitter)?,
                toxicity,
            );
        }
        ToxicKind::Bandwidth { rate } => {
            proxy.with_bandwidth(stream, attr(toxic, rate)?, toxicity);
        }
        ToxicKind::Slicer {
            average_size,
            size_variation,
            delay,
        } => {
            proxy.with_slicer(
                stream,
                attr(toxic, average_size)?,
                attr(toxic, size_variation)?,
                attr(toxic, delay)?,
                toxicity,
            );
        }
        ToxicKind::LimitData { bytes } => {
            proxy.with_limit_data(stream, attr(toxic, bytes)?, toxicity);
        }
        ToxicKind::SlowClose { delay } => {
            proxy.with_slow_close(stream, attr(toxic, delay)?, toxicity);
        }
        ToxicKind::Timeout { timeout } => {
            proxy.with_timeout(stream, attr(toxic, timeout)?, toxicity);
        }
        ToxicKind::ResetPeer { .. } => return Ok(false),
    }
    Ok(true)
}

/// A raw request for what the crate lacks; a non-2xx status is an error.
fn raw(
    clients: &Clients,
    method: reqwest::Method,
    path: &str,
    body: Option<String>,
) -> Result<(), FaultError> {
    let api = clients.api;
    let mut request = clients
        .http
        .request(method, format!("http://{api}{path}"))
        .header("Content-Type", "application/json");
    if let Some(body) = body {
        request = request.body(body);
    }
    let response = request
        .send()
        .map_err(|err| ToxiproxyInjector::error(api, err.to_string()))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = response.text().unwrap_or_default();
        Err(FaultError::Refused(format!("{path}: {status} {text}")))
    }
}

/// The address clients use: the reported one, with an unspecified IP replaced by the API's.
fn client_address(api: SocketAddr, listen: &str) -> Result<SocketAddr, FaultError> {
    let mut addr: SocketAddr = listen.parse().map_err(|_| {
        ToxiproxyInjector::error(api, format!("unparsable proxy listen address {listen:?}"))
    })?;
    if addr.ip().is_unspecified() {
        let ip: IpAddr = api.ip();
        addr.set_ip(ip);
    }
    Ok(addr)
}

#[async_trait]
impl FaultInjector for ToxiproxyInjector {
    async fn create_proxy(
        &self,
        name: &str,
        upstream: SocketAddr,
    ) -> Result<SocketAddr, FaultError> {
        let name = name.to_owned();
        let listen = format!("{}:0", self.listen_host);
        self.blocking(move |api, clients| {
            let pack = ProxyPack::new(name.clone(), listen, upstream.to_string());
            clients
                .toxiproxy
                .populate(vec![pack])
                .map_err(|message| Self::error(api, message))?;
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            if proxy.proxy_pack.upstream != upstream.to_string() {
                return Err(FaultError::Refused(format!(
                    "proxy {name:?} forwards to {} instead of {upstream}",
                    proxy.proxy_pack.upstream
                )));
            }
            client_address(api, &proxy.proxy_pack.listen)
        })
        .await
    }

    async fn add_toxic(&self, proxy: &str, toxic: &Toxic) -> Result<(), FaultError> {
        toxic.validate()?;
        let (name, toxic) = (proxy.to_owned(), toxic.clone());
        self.blocking(move |api, clients| {
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            if read_toxics(api, &proxy)?
                .iter()
                .any(|t| t.name == toxic.name)
            {
                return Err(FaultError::ToxicExists {
                    proxy: name,
                    toxic: toxic.name,
                });
            }
            let built = toxic.has_default_name() && add_with_builders(&proxy, &toxic)?;
            if !built {
                let body = serde_json::to_string(&toxic)
                    .map_err(|err| FaultError::Invalid(err.to_string()))?;
                raw(
                    clients,
                    reqwest::Method::POST,
                    &format!("/proxies/{name}/toxics"),
                    Some(body),
                )?;
            }
            match read_toxics(api, &proxy)?
                .into_iter()
                .find(|t| t.name == toxic.name)
            {
                Some(found) if found.kind == toxic.kind && found.stream == toxic.stream => Ok(()),
                Some(found) => Err(FaultError::Refused(format!(
                    "toxic {:?} on {name:?} reads back as {found:?}",
                    toxic.name
                ))),
                None => Err(FaultError::Refused(format!(
                    "toxic {:?} was not added to {name:?}",
                    toxic.name
                ))),
            }
        })
        .await
    }

    async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), FaultError> {
        let (name, toxic) = (proxy.to_owned(), toxic.to_owned());
        self.blocking(move |api, clients| {
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            if !read_toxics(api, &proxy)?.iter().any(|t| t.name == toxic) {
                return Err(FaultError::ToxicNotFound { proxy: name, toxic });
            }
            raw(
                clients,
                reqwest::Method::DELETE,
                &format!("/proxies/{name}/toxics/{toxic}"),
                None,
            )?;
            if read_toxics(api, &proxy)?.iter().any(|t| t.name == toxic) {
                return Err(FaultError::Refused(format!(
                    "toxic {toxic:?} is still on {name:?}"
                )));
            }
            Ok(())
        })
        .await
    }

    async fn heal(&self, proxy: &str) -> Result<(), FaultError> {
        let name = proxy.to_owned();
        self.blocking(move |api, clients| {
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            proxy
                .delete_all_toxics()
                .map_err(|message| Self::error(api, message))?;
            let left = read_toxics(api, &proxy)?;
            if left.is_empty() {
                Ok(())
            } else {
                let names: Vec<String> = left.into_iter().map(|t| t.name).collect();
                Err(FaultError::Refused(format!(
                    "toxics {names:?} are still on {name:?}"
                )))
            }
        })
        .await
    }

    async fn set_enabled(&self, proxy: &str, enabled: bool) -> Result<(), FaultError> {
        let name = proxy.to_owned();
        self.blocking(move |api, clients| {
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            if enabled {
                proxy.enable()
            } else {
                proxy.disable()
            }
            .map_err(|message| Self::error(api, message))?;
            let now = find_proxy(api, &clients.toxiproxy, &name)?
                .proxy_pack
                .enabled;
            if now == enabled {
                Ok(())
            } else {
                Err(FaultError::Refused(format!(
                    "proxy {name:?} is still enabled={now}"
                )))
            }
        })
        .await
    }

    async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, FaultError> {
        let name = proxy.to_owned();
        self.blocking(move |api, clients| {
            read_toxics(api, &find_proxy(api, &clients.toxiproxy, &name)?)
        })
        .await
    }

    async fn delete_proxy(&self, proxy: &str) -> Result<(), FaultError> {
        let name = proxy.to_owned();
        self.blocking(move |api, clients| {
            let proxy = find_proxy(api, &clients.toxiproxy, &name)?;
            proxy
                .delete()
                .map_err(|message| Self::error(api, message))?;
            let all: HashMap<String, Proxy> = clients
                .toxiproxy
                .all()
                .map_err(|message| Self::error(api, message))?;
            if all.contains_key(&name) {
                Err(FaultError::Refused(format!("proxy {name:?} still exists")))
            } else {
                Ok(())
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn an_unspecified_listen_ip_becomes_the_api_host() {
        let api: SocketAddr = "10.1.2.3:8474".parse().unwrap();
        assert_eq!(
            client_address(api, "0.0.0.0:4000").unwrap(),
            "10.1.2.3:4000".parse::<SocketAddr>().unwrap()
        );
        assert_eq!(
            client_address(api, "127.0.0.1:4000").unwrap(),
            "127.0.0.1:4000".parse::<SocketAddr>().unwrap()
        );
        assert!(client_address(api, "localhost:4000").is_err());
    }

    #[test]
    fn toxic_packs_convert_with_their_stream() {
        let pack = ToxicPack {
            name: "lat".to_owned(),
            r#type: "latency".to_owned(),
            stream: "upstream".to_owned(),
            toxicity: 0.5,
            attributes: [("latency".to_owned(), 40), ("jitter".to_owned(), 2)].into(),
        };
        let toxic = from_pack(pack).unwrap();
        assert_eq!(toxic.stream, Stream::Upstream);
        assert_eq!(
            toxic.kind,
            ToxicKind::Latency {
                latency: 40,
                jitter: 2
            }
        );
        let sideways = ToxicPack {
            name: "x".to_owned(),
            r#type: "latency".to_owned(),
            stream: "sideways".to_owned(),
            toxicity: 1.0,
            attributes: HashMap::new(),
        };
        assert!(from_pack(sideways).is_err());
    }
}
