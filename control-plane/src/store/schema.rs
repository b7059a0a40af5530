//! The schema and its migrations: numbered steps recorded in `schema_migrations`, all pending
//! steps applied in one transaction (a crash mid-way leaves the previous version intact).
//!
//! One DDL text serves both databases: only BIGINT and TEXT columns, plus two spellings that
//! differ (`{blob}` and `{serial}`), substituted per backend. Never edit a released step:
//! add a new one.

use sqlx::AnyPool;
use sqlx::{Executor as _, Row as _};

use super::{codec, Backend, StoreError};
use crate::audit::Digest;

/// One migration step.
struct Step {
    version: i64,
    name: &'static str,
    statements: &'static [&'static str],
}

/// Every step, in order.
const STEPS: &[Step] = &[Step {
    version: 1,
    name: "approval loop",
    statements: &[
        // Daemons: registration data and the upload acknowledgement.
        "CREATE TABLE hosts (
            host TEXT PRIMARY KEY,
            acked BIGINT NOT NULL,
            agent_version TEXT NOT NULL,
            kernel TEXT NOT NULL,
            mode BIGINT NOT NULL,
            agent_groups TEXT NOT NULL,
            policy_revision TEXT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL)",
        // Uploaded events; the columns are for queries, `body` is the whole record.
        "CREATE TABLE events (
            host TEXT NOT NULL,
            seq BIGINT NOT NULL,
            event_time BIGINT NOT NULL,
            received BIGINT NOT NULL,
            action TEXT NOT NULL,
            outcome TEXT NOT NULL,
            rule TEXT NOT NULL,
            request_id TEXT,
            body {blob} NOT NULL,
            PRIMARY KEY (host, seq))",
        "CREATE TABLE requests (
            n {serial},
            id TEXT NOT NULL UNIQUE,
            host TEXT NOT NULL,
            agent_group TEXT NOT NULL,
            session TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            kind TEXT NOT NULL,
            operation {blob} NOT NULL,
            rule TEXT NOT NULL,
            rule_description TEXT NOT NULL,
            approver_groups TEXT NOT NULL,
            approvals_required BIGINT NOT NULL,
            expires_in BIGINT NOT NULL,
            max_grant_ttl BIGINT NOT NULL,
            max_grant_uses BIGINT NOT NULL,
            allow_launcher BIGINT NOT NULL,
            reason TEXT NOT NULL,
            state TEXT NOT NULL,
            attempts BIGINT NOT NULL,
            first_seen BIGINT NOT NULL,
            last_seen BIGINT NOT NULL,
            expires_at BIGINT NOT NULL,
            grant_id TEXT,
            launching_user TEXT NOT NULL)",
        // At most one pending request per key: the database backs the join logic up.
        "CREATE UNIQUE INDEX requests_pending_key
            ON requests (host, agent_group, session, fingerprint) WHERE state = 'pending'",
        "CREATE INDEX requests_state ON requests (state, expires_at)",
        "CREATE TABLE decisions (
            request_id TEXT NOT NULL,
            n BIGINT NOT NULL,
            decided_by TEXT NOT NULL,
            channel TEXT NOT NULL,
            decided_at BIGINT NOT NULL,
            verdict TEXT NOT NULL,
            duration BIGINT NOT NULL,
            uses BIGINT NOT NULL,
            reason TEXT NOT NULL,
            grant_id TEXT,
            PRIMARY KEY (request_id, n))",
        // One decision per person per request (a repeat is answered without writing).
        "CREATE UNIQUE INDEX decisions_person ON decisions (request_id, decided_by)",
        "CREATE TABLE grants (
            grant_id TEXT PRIMARY KEY,
            request_id TEXT NOT NULL,
            host TEXT NOT NULL,
            agent_group TEXT NOT NULL,
            session TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            uses BIGINT NOT NULL,
            uses_consumed BIGINT NOT NULL,
            ttl BIGINT NOT NULL,
            granted_at BIGINT NOT NULL,
            approvers TEXT NOT NULL,
            revoked_at BIGINT,
            revoked_by TEXT,
            revoke_reason TEXT)",
        "CREATE INDEX grants_request ON grants (request_id)",
        // Per-host decision stream; `id` is the cursor. Ids are allocated under the writer
        // lock, so they also commit in increasing order (a reader never sees 7 before 6).
        "CREATE TABLE decision_events (
            id {serial},
            host TEXT NOT NULL,
            created BIGINT NOT NULL,
            body {blob} NOT NULL)",
        "CREATE INDEX decision_events_host ON decision_events (host, id)",
        "CREATE TABLE policies (
            n BIGINT PRIMARY KEY,
            revision TEXT NOT NULL UNIQUE,
            yaml TEXT NOT NULL,
            author TEXT NOT NULL,
            comment TEXT NOT NULL,
            created BIGINT NOT NULL)",
        // The chain head, one row: every writer locks it first (see writer.rs).
        "CREATE TABLE audit_head (
            id BIGINT PRIMARY KEY,
            next_seq BIGINT NOT NULL,
            head TEXT NOT NULL,
            since_checkpoint BIGINT NOT NULL)",
        "INSERT INTO audit_head (id, next_seq, head, since_checkpoint) VALUES (1, 0, '{genesis}', 0)",
        // `record` is the whole record as JSON (hash included, re-hashed by verification);
        // the other columns are copies for filtering, never trusted by verification.
        "CREATE TABLE audit_records (
            seq BIGINT PRIMARY KEY,
            recorded BIGINT NOT NULL,
            kind TEXT NOT NULL,
            actor_kind TEXT NOT NULL,
            actor_id TEXT NOT NULL,
            host TEXT,
            agent TEXT,
            session TEXT,
            rule TEXT,
            record TEXT NOT NULL)",
        "CREATE INDEX audit_records_recorded ON audit_records (recorded)",
    ],
}, Step {
    version: 2,
    name: "chat approvers",
    statements: &[
        // Chat accounts linked to people (`countersign people link`): a click counts only
        // through such a link, never by a name or e-mail in the payload.
        "CREATE TABLE chat_links (
            channel TEXT NOT NULL,
            external_id TEXT NOT NULL,
            person TEXT NOT NULL,
            linked_by TEXT NOT NULL,
            linked_at BIGINT NOT NULL,
            PRIMARY KEY (channel, external_id))",
        // One chat message per (request, integration, conversation), claimed by the replica
        // that inserts the row first; `message_ref` is empty until the post succeeded.
        "CREATE TABLE chat_messages (
            request_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            target TEXT NOT NULL,
            message_ref TEXT NOT NULL,
            extra TEXT NOT NULL,
            posted_at BIGINT NOT NULL,
            PRIMARY KEY (request_id, channel, target))",
        // Digests of signed callbacks already seen (replay window), shared by replicas.
        "CREATE TABLE chat_replays (
            digest TEXT PRIMARY KEY,
            seen_at BIGINT NOT NULL)",
    ],
}, Step {
    version: 3,
    name: "session counters",
    statements: &[
        // The latest per-session kernel counters each host reported (`ReportSessions`).
        "CREATE TABLE session_counters (
            host TEXT NOT NULL,
            cgroup_id BIGINT NOT NULL,
            agent_group TEXT NOT NULL,
            session TEXT NOT NULL,
            refused BIGINT NOT NULL,
            granted BIGINT NOT NULL,
            events_lost BIGINT NOT NULL,
            events_limited BIGINT NOT NULL,
            updated BIGINT NOT NULL,
            PRIMARY KEY (host, cgroup_id))",
    ],
}, Step {
    version: 4,
    name: "chat links confirmed by their person",
    statements: &[
        // Who confirmed a link: the person linked, or '' while it awaits them. Links made
        // before this step await their person too (an admin alone could link any account).
        "ALTER TABLE chat_links ADD COLUMN confirmed_by TEXT NOT NULL DEFAULT ''",
    ],
}, Step {
    version: 5,
    name: "refusals over the request cap",
    statements: &[
        // Kernel refusals of the request's session that opened no request of their own
        // because the session or host had as many open as it may (`RequestCaps`).
        "ALTER TABLE requests ADD COLUMN over_cap BIGINT NOT NULL DEFAULT 0",
    ],
}];

