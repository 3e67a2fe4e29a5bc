//! The client's TLS transports (`mqtts://`, `wss://`) against an in-test rustls server with
//! certificates made on the spot: a custom CA, unknown issuers, `insecure_tls`, and client
//! certificates.
#![allow(clippy::unwrap_used, clippy::result_large_err)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use reference_broker::client::{ClientError, Connection, Received, TransportOptions};
use reference_broker::codec::{Connect, Packet, ProtocolVersion};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::time::timeout;
use tokio_rustls::TlsAcceptor;

const T: Duration = Duration::from_secs(5);
const CONNACK_OK: &[u8] = &[0x20, 0x02, 0x00, 0x00];

struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key: PrivateKeyDer<'static>,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1/localhost, and a client certificate, all
    /// written as PEM files in a fresh directory.
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("mqttc-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();

        let client_key = KeyPair::generate().unwrap();
        let client = CertificateParams::new(vec!["client".into()])
            .unwrap()
            .signed_by(&client_key, &ca)
            .unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client.key"), client_key.serialize_pem()).unwrap();

        // Another CA's certificate, to be trusted instead of the right one.
        let mut other_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        other_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let other =
            CertifiedIssuer::self_signed(other_params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.join("other-ca.pem"), other.pem()).unwrap();

        Pki {
            dir,
            ca: ca.der().clone(),
            server_chain: vec![server.der().clone()],
            server_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
        }
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join(name))
    }

    fn acceptor(&self, require_client_cert: bool) -> TlsAcceptor {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let config = builder
            .with_single_cert(self.server_chain.clone(), self.server_key.clone_key())
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Serve one TLS connection: read the CONNECT, answer CONNACK. Returns whether the
/// handshake succeeded.
async fn tls_peer(acceptor: TlsAcceptor) -> (String, tokio::task::JoinHandle<bool>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("mqtts://{}", l.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let Ok(mut tls) = acceptor.accept(s).await else {
            return false;
        };
        let mut header = [0u8; 2];
        tls.read_exact(&mut header).await.unwrap();
        let mut body = vec![0u8; usize::from(header[1])];
        tls.read_exact(&mut body).await.unwrap();
        tls.write_all(CONNACK_OK).await.unwrap();
        tls.flush().await.unwrap();
        // Keep the stream until the client is done.
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        true
    });
    (url, task)
}

fn connect() -> Packet {
    Packet::Connect(Box::new(Connect {
        protocol: ProtocolVersion::V3_1_1,
        clean_start: true,
        keep_alive: 60,
        client_id: "tls".into(),
        will: None,
        username: None,
        password: None,
        properties: Default::default(),
    }))
}

async fn exchange(c: &mut Connection) {
    c.send(&connect()).await.unwrap();
    match c.recv(T).await.unwrap() {
        Received::Packet(Packet::ConnAck(_)) => {}
        other => panic!("expected CONNACK, got {other:?}"),
    }
}

#[tokio::test]
async fn mqtts_with_a_custom_ca() {
    let pki = Pki::new("ca");
    let (url, peer) = tls_peer(pki.acceptor(false)).await;
    let options = TransportOptions {
        ca_file: pki.file("ca.pem"),
        ..Default::default()
    };
    let mut c = Connection::open(&url, &options).await.unwrap();
    exchange(&mut c).await;
    c.close().await;
    assert!(timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn mqtts_refuses_an_unknown_issuer() {
    let pki = Pki::new("unknown");
    for ca_file in [None, pki.file("other-ca.pem")] {
        let (url, peer) = tls_peer(pki.acceptor(false)).await;
        let options = TransportOptions {
            ca_file,
            ..Default::default()
        };
        let err = Connection::open(&url, &options).await.unwrap_err();
        assert!(matches!(err, ClientError::Tls(_)), "{err}");
        assert!(!timeout(T, peer).await.unwrap().unwrap());
    }
}

#[tokio::test]
async fn mqtts_insecure_skips_verification() {
    let pki = Pki::new("insecure");
    let (url, peer) = tls_peer(pki.acceptor(false)).await;
    let options = TransportOptions {
        insecure_tls: true,
        ..Default::default()
    };
    let mut c = Connection::open(&url, &options).await.unwrap();
    exchange(&mut c).await;
    c.close().await;
    assert!(timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn mqtts_with_a_client_certificate() {
    let pki = Pki::new("client-cert");
    let (url, peer) = tls_peer(pki.acceptor(true)).await;
    let options = TransportOptions {
        ca_file: pki.file("ca.pem"),
        client_cert: pki.file("client.pem"),
        client_key: pki.file("client.key"),
        ..Default::default()
    };
    let mut c = Connection::open(&url, &options).await.unwrap();
    exchange(&mut c).await;
    c.close().await;
    assert!(timeout(T, peer).await.unwrap().unwrap());

    // Without the certificate the server ends the handshake (TLS 1.3 reports it at the
    // first read, so either the open or the exchange fails).
    let (url, peer) = tls_peer(pki.acceptor(true)).await;
    let options = TransportOptions {
        ca_file: pki.file("ca.pem"),
        ..Default::default()
    };
    if let Ok(mut c) = Connection::open(&url, &options).await {
        let _ = c.send(&connect()).await;
        let r = c.recv(T).await;
        assert!(
            matches!(r, Ok(Received::Closed) | Err(ClientError::Io(_))),
            "{r:?}"
        );
    }
    assert!(!timeout(T, peer).await.unwrap().unwrap());
}

#[tokio::test]
async fn wss_over_tls() {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    use tokio_tungstenite::tungstenite::Message;
    let pki = Pki::new("wss");
    let acceptor = pki.acceptor(false);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("wss://{}/mqtt", l.local_addr().unwrap());
    let peer = tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let tls = acceptor.accept(s).await.unwrap();
        let mut ws = tokio_tungstenite::accept_hdr_async(tls, |_: &Request, mut resp: Response| {
            resp.headers_mut()
                .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
            Ok(resp)
        })
        .await
        .unwrap();
        let first = ws.next().await.unwrap().unwrap();
        ws.send(Message::Binary(bytes::Bytes::from_static(CONNACK_OK)))
            .await
            .unwrap();
        let _ = ws.next().await;
        first
    });
    let options = TransportOptions {
        ca_file: pki.file("ca.pem"),
        ..Default::default()
    };
    let mut c = Connection::open(&url, &options).await.unwrap();
    exchange(&mut c).await;
    c.close().await;
    assert!(matches!(timeout(T, peer).await.unwrap().unwrap(), Message::Binary(b) if b[0] == 0x10));
}
