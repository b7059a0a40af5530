//! Multi-row INSERT statements. Placeholders: `$n` for PostgreSQL (sqlx's `QueryBuilder`
//! writes `?` for the Any driver, which PostgreSQL rejects), anonymous `?` for SQLite —
//! there, sqlx looks up every parameter's name and SQLite finds a name by a linear scan, so
//! hundreds of `$n` in one statement cost quadratic time (it was a fifth of the ingest).
//!
//! Rows go in chunks of [`CHUNK`], the remainder in power-of-two pieces: a handful of
//! distinct statement texts per table, so each connection's prepared-statement cache keeps
//! them all, and no statement comes near SQLite's 32 766 or PostgreSQL's 65 535 parameters.

use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::Any;
use sqlx::AnyConnection;

use super::Backend;

/// Rows per full statement.
const CHUNK: usize = 64;

/// The query type `bind` extends.
pub(super) type AnyQuery<'q> = Query<'q, Any, AnyArguments<'q>>;

/// Inserts `rows` with `head` (`INSERT INTO t (a, b)`), `columns` placeholders per row, and
/// `tail` (e.g. `ON CONFLICT DO NOTHING`). `bind` binds one row's values in column order.
/// Returns the number of rows the database reports as inserted.
pub(super) async fn insert<'r, T: Sync>(
    conn: &mut AnyConnection,
    backend: Backend,
    head: &str,
    tail: &str,
    columns: usize,
    rows: &'r [T],
    bind: impl for<'q> Fn(AnyQuery<'q>, &'q T) -> AnyQuery<'q>,
) -> Result<u64, sqlx::Error> {
    let mut done = 0;
    let mut inserted = 0;
    while done < rows.len() {
        let left = rows.len() - done;
        let n = if left >= CHUNK {
            CHUNK
        } else {
            // Largest power of two <= left.
            1 << (usize::BITS - 1 - left.leading_zeros())
        };
        let sql = statement(backend, head, tail, columns, n);
        let mut query = sqlx::query(&sql);
        for row in &rows[done..done + n] {
            query = bind(query, row);
        }
        inserted += query.execute(&mut *conn).await?.rows_affected();
        done += n;
    }
    Ok(inserted)
}

/// `head VALUES ($1, $2), ($3, $4) tail` (`?` instead of `$n` on SQLite).
fn statement(backend: Backend, head: &str, tail: &str, columns: usize, rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * columns * 6);
    sql.push_str(head);
    sql.push_str(" VALUES ");
    let mut p = 0;
    for r in 0..rows {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns {
            p += 1;
            let sep = if c == 0 { "" } else { ", " };
            let _ = match backend {
                Backend::Sqlite => write!(sql, "{sep}?"),
                Backend::Postgres => write!(sql, "{sep}${p}"),
            };
        }
        sql.push(')');
    }
    if !tail.is_empty() {
        sql.push(' ');
        sql.push_str(tail);
    }
    sql
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders() {
        use super::{statement, Backend};
        let (head, tail) = ("INSERT INTO t (a, b)", "ON CONFLICT DO NOTHING");
        assert_eq!(
            statement(Backend::Postgres, head, tail, 2, 2),
            "INSERT INTO t (a, b) VALUES ($1, $2), ($3, $4) ON CONFLICT DO NOTHING"
        );
        assert_eq!(
            statement(Backend::Sqlite, head, "", 2, 1),
            "INSERT INTO t (a, b) VALUES (?, ?)"
        );
    }
}
