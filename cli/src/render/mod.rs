//! Everything printed for people: tables, times, quoting, and the text of an operation.

pub mod operation;
pub mod quote;
pub mod table;
pub mod time;

pub use quote::clean;
pub use table::Table;
