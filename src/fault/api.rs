//! Toxiproxy's HTTP API (`/proxies`, `/populate`, `/reset`, `/version`) served around an
//! [`Engine`], so Toxiproxy clients (`toxiproxy_rust`, `toxiproxy-cli`) can drive it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::serve::ListenerExt;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::engine::{Engine, NewProxy, ProxyInfo, ProxyUpdate, ToxicUpdate};
use super::{FaultError, Toxic};

/// The version `GET /version` reports: Toxiproxy's API level, then ours.
const VERSION: &str = concat!("2.5.0-mqtt-conformance-", env!("CARGO_PKG_VERSION"));

/// A running API server. Dropping it stops the server (and deletes its proxies).
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    engine: Arc<Engine>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl ServerHandle {
    /// The address the API listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The engine behind the API, to drive it in-process too.
    pub fn engine(&self) -> Arc<Engine> {
        Arc::clone(&self.engine)
    }

    /// Stops the server gracefully and deletes every proxy.
    pub async fn shutdown(mut self) -> Result<(), FaultError> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.join().await
    }

    /// Waits until the server stops (it only stops on an error or [`ServerHandle::shutdown`]).
    pub async fn wait(mut self) -> Result<(), FaultError> {
        self.join().await
    }

    /// Serves until `signal` completes (e.g. `tokio::signal::ctrl_c()`), then shuts down:
    /// what `mqtt-conformance toxiproxy --listen ADDR` runs.
    pub async fn run_until<F>(mut self, signal: F) -> Result<(), FaultError>
    where
        F: std::future::Future + Send,
    {
        let Some(mut task) = self.task.take() else {
            return Ok(());
        };
        tokio::select! {
            served = &mut task => {
                self.engine.clear().await;
                served_result(served)
            }
            _ = signal => {
                self.task = Some(task);
                self.shutdown().await
            }
        }
    }

    async fn join(&mut self) -> Result<(), FaultError> {
        let Some(task) = self.task.take() else {
            return Ok(());
        };
        let served = task.await;
        self.engine.clear().await;
        served_result(served)
    }
}

fn served_result(
    served: Result<std::io::Result<()>, tokio::task::JoinError>,
) -> Result<(), FaultError> {
    match served {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err(FaultError::io("serving the Toxiproxy API", err)),
        Err(err) => Err(FaultError::io(
            "serving the Toxiproxy API",
            std::io::Error::other(err.to_string()),
        )),
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// Serves Toxiproxy's API on `listen` (port 0 picks a free port) around a new [`Engine`];
/// returns the bound address and the handle that stops it.
pub async fn serve(listen: SocketAddr) -> Result<(SocketAddr, ServerHandle), FaultError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|err| FaultError::io(format!("binding the Toxiproxy API on {listen}"), err))?;
    let addr = listener
        .local_addr()
        .map_err(|err| FaultError::io("reading the API's bound address", err))?;
    let engine = Arc::new(Engine::new());
    let app = router(Arc::clone(&engine));
    let (shutdown, stopped) = oneshot::channel::<()>();
    // Small JSON requests and answers must not wait for Nagle and delayed ACKs.
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(%err, "cannot set TCP_NODELAY on an API connection");
        }
    });
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                // A dropped sender is a shutdown too.
                let _ = stopped.await;
            })
            .await
    });
    tracing::info!(%addr, "Toxiproxy-compatible API listening");
    let handle = ServerHandle {
        addr,
        engine,
        shutdown: Some(shutdown),
        task: Some(task),
    };
    Ok((addr, handle))
}

/// The API routes over an engine, to mount elsewhere if need be.
pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/reset", axum::routing::post(reset))
        .route("/populate", axum::routing::post(populate))
        .route("/proxies", get(list_proxies).post(create_proxy))
        .route(
            "/proxies/{proxy}",
            get(get_proxy)
                .post(update_proxy)
                .patch(update_proxy)
                .delete(delete_proxy),
        )
        .route(
            "/proxies/{proxy}/toxics",
            get(list_toxics).post(create_toxic),
        )
        .route(
            "/proxies/{proxy}/toxics/{toxic}",
            get(get_toxic)
                .post(update_toxic)
                .patch(update_toxic)
                .delete(delete_toxic),
        )
        .with_state(engine)
}

