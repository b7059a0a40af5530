//! countersign-agent: loads the kernel programs, compiles the policy into their maps, reads
//! their events, serves the local sockets, and (with `--server`) links the host to the
//! control plane.

pub mod admin_socket;
pub mod agent_socket;
pub mod approvals;
pub mod atomic_file;
pub mod cgroup;
pub mod cli;
pub mod daemon;
pub mod ebpf;
pub mod events;
pub mod grants;
pub mod kernel;
pub mod maps;
pub mod session;
pub mod uplink;
