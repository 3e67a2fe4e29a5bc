//! Container presets for well-known brokers: image, default tag, ports, the configuration that
//! lets the suites run (anonymous access, subscriptions to `#` and `$SYS/#`), readiness.

use std::time::Duration;

use super::container::ContainerSpec;

/// The preset names `--container` accepts.
pub const NAMES: &[&str] = &["emqx", "mosquitto", "hivemq", "nanomq", "vernemq"];

/// Mosquitto configuration copied into the container: anonymous clients on 1883.
pub const MOSQUITTO_CONF: &str = "listener 1883 0.0.0.0\nallow_anonymous true\n";

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The spec for `NAME[:TAG]`, or None when NAME is no preset.
pub fn preset(name_tag: &str) -> Option<ContainerSpec> {
    let (name, tag) = match name_tag.split_once(':') {
        Some((n, t)) => (n, Some(t)),
        None => (name_tag, None),
    };
    let base = |image: &str, default_tag: &str| ContainerSpec {
        name: name.to_string(),
        image: image.to_string(),
        tag: tag.unwrap_or(default_tag).to_string(),
        mqtt_port: 1883,
        extra_ports: Vec::new(),
        env: Vec::new(),
        files: Vec::new(),
        cmd: Vec::new(),
        ready_log: None,
        startup_timeout: Duration::from_secs(120),
    };
    let spec = match name {
        "emqx" => ContainerSpec {
            extra_ports: vec![8083, 8883],
            // EMQX's default file authorisation (acl.conf) lets only 127.0.0.1 subscribe to
            // `#` and `$SYS/#`; clients of a container arrive from the bridge address. No
            // authorisation source and "allow" on no match let the suites subscribe anywhere.
            env: env(&[
                ("EMQX_AUTHORIZATION__SOURCES", "[]"),
                ("EMQX_AUTHORIZATION__NO_MATCH", "allow"),
                ("EMQX_AUTHORIZATION__CACHE__ENABLE", "false"),
            ]),
            ready_log: Some("is running now".into()),
            ..base("emqx/emqx", "5.8.6")
        },
        "mosquitto" => ContainerSpec {
            files: vec![(
                "/mosquitto/config/mosquitto.conf".into(),
                MOSQUITTO_CONF.as_bytes().to_vec(),
            )],
            startup_timeout: Duration::from_secs(60),
            ..base("eclipse-mosquitto", "2.0.21")
        },
        "hivemq" => ContainerSpec {
            extra_ports: vec![8000],
            ready_log: Some("Started HiveMQ in".into()),
            ..base("hivemq/hivemq-ce", "2024.9")
        },
        "nanomq" => ContainerSpec {
            extra_ports: vec![8083, 8883],
            ..base("emqx/nanomq", "0.22.10")
        },
        "vernemq" => ContainerSpec {
            extra_ports: vec![8080],
            env: env(&[
                ("DOCKER_VERNEMQ_ACCEPT_EULA", "yes"),
                ("DOCKER_VERNEMQ_ALLOW_ANONYMOUS", "on"),
            ]),
            ..base("vernemq/vernemq", "2.0.1")
        },
        _ => return None,
    };
    Some(spec)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_name_is_a_preset() {
        for n in NAMES {
            let spec = preset(n).unwrap();
            assert_eq!(&spec.name, n);
            assert_eq!(spec.mqtt_port, 1883);
        }
        assert!(preset("nosuchbroker").is_none());
    }

    #[test]
    fn emqx_allows_wildcard_subscriptions_from_the_bridge() {
        let spec = preset("emqx:5.7.2").unwrap();
        assert_eq!(spec.reference(), "emqx/emqx:5.7.2");
        assert_eq!(spec.extra_ports, vec![8083, 8883]);
        assert!(spec
            .env
            .contains(&("EMQX_AUTHORIZATION__NO_MATCH".into(), "allow".into())));
        assert!(spec
            .env
            .contains(&("EMQX_AUTHORIZATION__SOURCES".into(), "[]".into())));
        assert_eq!(spec.ready_log.as_deref(), Some("is running now"));
    }

    #[test]
    fn mosquitto_gets_an_anonymous_listener() {
        let spec = preset("mosquitto").unwrap();
        let (path, conf) = &spec.files[0];
        assert_eq!(path, "/mosquitto/config/mosquitto.conf");
        let conf = String::from_utf8(conf.clone()).unwrap();
        assert!(conf.contains("allow_anonymous true"));
        assert!(conf.contains("listener 1883"));
    }

    #[test]
    fn vernemq_accepts_the_eula() {
        let spec = preset("vernemq").unwrap();
        assert!(spec
            .env
            .contains(&("DOCKER_VERNEMQ_ACCEPT_EULA".into(), "yes".into())));
    }
}
