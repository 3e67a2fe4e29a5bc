//! The one error type of the fault layer.

use std::io;

/// What can go wrong while creating proxies or applying faults.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// No proxy with this name exists.
    #[error("proxy {0:?} not found")]
    ProxyNotFound(String),
    /// A proxy with this name already exists.
    #[error("proxy {0:?} already exists")]
    ProxyExists(String),
    /// No toxic with this name exists on the proxy.
    #[error("toxic {toxic:?} not found on proxy {proxy:?}")]
    ToxicNotFound {
        /// The proxy that was searched.
        proxy: String,
        /// The toxic that was not found.
        toxic: String,
    },
    /// A toxic with this name already exists on the proxy.
    #[error("toxic {toxic:?} already exists on proxy {proxy:?}")]
    ToxicExists {
        /// The proxy that holds the toxic.
        proxy: String,
        /// The duplicate toxic name.
        toxic: String,
    },
    /// A request was malformed (unknown toxic type, bad attribute, missing field).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// A socket could not be bound or connected.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying I/O error.
        #[source]
        source: io::Error,
    },
    /// The Toxiproxy server could not be reached or answered something unexpected.
    #[error("toxiproxy at {server}: {message}")]
    Toxiproxy {
        /// The server address.
        server: String,
        /// What went wrong.
        message: String,
    },
    /// The Toxiproxy server accepted a request but its state shows the change was not made.
    #[error("toxiproxy refused the change: {0}")]
    Refused(String),
    /// The proxy engine stopped answering (its task ended).
    #[error("proxy engine of {0:?} is gone")]
    EngineGone(String),
}

impl FaultError {
    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Self::Io {
            context: context.into(),
            source,
        }
    }
}
