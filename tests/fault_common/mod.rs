//! Helpers shared by the fault tests: an echo upstream and bounded socket reads.
#![allow(clippy::unwrap_used, dead_code)]

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

/// The bound on every wait that is expected to succeed.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A TCP echo server on 127.0.0.1:0; returns its address.
pub async fn echo_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    addr
}

/// Connects within [`PATIENCE`].
pub async fn connect(addr: SocketAddr) -> TcpStream {
    let stream = timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("connect timed out")
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Reads exactly `n` bytes within [`PATIENCE`].
pub async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    timeout(PATIENCE, stream.read_exact(&mut buf))
        .await
        .expect("read timed out")
        .unwrap();
    buf
}

/// Reads until EOF (or an error) within [`PATIENCE`]; returns the bytes and how it ended.
pub async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, io::Result<()>) {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("read timed out before EOF")
        {
            Ok(0) => return (data, Ok(())),
            Ok(n) => data.extend_from_slice(&buf[..n]),
            Err(err) => return (data, Err(err)),
        }
    }
}

/// Writes `data` and expects it echoed back through the proxy.
pub async fn assert_echo(stream: &mut TcpStream, data: &[u8]) {
    stream.write_all(data).await.unwrap();
    assert_eq!(read_n(stream, data.len()).await, data);
}

/// Asserts that nothing arrives for `quiet` (the link is blackholed).
pub async fn assert_silent(stream: &mut TcpStream, quiet: Duration) {
    let mut buf = [0u8; 64];
    match timeout(quiet, stream.read(&mut buf)).await {
        Err(_elapsed) => {}
        Ok(result) => panic!("expected silence, got {result:?}"),
    }
}

/// Expects the connection to be reset (RST) within [`PATIENCE`].
pub async fn assert_reset(stream: &mut TcpStream) {
    let (_, ended) = read_to_end(stream).await;
    let err = ended.expect_err("expected a reset, got EOF");
    assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
}
