//! Topic rules shared by broker, client and harness: validation, matching, the subscription tree.

pub mod matcher;
pub mod tree;

pub use matcher::{matches, SharedFilter};
pub use tree::SubscriptionTree;
