//! The gRPC API (`proto/countersign.proto`, package `countersign.v1`) and its services.

pub mod agent;

/// Messages, clients and servers generated from `proto/countersign.proto` at build time.
#[allow(
    missing_docs,
    clippy::all,
    clippy::pedantic,
    clippy::unwrap_used,
    reason = "generated code"
)]
pub mod pb {
    tonic::include_proto!("countersign.v1");
}
