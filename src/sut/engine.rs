//! The Docker engine behind container targets: reach it (fail fast when it is absent) and bridge
//! the API version testcontainers speaks to older engines.
//!
//! testcontainers 0.28 (bollard 0.21) addresses every request to API `v1.53` and never negotiates;
//! an engine that predates it (Debian 12's Docker 20.10 speaks 1.41) refuses such requests. When
//! the engine is older, a loopback shim on its own thread rewrites the version in each request
//! path to the engine's and forwards the request; `DOCKER_HOST` then points testcontainers at
//! the shim. HTTP upgrades (exec, attach) are not forwarded; the container targets need neither.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use testcontainers::bollard::API_DEFAULT_VERSION;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::OnceCell;

/// Why the Docker engine cannot be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    /// Nothing answers on the engine endpoint.
    #[error("no Docker daemon at {endpoint}: {reason}")]
    NoDaemon {
        /// DOCKER_HOST or the default socket.
        endpoint: String,
        /// Cause.
        reason: String,
    },
    /// The endpoint answered, but not as a Docker engine.
    #[error("the Docker daemon at {endpoint} gave an unexpected answer: {reason}")]
    BadAnswer {
        /// DOCKER_HOST or the default socket.
        endpoint: String,
        /// Cause.
        reason: String,
    },
}

/// What the engine said about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    /// Engine version (`20.10.24`).
    pub version: String,
    /// Highest API version it speaks, as (major, minor).
    pub api: (usize, usize),
    /// The loopback shim address, when the engine is older than testcontainers' API.
    pub shim: Option<SocketAddr>,
    /// The engine's own endpoint (DOCKER_HOST before the shim replaced it).
    pub endpoint: Endpoint,
}

impl EngineInfo {
    /// The host where published container ports are reached, when the shim hides it from
    /// testcontainers (which would otherwise take it from DOCKER_HOST): the engine's TCP host,
    /// or 127.0.0.1 for a Unix socket.
    pub fn published_host(&self) -> Option<String> {
        self.shim?;
        Some(match &self.endpoint {
            Endpoint::Unix(_) => "127.0.0.1".to_string(),
            Endpoint::Tcp(addr) => match addr.rsplit_once(':') {
                Some((host, _)) => host.trim_matches(['[', ']']).to_string(),
                None => addr.clone(),
            },
        })
    }
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket.
    Unix(PathBuf),
    /// A plain TCP address (`host:port`).
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "tcp://{a}"),
        }
    }
}

impl Endpoint {
    /// The endpoint named by a DOCKER_HOST value (None: the default Unix socket).
    pub fn parse(docker_host: Option<&str>) -> Option<Endpoint> {
        let Some(host) = docker_host.filter(|h| !h.is_empty()) else {
            return Some(Endpoint::Unix("/var/run/docker.sock".into()));
        };
        if let Some(path) = host.strip_prefix("unix://") {
            return Some(Endpoint::Unix(path.into()));
        }
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))?;
        Some(Endpoint::Tcp(addr.trim_end_matches('/').to_string()))
    }
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(ep: &Endpoint) -> std::io::Result<Box<dyn Stream>> {
    Ok(match ep {
        Endpoint::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
        Endpoint::Tcp(a) => Box::new(tokio::net::TcpStream::connect(a.as_str()).await?),
    })
}

/// Parse `1.41` into (1, 41).
pub fn parse_api(v: &str) -> Option<(usize, usize)> {
    let (major, minor) = v.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// Ask the engine for its version with an unversioned `GET /version` (bounded by `timeout`).
pub async fn query_version(
    ep: &Endpoint,
    timeout: Duration,
) -> Result<(String, (usize, usize)), EngineError> {
    let no_daemon = |reason: String| EngineError::NoDaemon {
        endpoint: ep.to_string(),
        reason,
    };
    let bad = |reason: String| EngineError::BadAnswer {
        endpoint: ep.to_string(),
        reason,
    };
    let exchange = async {
        let mut s = connect(ep).await?;
        s.write_all(b"GET /version HTTP/1.0\r\nHost: docker\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(buf)
    };
    let buf = match tokio::time::timeout(timeout, exchange).await {
        Err(_) => return Err(no_daemon(format!("no answer within {timeout:?}"))),
        Ok(Err(e)) => return Err(no_daemon(e.to_string())),
        Ok(Ok(b)) => b,
    };
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| bad("no HTTP response".into()))?;
    if !head.starts_with("HTTP/1.") || head.split(' ').nth(1) != Some("200") {
        return Err(bad(head.lines().next().unwrap_or("").to_string()));
    }
    let doc: serde_json::Value =
        serde_json::from_str(body).map_err(|e| bad(format!("/version is not JSON: {e}")))?;
    let version = doc["Version"].as_str().unwrap_or("unknown").to_string();
    let api = doc["ApiVersion"]
        .as_str()
        .and_then(parse_api)
        .ok_or_else(|| bad("/version has no ApiVersion".into()))?;
    Ok((version, api))
}

/// Rewrite `/v1.53/...` to `/v{api}/...` when the request asks for a newer API than `api`.
pub fn rewrite_path(path_and_query: &str, api: (usize, usize)) -> String {
    let Some(rest) = path_and_query.strip_prefix("/v") else {
        return path_and_query.to_string();
    };
    let Some(slash) = rest.find('/') else {
        return path_and_query.to_string();
    };
    match parse_api(&rest[..slash]) {
        Some(asked) if asked > api => format!("/v{}.{}{}", api.0, api.1, &rest[slash..]),
        _ => path_and_query.to_string(),
    }
}

type ShimBody = BoxBody<Bytes, hyper::Error>;

fn shim_error(status: u16, msg: String) -> Response<ShimBody> {
    let body = Full::new(Bytes::from(format!("{{\"message\":{:?}}}", msg)))
        .map_err(|never| match never {})
        .boxed();
    let mut resp = Response::new(body);
    *resp.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or_default();
    resp
}

async fn forward(
    mut req: Request<Incoming>,
    upstream: Endpoint,
    api: (usize, usize),
) -> Result<Response<ShimBody>, std::convert::Infallible> {
    let pq = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    match rewrite_path(&pq, api).parse() {
        Ok(uri) => *req.uri_mut() = uri,
        Err(e) => return Ok(shim_error(400, format!("bad request path: {e}"))),
    }
    let stream = match connect(&upstream).await {
        Ok(s) => s,
        Err(e) => return Ok(shim_error(502, format!("docker engine unreachable: {e}"))),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => return Ok(shim_error(502, format!("docker engine handshake: {e}"))),
    };
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("docker shim upstream connection: {e}");
        }
    });
    match sender.send_request(req).await {
        Ok(resp) => Ok(resp.map(BodyExt::boxed)),
        Err(e) => Ok(shim_error(502, format!("docker engine request: {e}"))),
    }
}

