//! Everything printed for people: tables, times, and the text of an operation (quoting is
//! `countersign_api::display`, shared with the chats).

pub mod operation;
pub mod table;
pub mod time;

pub use countersign_api::display::clean;
pub use table::Table;
