//! The links of a case with fault steps: one proxy per client in front of the broker, created
//! through the run's [`FaultInjector`], and the scenario's fault steps turned into [`Fault`]s.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::fault::{Direction, Fault, FaultInjector, Toxic};
use crate::scenario::{LinkDirection, Step};

/// Why the proxies of a case cannot be set up or a fault cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The broker URL has no host:port a TCP proxy can forward to.
    #[error("cannot put a proxy in front of the broker: {0}")]
    Upstream(String),
    /// The injector refused.
    #[error("fault injector: {0}")]
    Injector(#[from] crate::fault::FaultError),
    /// A fault names a client without a proxy.
    #[error("client {0:?} has no proxy")]
    UnknownClient(String),
}

/// A run's fault injector, shared by its cases (Debug without the details).
#[derive(Clone)]
pub struct SharedInjector(pub Arc<dyn FaultInjector>);

impl std::fmt::Debug for SharedInjector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedInjector")
    }
}

impl SharedInjector {
    /// The in-process engine (the default).
    pub fn embedded() -> SharedInjector {
        SharedInjector(Arc::new(crate::fault::EmbeddedInjector::new()))
    }
}

/// The fault a fault step applies, or None for any other step.
pub fn fault_of(step: &Step) -> Option<Fault> {
    let dur = |d: Option<crate::scenario::Dur>| d.map_or(Duration::ZERO, |d| d.0);
    Some(match step {
        Step::Cut(_) => Fault::Cut,
        Step::Down(_) => Fault::Down,
        Step::Heal(_) => Fault::Heal,
        Step::Blackhole(s) => Fault::Blackhole(direction(s.direction)),
        Step::Latency(s) => Fault::Latency {
            delay: s.delay.0,
            jitter: dur(s.jitter),
            direction: direction(s.direction),
        },
        Step::Bandwidth(s) => Fault::Bandwidth {
            kb_per_s: s.rate,
            direction: direction(s.direction),
        },
        Step::Slicer(s) => Fault::Slicer {
            average_size: s.size,
            size_variation: s.variation,
            delay: dur(s.delay),
            direction: direction(s.direction),
        },
        Step::LimitData(s) => Fault::LimitData {
            bytes: s.bytes,
            direction: direction(s.direction),
        },
        Step::SlowClose(s) => Fault::SlowClose {
            delay: s.delay.0,
            direction: direction(s.direction),
        },
        Step::ResetPeer(s) => Fault::ResetPeer {
            after: dur(s.after),
            direction: direction(s.direction),
        },
        _ => return None,
    })
}

fn direction(d: LinkDirection) -> Direction {
    match d {
        LinkDirection::Up => Direction::Up,
        LinkDirection::Down => Direction::Down,
        LinkDirection::Both => Direction::Both,
    }
}

/// The proxies of one case execution, by client name.
pub struct Links {
    injector: Arc<dyn FaultInjector>,
    /// client name -> (proxy name, URL the client connects to)
    proxies: BTreeMap<String, (String, String)>,
}

impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links")
            .field("proxies", &self.proxies)
            .finish()
    }
}

/// `scheme://host:port/path` split into the scheme, the authority and the path.
fn split_url(url: &str) -> Result<(&str, &str, &str), LinkError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| LinkError::Upstream("the broker URL has no scheme".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Credentials never reach this far (the target splits them off), but be safe.
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    Ok((scheme, authority, path))
}

fn default_port(scheme: &str) -> u16 {
    match scheme {
        "mqtts" | "ssl" | "tls" => 8883,
        "ws" => 80,
        "wss" => 443,
        _ => 1883,
    }
}

