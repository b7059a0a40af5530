//! Events: from the kernel's ring buffer to the JSON Lines event log.

pub mod decode;
pub mod log;
pub mod reader;
pub mod record;
mod tamper;

pub use record::Record;
