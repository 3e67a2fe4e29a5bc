//! The scenario format: the serde model of a YAML case, its values and properties, and loading
//! files with precise errors.

pub mod expr;
mod faults;
pub mod hex;
mod load;
pub mod matrix;
mod model;
mod properties;
pub mod schema;
mod values;
pub mod yaml_error;

pub use faults::*;
pub use load::{feature_of, load_file, parse_str, LoadError, LoadedCase};
pub use model::*;
pub use properties::{PropName, PropertyMismatch, PropsSpec};
pub use values::{Code, Dur, Feature, PacketKind, Version};
