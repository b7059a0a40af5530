//! Who the caller is: identities read from verified client certificates. (The TLS files and
//! the client set-up are the API's: `countersign_api::tls`.)

pub mod identity;
