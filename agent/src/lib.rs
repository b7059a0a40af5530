//! countersign-agent: loads the kernel programs, compiles the policy into their maps, reads
//! their events, serves the local sockets, and (with `--server`) links the host to the
//! control plane.

pub mod agent_api;
pub mod approvals;
pub mod atomic_file;
pub mod cgroup;
pub mod cli;
pub mod daemon;
pub mod ebpf;
pub mod events;
pub mod grants;
pub mod kernel;
pub mod launch;
pub mod maps;
pub mod sessions;
pub mod socket;
pub mod uplink;