/// Start the version shim on its own thread (it outlives any one async runtime); returns the
/// loopback address it listens on.
pub fn start_shim(upstream: Endpoint, api: (usize, usize)) -> std::io::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("docker-api-shim".into())
        .spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let svc = hyper::service::service_fn(move |req| {
                            forward(req, upstream.clone(), api)
                        });
                        let served = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), svc)
                            .await;
                        if let Err(e) = served {
                            tracing::debug!("docker shim connection: {e}");
                        }
                    });
                }
            })
        })?;
    Ok(addr)
}

static ENGINE: OnceCell<Result<EngineInfo, EngineError>> = OnceCell::const_new();

/// Check the engine once per process: it answers `/version`, and testcontainers can reach it
/// (through the shim when the engine is older than API 1.53); then a ping through
/// testcontainers' own client confirms the whole path.
pub async fn ensure() -> Result<EngineInfo, EngineError> {
    ENGINE.get_or_init(init).await.clone()
}

async fn init() -> Result<EngineInfo, EngineError> {
    let docker_host = std::env::var("DOCKER_HOST").ok();
    let ep = Endpoint::parse(docker_host.as_deref()).ok_or_else(|| EngineError::NoDaemon {
        endpoint: docker_host.clone().unwrap_or_default(),
        reason: "unsupported DOCKER_HOST scheme (unix://, tcp:// or http://)".into(),
    })?;
    let (version, api) = query_version(&ep, Duration::from_secs(5)).await?;
    let wanted = (
        API_DEFAULT_VERSION.major_version,
        API_DEFAULT_VERSION.minor_version,
    );
    let shim = if api < wanted {
        let addr = start_shim(ep.clone(), api).map_err(|e| EngineError::NoDaemon {
            endpoint: ep.to_string(),
            reason: format!("cannot start the API version shim: {e}"),
        })?;
        // Set once, before testcontainers creates its first client (it reads DOCKER_HOST on
        // each client creation).
        std::env::set_var("DOCKER_HOST", format!("tcp://{addr}"));
        Some(addr)
    } else {
        None
    };
    let client = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| EngineError::NoDaemon {
            endpoint: ep.to_string(),
            reason: e.to_string(),
        })?;
    tokio::time::timeout(Duration::from_secs(10), client.ping())
        .await
        .map_err(|_| EngineError::NoDaemon {
            endpoint: ep.to_string(),
            reason: "ping timed out".into(),
        })?
        .map_err(|e| EngineError::NoDaemon {
            endpoint: ep.to_string(),
            reason: e.to_string(),
        })?;
    Ok(EngineInfo {
        version,
        api,
        shim,
        endpoint: ep,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_come_from_docker_host() {
        assert_eq!(
            Endpoint::parse(None),
            Some(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            Endpoint::parse(Some("tcp://10.0.0.1:2375")),
            Some(Endpoint::Tcp("10.0.0.1:2375".into()))
        );
        assert_eq!(
            Endpoint::parse(Some("unix:///run/d.sock")),
            Some(Endpoint::Unix("/run/d.sock".into()))
        );
        assert_eq!(Endpoint::parse(Some("npipe:////./pipe/x")), None);
    }

    #[test]
    fn newer_api_paths_are_lowered_to_the_engine() {
        assert_eq!(
            rewrite_path("/v1.53/containers/create?name=x", (1, 41)),
            "/v1.41/containers/create?name=x"
        );
        assert_eq!(rewrite_path("/v1.40/_ping", (1, 41)), "/v1.40/_ping");
        assert_eq!(rewrite_path("/_ping", (1, 41)), "/_ping");
        assert_eq!(rewrite_path("/v1.53", (1, 41)), "/v1.53");
    }

    #[test]
    fn ports_are_published_on_the_engine_host() {
        let info = |endpoint, shim| EngineInfo {
            version: "20.10".into(),
            api: (1, 41),
            shim,
            endpoint,
        };
        let shim = Some(SocketAddr::from(([127, 0, 0, 1], 1)));
        assert_eq!(
            info(Endpoint::Tcp("docker:2375".into()), shim).published_host(),
            Some("docker".into())
        );
        assert_eq!(
            info(Endpoint::Unix("/var/run/docker.sock".into()), shim).published_host(),
            Some("127.0.0.1".into())
        );
        assert_eq!(
            info(Endpoint::Tcp("docker:2375".into()), None).published_host(),
            None
        );
    }

    #[tokio::test]
    async fn a_missing_socket_is_no_daemon() {
        let ep = Endpoint::Unix("/nonexistent/docker.sock".into());
        let err = query_version(&ep, Duration::from_secs(2))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::NoDaemon { .. }), "{err}");
    }
}
