//! The brokers a selftest judges the suites against: the baseline, each named variant (an
//! allowed choice, as broker TOML) and each deliberate defect (a broken MUST).

use std::net::SocketAddr;

use reference_broker::broker::BrokerConfig;
use reference_broker::protocol::defects::{Defect, Defects};
use reference_broker::protocol::variants;

/// What a subject is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// The default reference broker: every case must pass on it.
    Baseline,
    /// An allowed choice: every case must pass on it.
    Variant {
        /// The statement or text that allows it.
        allowed_by: String,
    },
    /// A broken MUST: at least one case must fail on it.
    Defect {
        /// The broken statements, MQTT 3.1.1 then 5.0.
        statements: (Vec<String>, Vec<String>),
        /// What the broker does wrong.
        what: String,
        /// Whether it lies in the interaction of two features.
        interaction: bool,
    },
}

/// One broker configuration to run the suites against.
#[derive(Debug, Clone)]
pub struct Subject {
    /// Name (`variant:maximum-qos-1`, `defect:pingresp-missing`, `baseline`).
    pub name: String,
    /// Baseline, variant or defect.
    pub kind: Kind,
    /// The broker configuration (listeners are replaced by the runner).
    pub config: BrokerConfig,
}

fn base() -> BrokerConfig {
    BrokerConfig::default_tcp(SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// Why a named variant's TOML does not load.
#[derive(Debug, thiserror::Error)]
#[error("variant {name}: {source}")]
pub struct VariantError {
    name: String,
    source: reference_broker::broker::ConfigError,
}

/// Every subject: the baseline, then the variants, then the defects.
pub fn all() -> Result<Vec<Subject>, VariantError> {
    let mut out = vec![Subject {
        name: "baseline".into(),
        kind: Kind::Baseline,
        config: base(),
    }];
    for v in variants::catalogue() {
        let parsed = BrokerConfig::from_toml_str(v.toml).map_err(|source| VariantError {
            name: v.name.to_string(),
            source,
        })?;
        let mut config = base();
        config.limits = parsed.limits;
        config.variants = parsed.variants;
        out.push(Subject {
            name: format!("variant:{}", v.name),
            kind: Kind::Variant {
                allowed_by: v.allowed_by.to_string(),
            },
            config,
        });
    }
    for &d in Defect::ALL {
        let info = d.info();
        let mut config = base();
        config.defects = Defects::with(d);
        let ids = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        out.push(Subject {
            name: format!("defect:{}", info.name),
            kind: Kind::Defect {
                statements: (ids(info.statements.0), ids(info.statements.1)),
                what: info.what.to_string(),
                interaction: info.interaction,
            },
            config,
        });
    }
    Ok(out)
}
