//! Countersign policies.
