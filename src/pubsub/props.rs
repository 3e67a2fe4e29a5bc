//! `-D COMMAND NAME VALUE`: MQTT 5 properties on the command line, named as mosquitto_pub and
//! mosquitto_sub name them (`-D connect session-expiry-interval 3600`,
//! `-D publish user-property unit C`).

use bytes::Bytes;
use reference_broker::codec::Properties;

/// The properties given with `-D`, per packet.
#[derive(Debug, Clone, Default)]
pub struct PacketProperties {
    /// CONNECT.
    pub connect: Properties,
    /// PUBLISH.
    pub publish: Properties,
    /// SUBSCRIBE.
    pub subscribe: Properties,
    /// UNSUBSCRIBE.
    pub unsubscribe: Properties,
    /// DISCONNECT.
    pub disconnect: Properties,
    /// The will message.
    pub will: Properties,
}

/// Which properties each packet takes (the MQTT 5 property tables of chapter 3).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "connect",
        &[
            "session-expiry-interval",
            "receive-maximum",
            "topic-alias-maximum",
            "maximum-packet-size",
            "request-problem-information",
            "request-response-information",
            "user-property",
            "authentication-method",
            "authentication-data",
        ],
    ),
    (
        "publish",
        &[
            "payload-format-indicator",
            "message-expiry-interval",
            "content-type",
            "response-topic",
            "correlation-data",
            "topic-alias",
            "user-property",
        ],
    ),
    ("subscribe", &["subscription-identifier", "user-property"]),
    ("unsubscribe", &["user-property"]),
    (
        "disconnect",
        &["session-expiry-interval", "reason-string", "user-property"],
    ),
    (
        "will",
        &[
            "will-delay-interval",
            "payload-format-indicator",
            "message-expiry-interval",
            "content-type",
            "response-topic",
            "correlation-data",
            "user-property",
        ],
    ),
];

/// Parse the values of every `-D`, in order: `COMMAND NAME VALUE`, or `COMMAND user-property
/// KEY VALUE` (the one property with two values).
pub fn parse(flat: &[String]) -> Result<PacketProperties, String> {
    let mut out = PacketProperties::default();
    let mut rest = flat;
    while !rest.is_empty() {
        let arity = if rest.get(1).is_some_and(|n| n == "user-property") {
            4
        } else {
            3
        };
        if rest.len() < arity {
            return Err(format!("-D {}: needs COMMAND NAME VALUE", rest.join(" ")));
        }
        let (item, tail) = rest.split_at(arity);
        rest = tail;
        let [command, name, values @ ..] = item else {
            return Err("-D needs COMMAND NAME VALUE".into());
        };
        let Some((_, names)) = ALLOWED.iter().find(|(c, _)| c == command) else {
            let commands: Vec<&str> = ALLOWED.iter().map(|(c, _)| *c).collect();
            return Err(format!(
                "-D {command}: not a packet (one of {})",
                commands.join(", ")
            ));
        };
        if !names.contains(&name.as_str()) {
            return Err(format!(
                "-D {command} {name}: not a {command} property (one of {})",
                names.join(", ")
            ));
        }
        let target = match command.as_str() {
            "connect" => &mut out.connect,
            "publish" => &mut out.publish,
            "subscribe" => &mut out.subscribe,
            "unsubscribe" => &mut out.unsubscribe,
            "disconnect" => &mut out.disconnect,
            _ => &mut out.will,
        };
        set(target, name, values).map_err(|e| format!("-D {command} {name}: {e}"))?;
    }
    Ok(out)
}

/// Set property `name` of `p` from its command-line value(s).
fn set(p: &mut Properties, name: &str, values: &[String]) -> Result<(), String> {
    let one = || match values {
        [v] => Ok(v.as_str()),
        _ => Err(format!("takes one value, got {}", values.len())),
    };
    fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
        v.parse()
            .map_err(|_| format!("{v:?} is not a number in range"))
    }
    match name {
        "user-property" => match values {
            [k, v] => p
                .user_properties
                .push((k.as_str().into(), v.as_str().into())),
            _ => return Err("takes a name and a value".into()),
        },
        "payload-format-indicator" => p.payload_format_indicator = Some(num(one()?)?),
        "message-expiry-interval" => p.message_expiry_interval = Some(num(one()?)?),
        "content-type" => p.content_type = Some(one()?.into()),
        "response-topic" => p.response_topic = Some(one()?.into()),
        "correlation-data" => p.correlation_data = Some(Bytes::from(one()?.to_string())),
        "topic-alias" => p.topic_alias = Some(num(one()?)?),
        "subscription-identifier" => p.subscription_identifiers.push(num(one()?)?),
        "session-expiry-interval" => p.session_expiry_interval = Some(num(one()?)?),
        "receive-maximum" => p.receive_maximum = Some(num(one()?)?),
        "topic-alias-maximum" => p.topic_alias_maximum = Some(num(one()?)?),
        "maximum-packet-size" => p.maximum_packet_size = Some(num(one()?)?),
        "request-problem-information" => p.request_problem_information = Some(num(one()?)?),
        "request-response-information" => p.request_response_information = Some(num(one()?)?),
        "authentication-method" => p.authentication_method = Some(one()?.into()),
        "authentication-data" => p.authentication_data = Some(Bytes::from(one()?.to_string())),
        "will-delay-interval" => p.will_delay_interval = Some(num(one()?)?),
        "reason-string" => p.reason_string = Some(one()?.into()),
        other => return Err(format!("unknown property {other:?}")),
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn d(items: &[&[&str]]) -> Result<PacketProperties, String> {
        let flat: Vec<String> = items
            .iter()
            .flat_map(|i| i.iter().map(ToString::to_string))
            .collect();
        parse(&flat)
    }

    #[test]
    fn properties_go_to_their_packet() {
        let p = d(&[
            &["connect", "session-expiry-interval", "3600"],
            &["publish", "user-property", "unit", "C"],
            &["publish", "content-type", "text/plain"],
            &["will", "will-delay-interval", "5"],
        ])
        .unwrap();
        assert_eq!(p.connect.session_expiry_interval, Some(3600));
        assert_eq!(p.publish.user_properties.len(), 1);
        assert_eq!(p.publish.content_type.as_deref(), Some("text/plain"));
        assert_eq!(p.will.will_delay_interval, Some(5));
    }

    #[test]
    fn wrong_packets_names_and_values_are_named() {
        let e = d(&[&["publish", "session-expiry-interval", "1"]]).unwrap_err();
        assert!(e.contains("not a publish property"), "{e}");
        let e = d(&[&["pub", "content-type", "x"]]).unwrap_err();
        assert!(e.contains("not a packet"), "{e}");
        let e = d(&[&["connect", "receive-maximum", "70000"]]).unwrap_err();
        assert!(e.contains("not a number in range"), "{e}");
        let e = d(&[&["publish", "user-property", "k"]]).unwrap_err();
        assert!(e.contains("needs COMMAND NAME VALUE"), "{e}");
    }
}
