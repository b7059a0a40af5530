//! Deciding a request: separation of duties, N-of-M approvals and grant limits, as pure
//! functions the store runs inside its transaction.
