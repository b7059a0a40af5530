//! countersign-agent: loads the kernel programs, compiles the policy into their maps, reads
//! their events, and serves the local socket.

pub mod agent_api;
pub mod cgroup;
pub mod cli;
pub mod daemon;
pub mod ebpf;
pub mod events;
pub mod grants;
pub mod kernel;
pub mod launch;
pub mod maps;
pub mod socket;
