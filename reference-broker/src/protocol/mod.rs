//! Pure, sans-IO protocol state machines: bytes never enter here, only decoded packets, the
//! current time and commands; outputs are packets to send, events for the broker and timers.

pub mod ack;
pub mod alias;
pub mod client;
pub mod defects;
pub mod message;
pub mod packet_id;
pub mod server;
pub mod session;
pub mod variants;

pub use ack::{publish_ack, Acknowledged, InboundAcks};
pub use alias::{AliasError, InboundAliases, OutboundAliases};
pub use defects::{Defect, Defects};
pub use message::{Delivery, Message};
pub use packet_id::PacketIds;
pub use server::{Accept, CloseKind, Event, InboundPublish, ServerConnection, ServerLimits};
pub use session::Session;
pub use variants::Variants;
