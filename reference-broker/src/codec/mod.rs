//! The MQTT wire codec for 3.1, 3.1.1 and 5.0: bytes <-> [`Packet`], pure functions, no I/O.
//!
//! - [`Decoder`] decodes a stream incrementally: an incomplete frame returns `Ok(None)`, a
//!   frame larger than the maximum packet size is refused before its body is buffered, and
//!   every malformed-packet rule of the specifications is a typed [`DecodeError`] that names
//!   the MQTT 5 reason code to send and the normative statement it enforces.
//! - [`encode`] writes a valid packet; [`raw`] writes deliberately invalid ones for tests.
//!
//! # Versions
//! A [`Decoder`] made with [`Decoder::new`] does not know the version: it decodes a CONNECT
//! under the CONNECT's own protocol level (and then keeps that version), anything else
//! under 3.1.1 rules. [`encode`] writes a CONNECT under its own `protocol`, every other
//! packet under the version passed in. MQTT 3.1 (`MQIsdp`, level 3) follows 3.1.1 rules,
//! except that SUBSCRIBE, UNSUBSCRIBE and PUBREL may also carry the DUP bit.
//!
//! # What the codec checks, and what it leaves to the protocol layer
//! The decoder rejects everything that makes a single packet malformed or a protocol error
//! by itself: fixed-header flags, remaining length (at most four bytes, minimal), packet
//! size, truncated or trailing bytes, UTF-8 (surrogates, U+0000), topic names and filters
//! (wildcards, `$share/` syntax), zero packet identifiers, empty SUBSCRIBE / UNSUBSCRIBE /
//! SUBACK / UNSUBACK, subscription option bits, CONNECT flags and protocol name/level,
//! unknown, misplaced and duplicate properties, property value ranges, and reason codes
//! outside their packet's table. Checks that need connection state stay in `protocol/`:
//! Topic Alias 0 or above the maximum (0x94), packet identifiers in use, Receive Maximum,
//! client identifier rules, the Payload Format Indicator against the payload, Maximum QoS
//! and Retain Available, authentication method consistency.
//!
//! # Encoding
//! Properties are written in identifier order (user properties and subscription
//! identifiers in list order). PUBACK, PUBREC, PUBREL, PUBCOMP, DISCONNECT and AUTH use
//! their short forms when the reason is Success and there are no properties.

mod connack;
mod connect;
mod decode;
mod encode;
mod error;
pub mod packet;
mod primitives;
pub mod properties;
mod property_block;
mod property_box;
mod publish;
mod pubresp;
pub mod raw;
pub mod reason;
mod reason_body;
mod scan;
mod suback;
mod subscribe;
#[cfg(test)]
mod tests;
mod unsuback;
mod unsubscribe;

pub use compact_str::CompactString;
pub use decode::Decoder;
pub use encode::{encode, encoded_len, EncodeError};
pub use error::DecodeError;
pub use packet::*;
pub use properties::{Properties, PropertyContext, PropertyId, PropertyType};
pub use property_box::PropertyBox;
pub use reason::ReasonCode;

/// The largest remaining length a fixed header can express (four bytes of variable byte
/// integer): 268,435,455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
