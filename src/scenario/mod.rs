//! The scenario format: the serde model of a YAML case, its values and properties, and loading
//! files with precise errors.

mod assume;
mod codec_values;
pub mod expr;
mod faults;
pub mod hex;
mod load;
pub mod matrix;
mod model;
mod properties;
pub mod schema;
mod steps;
pub mod tier;
mod values;
pub mod yaml_error;

pub use assume::{Bound, ConnackAssume, Effective, Range};
pub use codec_values::{HexBytes, Qos, Retain, Text};
pub use faults::*;
pub use hex::RawTemplate;
pub use load::{feature_of, load_file, parse_str, LoadError, LoadedCase};
pub use model::*;
pub use properties::{PropName, PropertyMismatch, PropsSpec};
pub use steps::*;
pub use tier::{Level, Observation};
pub use values::{ClientPacket, Code, Dur, Feature, Kind, PacketKind, Version};
