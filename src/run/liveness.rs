//! Is the broker still there? A bounded TCP connect to its address, asked when a case fails,
//! so that a broker that went away mid-run is reported once instead of as a flood of failures.

use std::time::Duration;

use reference_broker::client::parse_url;

/// How long a liveness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the broker at `url` cannot be reached now, or `None` when it accepts TCP connections.
/// A URL that does not parse is not a liveness question: it answers `None`.
pub async fn gone(url: &str) -> Option<String> {
    let addr = parse_url(url).ok()?.socket_addr();
    match tokio::time::timeout(CHECK_TIMEOUT, tokio::net::TcpStream::connect(&addr)).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("connecting to {addr}: {e}")),
        Err(_) => Some(format!(
            "connecting to {addr}: no answer within {CHECK_TIMEOUT:?}"
        )),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_there_and_a_closed_one_is_gone() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        assert_eq!(gone(&format!("mqtt://{addr}")).await, None);
        drop(listener);
        let why = gone(&format!("mqtt://{addr}")).await.unwrap();
        assert!(why.contains(&addr.to_string()), "{why}");
    }
}
