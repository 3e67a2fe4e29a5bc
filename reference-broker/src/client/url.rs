//! Broker URLs: `mqtt://`, `tcp://`, `mqtts://`, `ws://`, `wss://` or a bare `host:port`,
//! with optional `user:password@`, which are never printed.

use std::fmt;
use std::str::FromStr;

use percent_encoding::percent_decode_str;

use super::ClientError;

/// The transport a URL asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP (`mqtt://`, `tcp://`, bare `host:port`).
    Tcp,
    /// TLS over TCP (`mqtts://`, `ssl://`, `tls://`).
    Tls,
    /// WebSocket (`ws://`).
    Ws,
    /// WebSocket over TLS (`wss://`).
    Wss,
}

impl Scheme {
    /// The port used when the URL names none.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Tcp => 1883,
            Scheme::Tls => 8883,
            Scheme::Ws => 80,
            Scheme::Wss => 443,
        }
    }

    /// True for the schemes that run over TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Scheme::Tls | Scheme::Wss)
    }

    /// True for the WebSocket schemes.
    pub fn is_websocket(self) -> bool {
        matches!(self, Scheme::Ws | Scheme::Wss)
    }

    fn as_str(self) -> &'static str {
        match self {
            Scheme::Tcp => "mqtt",
            Scheme::Tls => "mqtts",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        }
    }
}

/// A parsed broker URL. `Display` and `Debug` redact the credentials.
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    scheme: Scheme,
    host: String,
    port: u16,
    path: String,
    username: Option<String>,
    password: Option<String>,
}

/// Parse a broker URL (see [`BrokerUrl`]); a bare `host` or `host:port` means `mqtt://`.
pub fn parse_url(url: &str) -> Result<BrokerUrl, ClientError> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: redact_input(url),
        reason: reason.to_string(),
    };
    let text = url.trim();
    if text.is_empty() {
        return Err(invalid("empty URL"));
    }
    let with_scheme = if text.contains("://") {
        text.to_string()
    } else {
        format!("mqtt://{text}")
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|e| invalid(&e.to_string()))?;
    let scheme = match parsed.scheme() {
        "mqtt" | "tcp" => Scheme::Tcp,
        "mqtts" | "ssl" | "tls" => Scheme::Tls,
        "ws" => Scheme::Ws,
        "wss" => Scheme::Wss,
        other => return Err(invalid(&format!("unsupported scheme {other:?}"))),
    };
    let host = match parsed.host() {
        Some(url::Host::Domain(d)) if !d.is_empty() => d.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => return Err(invalid("no host")),
    };
    let port = parsed.port().unwrap_or_else(|| scheme.default_port());
    let path = match parsed.path() {
        "" | "/" if scheme.is_websocket() => "/mqtt".to_string(),
        "" | "/" => String::new(),
        p => p.to_string(),
    };
    let decode = |s: &str| {
        percent_decode_str(s)
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| invalid("credentials are not UTF-8 once percent-decoded"))
    };
    let username = match parsed.username() {
        "" => None,
        u => Some(decode(u)?),
    };
    let password = match parsed.password() {
        None => None,
        Some(p) => Some(decode(p)?),
    };
    Ok(BrokerUrl {
        scheme,
        host,
        port,
        path,
        username,
        password,
    })
}

/// The user input with anything before an `@` hidden, for error messages.
fn redact_input(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}<credentials>{}", &url[..s + 3], &url[at..]),
        (None, Some(at)) => format!("<credentials>{}", &url[at..]),
        _ => url.to_string(),
    }
}

impl BrokerUrl {
    /// The transport.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// Host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Port (the scheme's default when the URL names none).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// WebSocket path (`/mqtt` by default); empty for TCP and TLS.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// User name from the URL, percent-decoded.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// Password from the URL, percent-decoded.
    pub fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// `host:port` for connecting a socket (IPv6 in brackets).
    pub fn socket_addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The WebSocket URL to request, without credentials.
    pub fn websocket_url(&self) -> String {
        let scheme = if self.scheme == Scheme::Wss {
            "wss"
        } else {
            "ws"
        };
        format!("{scheme}://{}{}", self.socket_addr(), self.path)
    }

    /// The same URL without credentials.
    pub fn without_credentials(&self) -> BrokerUrl {
        BrokerUrl {
            username: None,
            password: None,
            ..self.clone()
        }
    }
}

impl FromStr for BrokerUrl {
    type Err = ClientError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_url(s)
    }
}

impl fmt::Display for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://", self.scheme.as_str())?;
        if self.username.is_some() || self.password.is_some() {
            f.write_str("<credentials>@")?;
        }
        write!(f, "{}{}", self.socket_addr(), self.path)
    }
}

impl fmt::Debug for BrokerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BrokerUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn schemes_and_default_ports() {
        let u = parse_url("mqtt://broker.example:1884").unwrap();
        assert_eq!(
            (u.scheme(), u.host(), u.port()),
            (Scheme::Tcp, "broker.example", 1884)
        );
        assert_eq!(parse_url("tcp://h").unwrap().port(), 1883);
        assert_eq!(parse_url("h").unwrap().port(), 1883);
        let bare = parse_url("127.0.0.1:9000").unwrap();
        assert_eq!(
            (bare.scheme(), bare.host(), bare.port()),
            (Scheme::Tcp, "127.0.0.1", 9000)
        );
        let tls = parse_url("mqtts://h").unwrap();
        assert_eq!((tls.scheme(), tls.port()), (Scheme::Tls, 8883));
        let ws = parse_url("ws://h:8080").unwrap();
        assert_eq!((ws.scheme(), ws.path()), (Scheme::Ws, "/mqtt"));
        assert_eq!(ws.websocket_url(), "ws://h:8080/mqtt");
        let wss = parse_url("wss://h/custom").unwrap();
        assert_eq!(
            (wss.scheme(), wss.port(), wss.path()),
            (Scheme::Wss, 443, "/custom")
        );
        let v6 = parse_url("mqtt://[::1]:1883").unwrap();
        assert_eq!(
            (v6.host(), v6.socket_addr().as_str()),
            ("::1", "[::1]:1883")
        );
    }

    #[test]
    fn credentials_parsed_and_redacted() {
        let u = parse_url("mqtt://alice:s%40cret@h:1883").unwrap();
        assert_eq!(u.username(), Some("alice"));
        assert_eq!(u.password(), Some("s@cret"));
        let shown = format!("{u} {u:?}");
        assert!(!shown.contains("alice"), "{shown}");
        assert!(!shown.contains("cret"), "{shown}");
        assert_eq!(u.to_string(), "mqtt://<credentials>@h:1883");
    }

    #[test]
    fn invalid_urls() {
        assert!(matches!(parse_url(""), Err(ClientError::InvalidUrl { .. })));
        assert!(matches!(
            parse_url("http://h"),
            Err(ClientError::InvalidUrl { .. })
        ));
        assert!(matches!(
            parse_url("mqtt://h:99999"),
            Err(ClientError::InvalidUrl { .. })
        ));
        let err = parse_url("http://bob:pw@h").unwrap_err().to_string();
        assert!(!err.contains("pw"), "{err}");
    }
}
