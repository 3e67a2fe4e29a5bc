//! Authentication (user names with salted password hashes, the `challenge` enhanced method)
//! and authorisation (ACL rules with `%c` / `%u` substitution).

use sha2::{Digest, Sha256};

use super::config::{AclAction, AclRule, BrokerConfig};
use crate::codec::ReasonCode;
use crate::topic::matches;

/// Name of the enhanced authentication method implemented for tests.
pub const CHALLENGE_METHOD: &str = "challenge";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    hex(&h.finalize())
}

/// Hash `password` with `salt` into the `sha256$<salt>$<hex digest>` form used in the config.
pub fn hash_password(password: &[u8], salt: &str) -> String {
    format!("sha256${salt}${}", sha256_hex(&[salt.as_bytes(), password]))
}

/// Whether `password` matches a hash produced by [`hash_password`].
pub fn verify_password(password: &[u8], hash: &str) -> bool {
    let mut parts = hash.splitn(3, '$');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("sha256"), Some(salt), Some(digest)) => {
            let computed = sha256_hex(&[salt.as_bytes(), password]);
            // Constant-time comparison.
            computed.len() == digest.len()
                && computed
                    .bytes()
                    .zip(digest.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        }
        _ => false,
    }
}

/// The expected answer to a `challenge` nonce: `hex(sha256(nonce || secret))`.
pub fn challenge_response(nonce: &[u8], secret: &str) -> String {
    sha256_hex(&[nonce, secret.as_bytes()])
}

/// Check CONNECT credentials. Returns the MQTT 5 CONNACK reason code on refusal.
pub fn authenticate(
    config: &BrokerConfig,
    username: Option<&str>,
    password: Option<&[u8]>,
) -> Result<(), ReasonCode> {
    match username {
        None => {
            if config.allow_anonymous && (password.is_none() || config.users.is_empty()) {
                Ok(())
            } else {
                // [MQTT-3.1.4-2] the server may refuse an unauthenticated client.
                Err(ReasonCode::NOT_AUTHORIZED)
            }
        }
        // Anonymous access with no user configured: nobody is checked, so credentials are
        // accepted and ignored (as Mosquitto and EMQX do), not refused.
        Some(_) if config.allow_anonymous && config.users.is_empty() => Ok(()),
        Some(name) => {
            let user = config.users.iter().find(|u| u.username == name);
            match (user, password) {
                (Some(user), Some(pw)) if verify_password(pw, &user.password_hash) => Ok(()),
                (None, None) if config.allow_anonymous => Ok(()),
                _ => Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD),
            }
        }
    }
}

/// Who is asking, for ACL decisions.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// Client identifier.
    pub client_id: &'a str,
    /// User name, if any.
    pub username: Option<&'a str>,
}

fn applies(rule: &AclRule, who: Identity<'_>) -> bool {
    rule.username
        .as_deref()
        .is_none_or(|u| Some(u) == who.username)
        && rule.client_id.as_deref().is_none_or(|c| c == who.client_id)
}

fn substitute(pattern: &str, who: Identity<'_>) -> Option<String> {
    if pattern.contains("%u") && who.username.is_none() {
        return None;
    }
    Some(
        pattern
            .replace("%c", who.client_id)
            .replace("%u", who.username.unwrap_or("")),
    )
}

