//! The in-process reference broker on 127.0.0.1, port 0, with authentication and the
//! `challenge` enhanced authentication method enabled (anonymous clients still allowed), so
//! that cases requiring `authentication` or `enhanced_auth` run against it.

use std::net::SocketAddr;

use reference_broker::broker::auth::hash_password;
use reference_broker::broker::config::{ChallengeConfig, UserConfig};
use reference_broker::broker::{Broker, BrokerConfig};

use super::TargetError;

/// The running in-process broker.
pub struct InProcess(Broker);

/// Start the reference broker with `config` (its listeners replaced by one on 127.0.0.1,
/// port 0); returns it and the address it listens on. `secret` seeds the password of its one
/// user and the challenge secret (never printed).
pub async fn start(
    secret: &str,
    mut config: BrokerConfig,
) -> Result<(InProcess, SocketAddr), TargetError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.listeners = BrokerConfig::default_tcp(addr).listeners;
    config.users.push(UserConfig {
        username: "mqttc".into(),
        password_hash: hash_password(secret.as_bytes(), "mqttc"),
    });
    config.challenge_auth = Some(ChallengeConfig {
        secret: secret.to_string(),
    });
    let broker = Broker::bind(config)
        .await
        .map_err(|e| TargetError::Reference(e.to_string()))?;
    let bound = broker
        .tcp_addr()
        .ok_or_else(|| TargetError::Reference("the broker has no TCP listener".into()))?;
    Ok((InProcess(broker), bound))
}

/// Stop it.
pub async fn stop(broker: InProcess) {
    broker.0.shutdown().await;
}
