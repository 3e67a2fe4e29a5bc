//! The byte pipe under a connection: TCP, TLS (rustls, ring provider), or WebSocket over
//! either, opened from a [`BrokerUrl`] and read in a cancel-safe way.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::url::BrokerUrl;
use super::{ClientError, TransportOptions};

/// Default time allowed for TCP connect, TLS and WebSocket handshakes.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A TCP stream, maybe wrapped in TLS.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    fn tcp(&self) -> &TcpStream {
        match self {
            Stream::Tcp(s) => s,
            Stream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open transport.
pub(crate) enum Transport {
    /// TCP or TLS: MQTT bytes directly on the stream.
    Stream(Stream),
    /// WebSocket: MQTT bytes in binary messages.
    Ws(Box<WebSocketStream<Stream>>),
}

impl Transport {
    /// Connect to `url` within the options' connect timeout.
    pub(crate) async fn open(
        url: &BrokerUrl,
        options: &TransportOptions,
    ) -> Result<Transport, ClientError> {
        let limit = options.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        match tokio::time::timeout(limit, Self::open_inner(url, options)).await {
            Ok(result) => result,
            Err(_) => Err(ClientError::Timeout(limit, format!("connection to {url}"))),
        }
    }

    async fn open_inner(
        url: &BrokerUrl,
        options: &TransportOptions,
    ) -> Result<Transport, ClientError> {
        let addr = url.socket_addr();
        let tcp = TcpStream::connect(&addr)
            .await
            .map_err(|source| ClientError::Connect {
                addr: addr.clone(),
                source,
            })?;
        // MQTT packets are small and latency matters more than throughput here.
        let _ = tcp.set_nodelay(true);
        let stream = if url.scheme().is_tls() {
            let config = tls_config(options)?;
            let name = ServerName::try_from(url.host().to_string())
                .map_err(|e| ClientError::Tls(format!("invalid server name: {e}")))?;
            let tls = TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| ClientError::Tls(format!("handshake with {addr} failed: {e}")))?;
            Stream::Tls(Box::new(tls))
        } else {
            Stream::Tcp(tcp)
        };
        if !url.scheme().is_websocket() {
            return Ok(Transport::Stream(stream));
        }
        let mut request = url
            .websocket_url()
            .into_client_request()
            .map_err(|e| ClientError::WebSocket(e.to_string()))?;
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static("mqtt"));
        let (ws, _response) = tokio_tungstenite::client_async(request, stream)
            .await
            .map_err(|e| ClientError::WebSocket(format!("handshake with {addr} failed: {e}")))?;
        Ok(Transport::Ws(Box::new(ws)))
    }

    /// Append received bytes to `buf`; `Ok(0)` means the peer closed. Cancel safe.
    pub(crate) async fn read_into(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Transport::Stream(s) => {
                buf.reserve(4096);
                s.read_buf(buf).await
            }
            Transport::Ws(ws) => loop {
                match ws.next().await {
                    None => return Ok(0),
                    Some(Ok(Message::Binary(data))) => {
                        if data.is_empty() {
                            continue;
                        }
                        buf.extend_from_slice(&data);
                        return Ok(data.len());
                    }
                    Some(Ok(Message::Close(_))) => return Ok(0),
                    Some(Ok(Message::Text(_))) => {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            "broker sent a WebSocket text frame (MQTT uses binary frames)",
                        ))
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(WsError::ConnectionClosed | WsError::AlreadyClosed)) => return Ok(0),
                    Some(Err(WsError::Io(e))) => return Err(e),
                    Some(Err(e)) => return Err(io::Error::other(e)),
                }
            },
        }
    }

    /// Write all of `bytes` and flush.
    pub(crate) async fn write_all(&mut self, bytes: Bytes) -> io::Result<()> {
        match self {
            Transport::Stream(s) => {
                s.write_all(&bytes).await?;
                s.flush().await
            }
            Transport::Ws(ws) => ws.send(Message::Binary(bytes)).await.map_err(ws_io),
        }
    }

    /// Half-close: TCP FIN (after TLS close_notify) or a WebSocket Close frame.
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Transport::Stream(s) => s.shutdown().await,
            Transport::Ws(ws) => SinkExt::close(ws.as_mut()).await.map_err(ws_io),
        }
    }

    /// Drop the connection with a TCP reset (SO_LINGER 0), without any goodbye.
    pub(crate) fn abort(self) {
        let tcp = match &self {
            Transport::Stream(s) => s.tcp(),
            Transport::Ws(ws) => ws.get_ref().tcp(),
        };
        // If SO_LINGER cannot be set the drop below still closes the socket (with a FIN).
        let _ = tcp.set_zero_linger();
        drop(self);
    }
}

fn ws_io(e: WsError) -> io::Error {
    match e {
        WsError::Io(e) => e,
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            io::Error::new(io::ErrorKind::BrokenPipe, "WebSocket closed")
        }
        other => io::Error::other(other),
    }
}

/// The rustls configuration for the options: webpki roots or a CA file, optional client
/// certificate, or no verification at all for test brokers.
fn tls_config(options: &TransportOptions) -> Result<ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::Tls(e.to_string()))?;
    let builder = if options.insecure_tls {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    } else {
        let mut roots = RootCertStore::empty();
        match &options.ca_file {
            Some(path) => {
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| ClientError::Tls(format!("CA file {}: {e}", path.display())))?;
                for cert in certs {
                    let cert = cert.map_err(|e| {
                        ClientError::Tls(format!("CA file {}: {e}", path.display()))
                    })?;
                    roots.add(cert).map_err(|e| {
                        ClientError::Tls(format!("CA file {}: {e}", path.display()))
                    })?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots)
    };
    match (&options.client_cert, &options.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let certs = CertificateDer::pem_file_iter(cert_path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    ClientError::Tls(format!("certificate {}: {e}", cert_path.display()))
                })?;
            let key = PrivateKeyDer::from_pem_file(key_path)
                .map_err(|e| ClientError::Tls(format!("key {}: {e}", key_path.display())))?;
            builder
                .with_client_auth_cert(certs, key)
                .map_err(|e| ClientError::Tls(e.to_string()))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        _ => Err(ClientError::Tls(
            "a client certificate needs both a certificate and a key file".into(),
        )),
    }
}

/// Accepts any server certificate (the `insecure_tls` option), still checking signatures
/// with the provider so the handshake itself is real.
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
