//! Topic rules shared by broker, client and harness: name and filter validation, matching, the
//! subscription tree.

pub mod matcher;
pub mod tree;
pub mod validate;

pub use matcher::{matches, SharedFilter};
pub use tree::{too_deep, SubscriptionTree, MAX_TOPIC_LEVELS};
pub use validate::*;
