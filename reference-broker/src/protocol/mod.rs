//! Pure, sans-IO protocol state machines: bytes never enter here, only decoded packets, the
//! current time and commands; outputs are packets to send, events for the broker and timers.

pub mod defects;
pub mod message;
pub mod server;
pub mod session;
pub mod variants;

pub use defects::{Defect, Defects};
pub use message::{Delivery, Message};
pub use server::{Accept, CloseKind, Event, InboundPublish, ServerConnection, ServerLimits};
pub use session::Session;
pub use variants::Variants;