/// The DDL of `statement` for `backend`.
fn render(statement: &str, backend: Backend) -> String {
    let (blob, serial) = match backend {
        Backend::Sqlite => ("BLOB", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        Backend::Postgres => (
            "BYTEA",
            "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        ),
    };
    statement
        .replace("{blob}", blob)
        .replace("{serial}", serial)
        .replace("{genesis}", &Digest::GENESIS.to_hex())
}

/// Applies the steps not yet recorded. Refuses a database written by a newer version.
pub(super) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    if backend == Backend::Postgres {
        // Replicas starting together: one migrates, the others wait and then find it done.
        // (Wrapped in a SELECT of an integer: the Any driver cannot decode `void`.)
        sqlx::query("SELECT 1 FROM (SELECT pg_advisory_xact_lock(7243657601)) AS migrating")
            .fetch_one(&mut *tx)
            .await?;
    }
    tx.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version BIGINT PRIMARY KEY,
            name TEXT NOT NULL,
            applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?;
    let newest = STEPS.last().map_or(0, |s| s.version);
    if let Some(v) = applied.iter().find(|v| **v > newest) {
        return Err(StoreError::Precondition(format!(
            "the database has schema version {v}, this server knows up to {newest}: \
             upgrade the server"
        )));
    }
    for step in STEPS.iter().filter(|s| !applied.contains(&s.version)) {
        let failed = |source| StoreError::Migration {
            version: step.version,
            name: step.name,
            source,
        };
        for statement in step.statements {
            tx.execute(render(statement, backend).as_str())
                .await
                .map_err(failed)?;
        }
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(step.version)
        .bind(step.name)
        .bind(codec::ms(std::time::SystemTime::now()))
        .execute(&mut *tx)
        .await
        .map_err(failed)?;
        tracing::info!(
            version = step.version,
            name = step.name,
            "store: migration applied"
        );
    }
    tx.commit().await?;
    Ok(())
}

/// Versions recorded in `schema_migrations` (for tests and `status` output).
pub(super) async fn versions(pool: &AnyPool) -> Result<Vec<i64>, StoreError> {
    let rows = sqlx::query("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()?)
}
