//! The Countersign control plane (next milestone): the gRPC server that brokers approvals
//! (Slack, Teams, CLI, API), turns them into grants on the right host, and keeps the audit
//! trail. The host side it will drive already exists: grants are installed through the
//! daemon's `grants` module, and every decision is an event record (`agent::events::Record`).

pub mod audit;
pub mod certs;
pub mod rpc;
pub mod tls;