/// Whether every topic matched by `filter` is matched by `pattern`.
pub fn filter_covers(pattern: &str, filter: &str) -> bool {
    let mut p = pattern.split('/');
    let mut f = filter.split('/');
    loop {
        match (p.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(fl)) if fl != "#" => {}
            (Some(pl), Some(fl)) if pl == fl && pl != "+" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// The action of the first rule that applies to `who` and has a filter in `filters` for
/// which `hit` holds; `None` when no rule decides.
fn first_match<'c>(
    config: &'c BrokerConfig,
    who: Identity<'_>,
    filters: impl Fn(&'c AclRule) -> &'c [String],
    hit: impl Fn(&str) -> bool,
) -> Option<AclAction> {
    config
        .acl
        .iter()
        .filter(|r| applies(r, who))
        .find(|r| {
            filters(r)
                .iter()
                .filter_map(|p| substitute(p, who))
                .any(|p| hit(&p))
        })
        .map(|r| r.action)
}

/// Whether `who` may publish to `topic`: the first matching rule decides; with no ACL rule at
/// all everything is allowed.
pub fn may_publish(config: &BrokerConfig, who: Identity<'_>, topic: &str) -> bool {
    config.acl.is_empty()
        || first_match(config, who, |r| &r.publish, |p| matches(p, topic)) == Some(AclAction::Allow)
}

/// Whether `who` may subscribe to `filter`: the first rule with a filter covering it decides;
/// with no ACL rule at all everything is allowed.
pub fn may_subscribe(config: &BrokerConfig, who: Identity<'_>, filter: &str) -> bool {
    config.acl.is_empty()
        || first_match(config, who, |r| &r.subscribe, |p| filter_covers(p, filter))
            == Some(AclAction::Allow)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::broker::config::UserConfig;

    fn config() -> BrokerConfig {
        let mut c = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
        c.allow_anonymous = false;
        c.users.push(UserConfig {
            username: "alice".into(),
            password_hash: hash_password(b"secret", "salt1"),
        });
        c.acl.push(AclRule {
            username: Some("alice".into()),
            publish: vec!["clients/%c/#".into(), "users/%u".into()],
            subscribe: vec!["public/+/x".into()],
            ..Default::default()
        });
        c
    }

    #[test]
    fn passwords() {
        let h = hash_password(b"pw", "abc");
        assert!(verify_password(b"pw", &h));
        assert!(!verify_password(b"pw2", &h));
        assert!(!verify_password(b"pw", "plain"));
        let c = config();
        assert_eq!(authenticate(&c, Some("alice"), Some(b"secret")), Ok(()));
        assert_eq!(
            authenticate(&c, Some("alice"), Some(b"nope")),
            Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        assert_eq!(
            authenticate(&c, None, None),
            Err(ReasonCode::NOT_AUTHORIZED)
        );
    }

    #[test]
    fn acl_with_substitution() {
        let c = config();
        let alice = Identity {
            client_id: "c1",
            username: Some("alice"),
        };
        assert!(may_publish(&c, alice, "clients/c1/a"));
        assert!(!may_publish(&c, alice, "clients/c2/a"));
        assert!(may_publish(&c, alice, "users/alice"));
        assert!(may_subscribe(&c, alice, "public/a/x"));
        assert!(may_subscribe(&c, alice, "public/+/x"));
        assert!(!may_subscribe(&c, alice, "public/#"));
        let bob = Identity {
            client_id: "c1",
            username: Some("bob"),
        };
        assert!(!may_publish(&c, bob, "clients/c1/a"));
    }

    #[test]
    fn anonymous_without_users_accepts_credentials() {
        let mut c = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
        assert_eq!(authenticate(&c, Some("u"), Some(b"p")), Ok(()));
        assert_eq!(authenticate(&c, None, Some(b"p")), Ok(()));
        // Once users exist, an unknown user with a password is refused.
        c.users = config().users;
        assert_eq!(
            authenticate(&c, Some("u"), Some(b"p")),
            Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
        c.allow_anonymous = false;
        c.users.clear();
        assert_eq!(
            authenticate(&c, Some("u"), Some(b"p")),
            Err(ReasonCode::BAD_USER_NAME_OR_PASSWORD)
        );
    }

    #[test]
    fn deny_rules_first_match_wins() {
        let mut c = BrokerConfig::default_tcp("127.0.0.1:0".parse().unwrap());
        c.acl = vec![
            AclRule {
                action: AclAction::Deny,
                subscribe: vec!["test/nosubscribe".into(), "private/%c/#".into()],
                publish: vec!["test/nopublish".into()],
                ..Default::default()
            },
            AclRule {
                client_id: Some("c1".into()),
                subscribe: vec!["private/c1/#".into()],
                ..Default::default()
            },
            AclRule {
                publish: vec!["#".into()],
                subscribe: vec!["#".into()],
                ..Default::default()
            },
        ];
        let who = Identity {
            client_id: "c1",
            username: None,
        };
        assert!(!may_subscribe(&c, who, "test/nosubscribe"));
        assert!(may_subscribe(&c, who, "test/other"));
        // A wider filter only overlaps the denied one: a later rule decides.
        assert!(may_subscribe(&c, who, "test/#"));
        // The deny comes first, so the later allow for c1 never decides.
        assert!(!may_subscribe(&c, who, "private/c1/x"));
        assert!(!may_publish(&c, who, "test/nopublish"));
        assert!(may_publish(&c, who, "test/nosubscribe"));
        // Order matters: the allow for c1 first, then the deny.
        c.acl.swap(0, 1);
        assert!(may_subscribe(&c, who, "private/c1/x"));
        assert!(!may_subscribe(&c, who, "test/nosubscribe"));
        // No deciding rule: refused.
        c.acl.truncate(2);
        assert!(!may_publish(&c, who, "a"));
    }

    #[test]
    fn covers() {
        assert!(filter_covers("#", "a/+/#"));
        assert!(filter_covers("a/+", "a/b"));
        assert!(!filter_covers("a/b", "a/+"));
        assert!(!filter_covers("a/+", "a/#"));
    }
}
