//! `ToxiproxyInjector` against a server that answers 200 to every change but makes none: each
//! change must come back as `Refused`, since `toxiproxy_rust` itself ignores status codes.
#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;

use axum::routing::get;
use axum::{Json, Router};
use mqtt_conformance::fault::{
    FaultError, FaultInjector, Stream, Toxic, ToxicKind, ToxiproxyInjector,
};
use serde_json::{json, Value};

/// A frozen Toxiproxy: proxy `p` (enabled, one latency toxic) whatever is asked.
async fn frozen_toxiproxy() -> SocketAddr {
    fn proxy() -> Value {
        json!({
            "name": "p",
            "listen": "127.0.0.1:20000",
            "upstream": "127.0.0.1:1883",
            "enabled": true,
            "toxics": [toxic()],
        })
    }
    fn toxic() -> Value {
        json!({
            "name": "latency_downstream",
            "type": "latency",
            "stream": "downstream",
            "toxicity": 1.0,
            "attributes": {"latency": 100, "jitter": 0},
        })
    }
    let ok = || async { Json(json!({})) };
    let app = Router::new()
        .route("/proxies", get(|| async { Json(json!({ "p": proxy() })) }))
        .route(
            "/proxies/p",
            get(|| async { Json(proxy()) }).post(ok).delete(ok),
        )
        .route(
            "/proxies/p/toxics",
            get(|| async { Json(json!([toxic()])) }).post(ok),
        )
        .route(
            "/proxies/p/toxics/{t}",
            get(|| async { Json(toxic()) }).delete(ok),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn refused<T: std::fmt::Debug>(result: Result<T, FaultError>) {
    assert!(matches!(result, Err(FaultError::Refused(_))), "{result:?}");
}

#[tokio::test]
async fn every_ignored_change_is_refused() {
    let faults = ToxiproxyInjector::new(frozen_toxiproxy().await);
    let slicer = Toxic::new(
        ToxicKind::Slicer {
            average_size: 10,
            size_variation: 1,
            delay: 0,
        },
        Stream::Upstream,
    );
    refused(faults.add_toxic("p", &slicer).await);
    refused(faults.remove_toxic("p", "latency_downstream").await);
    refused(faults.heal("p").await);
    refused(faults.set_enabled("p", false).await);
    refused(faults.delete_proxy("p").await);
    // Reading works, and a change that is already true is no error.
    assert_eq!(faults.toxics("p").await.unwrap().len(), 1);
    faults.set_enabled("p", true).await.unwrap();
}
