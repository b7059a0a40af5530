//! Who the caller is: identities read from verified client certificates
//! (`countersign_certs::identity`, shared with the CLI). The TLS files and the client set-up
//! are the API's: `countersign_api::tls`.

pub use countersign_certs::identity;