/// A [`FaultError`] as Toxiproxy reports errors: `{"error": ..., "status": ...}`.
struct ApiError(FaultError);

impl From<FaultError> for ApiError {
    fn from(err: FaultError) -> Self {
        Self(err)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            FaultError::ProxyNotFound(_) | FaultError::ToxicNotFound { .. } => {
                StatusCode::NOT_FOUND
            }
            FaultError::ProxyExists(_) | FaultError::ToxicExists { .. } => StatusCode::CONFLICT,
            FaultError::Invalid(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({"error": self.0.to_string(), "status": status.as_u16()});
        (status, Json(body)).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;
type Shared = State<Arc<Engine>>;

/// Parses a JSON body; a bad body is a 400, as in Toxiproxy.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|err| ApiError(FaultError::Invalid(format!("bad request body: {err}"))))
}

async fn version() -> Json<serde_json::Value> {
    Json(json!({ "version": VERSION }))
}

async fn reset(State(engine): Shared) -> ApiResult<StatusCode> {
    engine.reset().await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn populate(State(engine): Shared, body: Bytes) -> ApiResult<impl IntoResponse> {
    let proxies: Vec<NewProxy> = parse(&body)?;
    let created = engine.populate(proxies).await?;
    Ok((StatusCode::CREATED, Json(json!({ "proxies": created }))))
}

async fn list_proxies(State(engine): Shared) -> Json<BTreeMap<String, ProxyInfo>> {
    let proxies = engine.proxies().await;
    Json(proxies.into_iter().map(|p| (p.name.clone(), p)).collect())
}

async fn create_proxy(State(engine): Shared, body: Bytes) -> ApiResult<impl IntoResponse> {
    let new: NewProxy = parse(&body)?;
    let created = engine.create_proxy(new).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

async fn get_proxy(State(engine): Shared, Path(proxy): Path<String>) -> ApiResult<Json<ProxyInfo>> {
    Ok(Json(engine.proxy(&proxy).await?))
}

async fn update_proxy(
    State(engine): Shared,
    Path(proxy): Path<String>,
    body: Bytes,
) -> ApiResult<Json<ProxyInfo>> {
    let update: ProxyUpdate = parse(&body)?;
    Ok(Json(engine.update_proxy(&proxy, update).await?))
}

async fn delete_proxy(State(engine): Shared, Path(proxy): Path<String>) -> ApiResult<StatusCode> {
    engine.delete_proxy(&proxy).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_toxics(
    State(engine): Shared,
    Path(proxy): Path<String>,
) -> ApiResult<Json<Vec<Toxic>>> {
    Ok(Json(engine.toxics(&proxy).await?))
}

async fn create_toxic(
    State(engine): Shared,
    Path(proxy): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Toxic>> {
    let toxic: Toxic = parse(&body)?;
    Ok(Json(engine.add_toxic(&proxy, toxic).await?))
}

#[derive(Deserialize)]
struct ToxicPath {
    proxy: String,
    toxic: String,
}

async fn get_toxic(State(engine): Shared, Path(path): Path<ToxicPath>) -> ApiResult<Json<Toxic>> {
    Ok(Json(engine.toxic(&path.proxy, &path.toxic).await?))
}

async fn update_toxic(
    State(engine): Shared,
    Path(path): Path<ToxicPath>,
    body: Bytes,
) -> ApiResult<Json<Toxic>> {
    let update: ToxicUpdate = parse(&body)?;
    Ok(Json(
        engine
            .update_toxic(&path.proxy, &path.toxic, update)
            .await?,
    ))
}

async fn delete_toxic(State(engine): Shared, Path(path): Path<ToxicPath>) -> ApiResult<StatusCode> {
    engine.remove_toxic(&path.proxy, &path.toxic).await?;
    Ok(StatusCode::NO_CONTENT)
}
