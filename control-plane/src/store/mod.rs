//! Storage of the control plane: one schema on SQLite (default) or PostgreSQL (several
//! replicas), reached through sqlx's `Any` driver.
