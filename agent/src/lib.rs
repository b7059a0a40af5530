//! countersign-agent: loads the kernel programs, compiles the policy into their maps, reads
//! their events, and serves the local socket.

pub mod cgroup;
pub mod kernel;