impl Links {
    /// Creates one proxy per client (named `<proxy_prefix><client>`) in front of the broker at
    /// `url`.
    pub async fn setup(
        injector: Arc<dyn FaultInjector>,
        url: &str,
        clients: impl IntoIterator<Item = String>,
        proxy_prefix: &str,
    ) -> Result<Links, LinkError> {
        let (scheme, authority, path) = split_url(url)?;
        let with_port = if authority.rsplit_once(':').is_some_and(|(_, p)| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()) && !authority.ends_with(']')
        }) {
            authority.to_string()
        } else {
            format!("{authority}:{}", default_port(scheme))
        };
        let upstream: SocketAddr = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| LinkError::Upstream(format!("cannot resolve {with_port}: {e}")))?
            .next()
            .ok_or_else(|| LinkError::Upstream(format!("{with_port} resolves to nothing")))?;
        let mut links = Links {
            injector,
            proxies: BTreeMap::new(),
        };
        for client in clients {
            let name = format!("{proxy_prefix}{client}");
            match links.injector.create_proxy(&name, upstream).await {
                Ok(listen) => {
                    let proxied = format!("{scheme}://{listen}{path}");
                    links.proxies.insert(client, (name, proxied));
                }
                Err(e) => {
                    links.teardown().await;
                    return Err(e.into());
                }
            }
        }
        Ok(links)
    }

    /// The URL client `name` connects to (its proxy), if it has one.
    pub fn url(&self, client: &str) -> Option<&str> {
        self.proxies.get(client).map(|(_, url)| url.as_str())
    }

    /// Applies `fault` to the link of `client`, or of every client; returns the clients
    /// affected with the toxics installed on each.
    pub async fn apply(
        &self,
        fault: &Fault,
        client: Option<&str>,
    ) -> Result<Vec<(String, Vec<Toxic>)>, LinkError> {
        let targets: Vec<(&String, &String)> = match client {
            Some(c) => {
                let (key, (proxy, _)) = self
                    .proxies
                    .get_key_value(c)
                    .ok_or_else(|| LinkError::UnknownClient(c.to_string()))?;
                vec![(key, proxy)]
            }
            None => self.proxies.iter().map(|(k, (p, _))| (k, p)).collect(),
        };
        let mut applied = Vec::new();
        for (client, proxy) in targets {
            let toxics = fault.apply(self.injector.as_ref(), proxy).await?;
            applied.push((client.clone(), toxics));
        }
        Ok(applied)
    }

    /// Deletes every proxy (errors are ignored: the case is over).
    pub async fn teardown(&mut self) {
        for (_, (proxy, _)) in std::mem::take(&mut self.proxies) {
            let _ = self.injector.delete_proxy(&proxy).await;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::fault::EmbeddedInjector;

    #[test]
    fn urls_are_split_for_the_proxy() {
        assert_eq!(
            split_url("mqtt://127.0.0.1:1883").unwrap(),
            ("mqtt", "127.0.0.1:1883", "")
        );
        assert_eq!(
            split_url("ws://h:80/mqtt").unwrap(),
            ("ws", "h:80", "/mqtt")
        );
        assert!(split_url("127.0.0.1:1883").is_err());
    }

    #[tokio::test]
    async fn each_client_gets_its_own_proxy_and_faults_reach_only_it() {
        let broker = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("mqtt://{}", broker.local_addr().unwrap());
        let injector = Arc::new(EmbeddedInjector::new());
        let mut links = Links::setup(
            injector.clone(),
            &url,
            ["a".to_string(), "b".to_string()],
            "case-",
        )
        .await
        .unwrap();
        let a = links.url("a").unwrap().to_string();
        let b = links.url("b").unwrap().to_string();
        assert_ne!(a, b);
        assert_ne!(a, url);
        let latency = Fault::Latency {
            delay: Duration::from_millis(5),
            jitter: Duration::ZERO,
            direction: Direction::Up,
        };
        let applied = links.apply(&latency, Some("a")).await.unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(applied[0].0, "a");
        assert_eq!(injector.toxics("case-a").await.unwrap().len(), 1);
        assert!(injector.toxics("case-b").await.unwrap().is_empty());
        let all = links.apply(&Fault::Heal, None).await.unwrap();
        assert_eq!(all.len(), 2);
        assert!(injector.toxics("case-a").await.unwrap().is_empty());
        assert!(matches!(
            links.apply(&Fault::Cut, Some("c")).await,
            Err(LinkError::UnknownClient(_))
        ));
        links.teardown().await;
        assert!(injector.toxics("case-a").await.is_err());
    }
}
