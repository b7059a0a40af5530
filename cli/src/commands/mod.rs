//! The commands of people (approvers, security admins, auditors), one module each.

pub mod audit;
pub mod certs;
pub mod decide;
pub mod pending;
pub mod people;
pub mod policy;
pub mod revoke;
pub mod show;

use serde_json::Value;

use crate::exit::Failure;
use crate::output::outln;

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &Value) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| Failure::refused(format!("encoding JSON: {e}")))?;
    outln!("{text}");
    Ok(())
}

/// Reads all pages of a paginated list: `fetch(token)` returns a page and the next token.
/// Stops on an empty token, and on a token the server repeats (a server bug must not loop).
pub async fn all_pages<T, F, Fut>(limit: usize, mut fetch: F) -> Result<Vec<T>, Failure>
where
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<(Vec<T>, String), Failure>>,
{
    let mut out = Vec::new();
    let mut token = String::new();
    loop {
        let (items, next) = fetch(token.clone()).await?;
        out.extend(items);
        if next.is_empty() || next == token || out.len() >= limit {
            out.truncate(limit);
            return Ok(out);
        }
        token = next;
    }
}
