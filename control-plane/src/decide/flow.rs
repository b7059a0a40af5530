//! The decision, whole, for every channel: the gRPC `Decide` call and a chat click both come
//! here. The caller must be an approver (checked before the store is touched); the judge runs
//! inside the store's transaction on the locked request; the store writes the decision, the
//! grant and their audit records and announces the outcome on the host's decision stream
//! (from which the chat cards are refreshed too).

use std::time::SystemTime;

use super::{approver, describe, judge};
use crate::people::Person;
use crate::store::{Decided, RequestRow, Store, StoreError, Verdict};

/// `person` deciding request `request_id` through `channel` at `now`. `verdict` is what they
/// asked for, given the request (a chat's "approve for" takes the rule's uses).
pub async fn decide(
    store: &Store,
    person: &Person,
    channel: &str,
    request_id: &str,
    verdict: impl FnOnce(&RequestRow) -> Verdict + Send,
    now: SystemTime,
) -> Result<Decided, StoreError> {
    approver(person)?;
    let decided = store
        .decide(request_id, now, |row, decisions| {
            judge(person, channel, &verdict(row), row, decisions, now)
        })
        .await?;
    tracing::info!(
        request = %decided.request.id,
        person = %person.name,
        channel,
        verdict = %describe(&decided.decision.verdict),
        state = decided.request.state.as_str(),
        grant = decided.grant.as_ref().map(|g| g.grant_id.as_str()).unwrap_or(""),
        repeated = decided.repeated,
        "decision"
    );
    Ok(decided)
}
