//! `sub`: subscribe and print the messages.

use std::io::{self, Write};
use std::time::{Duration, Instant, SystemTime};

use reference_broker::client::{ClientError, Controls};
use reference_broker::codec::{
    ProtocolVersion, QoS, ReasonCode, RetainHandling, Subscription, SubscriptionOptions,
};

use super::{format, message_json, parse_qos, ConnArgs, Encoding, PubSubError};

/// `mqtt-conformance sub`: subscribe and print messages.
#[derive(Debug, Clone, clap::Args)]
#[command(disable_help_flag = true)]
pub struct SubArgs {
    /// Connection options.
    #[command(flatten)]
    pub conn: ConnArgs,
    /// Topic filter, repeatable.
    #[arg(short = 't', long = "topic", required = true)]
    pub filters: Vec<String>,
    /// Do not print messages whose topic matches this filter, repeatable.
    #[arg(short = 'T', long = "filter-out")]
    pub filter_out: Vec<String>,
    /// Maximum QoS of the subscriptions.
    #[arg(short = 'q', long, default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Print the topic before the payload.
    #[arg(short = 'v', long)]
    pub verbose: bool,
    /// Print one JSON object per message, with its flags and properties.
    #[arg(long, conflicts_with_all = ["verbose", "format_string"])]
    pub json: bool,
    /// A mosquitto_sub format string: %t topic, %p payload, %q QoS, %r retain, %m id, %l
    /// length, %x hex, %j JSON, %I/%U time, %P user properties... (see docs/pubsub.md).
    #[arg(short = 'F', long = "format-string", value_name = "FORMAT")]
    pub format_string: Option<String>,
    /// Payload encoding: text, hex or base64 (for binary payloads).
    #[arg(long = "format", value_enum, default_value = "text")]
    pub encoding: Encoding,
    /// Do not add a newline after each message.
    #[arg(short = 'N')]
    pub no_newline: bool,
    /// Do not print stale (retained) messages.
    #[arg(short = 'R', long = "no-retained")]
    pub no_retained: bool,
    /// Exit once the subscriptions are acknowledged (sets up a persistent session with -c).
    #[arg(short = 'E')]
    pub exit_after_subscribe: bool,
    /// Exit after this many messages.
    #[arg(short = 'C', long = "count")]
    pub count: Option<u64>,
    /// Give up after this many seconds, with exit code 27 (as mosquitto_sub).
    #[arg(short = 'W', long = "wait")]
    pub wait_secs: Option<u64>,
    /// Do not receive our own publications (MQTT 5 No Local).
    #[arg(long = "no-local")]
    pub no_local: bool,
    /// Retain handling 0, 1 or 2 (MQTT 5).
    #[arg(long = "retain-handling", default_value = "0", value_parser = parse_retain_handling)]
    pub retain_handling: RetainHandling,
    /// Keep the retain flag as published (MQTT 5 Retain As Published).
    #[arg(long = "retain-as-published")]
    pub retain_as_published: bool,
}

/// A SUBACK failure named for `version` (3.1.1 has one: 0x80 Failure).
fn suback_code(code: ReasonCode, version: ProtocolVersion) -> String {
    if version.is_v5() {
        code.to_string()
    } else {
        format!("0x{:02X} (Failure)", code.0)
    }
}

/// Subscribe and print messages to stdout until `-C` messages, `-W` seconds, or the end.
pub async fn run_sub(args: SubArgs) -> Result<(), PubSubError> {
    run_sub_to(args, &mut io::stdout().lock()).await
}

/// [`run_sub`] writing to `out`, one line per message, flushed as it arrives.
pub async fn run_sub_to(args: SubArgs, out: &mut impl Write) -> Result<(), PubSubError> {
    run_sub_ready(args, out, || {}).await
}

/// [`run_sub_to`] calling `ready` once the SUBACK has arrived (tests and scripts that must
/// not publish before the subscription exists).
pub async fn run_sub_ready(
    args: SubArgs,
    out: &mut impl Write,
    ready: impl FnOnce(),
) -> Result<(), PubSubError> {
    let started = Instant::now();
    let packet_props = args.conn.packet_properties()?;
    let mut s = args
        .conn
        .connect("sub", Controls::default(), &packet_props)
        .await?;
    let subscriptions = args
        .filters
        .iter()
        .map(|f| Subscription {
            filter: f.clone(),
            options: SubscriptionOptions {
                qos: args.qos,
                no_local: args.no_local,
                retain_as_published: args.retain_as_published,
                retain_handling: args.retain_handling,
            },
        })
        .collect();
    let ack = s
        .client
        .subscribe_many(subscriptions, packet_props.subscribe.clone())
        .await;
    s.show_trace();
    let ack = ack?;
    for (filter, code) in args.filters.iter().zip(&ack.reason_codes) {
        // 3.1.1 SUBACK failure is 0x80 too; granted codes are 0..=2 in both versions.
        if !code.is_success() {
            return Err(PubSubError::SubscribeRefused {
                filter: filter.clone(),
                code: suback_code(*code, s.version),
            });
        }
    }
    ready();
    if args.exit_after_subscribe {
        return s.disconnect(packet_props.disconnect).await;
    }
    // -W counts from the connection, as mosquitto_sub's does.
    let deadline = args.wait_secs.map(|w| started + Duration::from_secs(w));
    let mut received = 0u64;
    loop {
        if args.count.is_some_and(|c| received >= c) {
            break;
        }
        // Wake up at least once an hour when no -W is given; keep alive runs meanwhile.
        let wait = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if wait.is_zero() {
            let _ = s.disconnect(packet_props.disconnect.clone()).await;
            return Err(PubSubError::TimedOut(args.wait_secs.unwrap_or(0)));
        }
        let next = s.client.recv_message(wait).await;
        s.show_trace();
        match next {
            Ok(m) => {
                if (args.no_retained && m.retain)
                    || args
                        .filter_out
                        .iter()
                        .any(|f| reference_broker::topic::matches(f, &m.topic))
                {
                    continue;
                }
                received += 1;
                let mut bytes = if args.json {
                    message_json(&m).to_string().into_bytes()
                } else if let Some(f) = &args.format_string {
                    format::template(f, &m, args.encoding, SystemTime::now())
                } else {
                    format::line(&m, args.verbose, args.encoding)
                };
                if !args.no_newline {
                    bytes.push(b'\n');
                }
                out.write_all(&bytes)?;
                out.flush()?;
            }
            Err(ClientError::Timeout(..)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    s.disconnect(packet_props.disconnect).await
}

/// Retain Handling on the command line: `0`, `1` or `2`.
fn parse_retain_handling(s: &str) -> Result<RetainHandling, String> {
    match s {
        "0" => Ok(RetainHandling::SendAtSubscribe),
        "1" => Ok(RetainHandling::SendIfNew),
        "2" => Ok(RetainHandling::DoNotSend),
        _ => Err(format!("{s:?} is not a Retain Handling: 0, 1 or 2")),
    }
}
