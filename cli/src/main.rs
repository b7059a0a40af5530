//! `countersign`: the command line of approvers, security admins, auditors and AI agents.

fn main() {}
