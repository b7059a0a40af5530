//! Generates the gRPC code from `proto/countersign.proto`.
//!
//! The descriptor set is produced by `protox` (a protobuf compiler in pure Rust) so the build
//! needs no `protoc` on the machine; tonic-prost-build then turns it into messages, clients and
//! servers.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/countersign.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .compile_fds(descriptors)?;
    Ok(())
}
