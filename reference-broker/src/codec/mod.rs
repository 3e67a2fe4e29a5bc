//! The MQTT wire codec for 3.1, 3.1.1 and 5.0: bytes <-> [`Packet`], pure functions, no I/O.
//!
//! - [`Decoder`] decodes a stream incrementally: an incomplete frame returns `Ok(None)`, a
//!   frame larger than the maximum packet size is refused before its body is buffered, and
//!   every malformed-packet rule of the specifications is a typed [`DecodeError`] that names
//!   the MQTT 5 reason code to send and the normative statement it enforces.
//! - [`encode`] writes a valid packet; [`raw`] writes deliberately invalid ones for tests.

mod connack;
mod connect;
mod decode;
mod encode;
mod error;
pub mod packet;
mod primitives;
pub mod properties;
mod publish;
mod pubresp;
pub mod raw;
pub mod reason;
mod reason_body;
mod suback;
mod subscribe;
#[cfg(test)]
mod tests;
mod unsuback;
mod unsubscribe;

pub use decode::Decoder;
pub use encode::{encode, encoded_len, EncodeError};
pub use error::DecodeError;
pub use packet::*;
pub use properties::{Properties, PropertyContext, PropertyId, PropertyType};
pub use reason::ReasonCode;

/// The largest remaining length a fixed header can express (four bytes of variable byte
/// integer): 268,435,455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;
