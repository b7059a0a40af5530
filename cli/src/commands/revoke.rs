//! `countersign revoke GRANT --reason TEXT`: withdraw a grant before it is used up or expires.

use std::time::SystemTime;

use countersign_api::pb;

use super::decide::non_empty;
use crate::connect::Connection;
use crate::exit::{Outcome, OK};
use crate::output::outln;
use crate::render::clean;
use crate::render::time::{clock, from_pb};

/// `revoke` arguments.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// Grant id (16 hex digits, as `approve` and `show` print it).
    #[arg(value_name = "GRANT")]
    pub grant: String,
    /// Why (kept in the audit trail).
    #[arg(long, value_parser = non_empty)]
    pub reason: String,
}

/// Runs `revoke`.
pub async fn run(conn: &Connection, args: &RevokeArgs) -> Outcome {
    let revocation = conn
        .approvals()
        .revoke(pb::RevokeRequest {
            grant_id: args.grant.clone(),
            reason: args.reason.clone(),
        })
        .await?
        .into_inner();
    outln!("{}", revoked_text(&revocation, SystemTime::now()));
    Ok(OK)
}

/// `revoked grant 3f… at 14:03:12 by alice: reason`.
pub fn revoked_text(r: &pb::Revocation, now: SystemTime) -> String {
    let at =
        from_pb(r.time.as_ref()).map_or_else(String::new, |t| format!(" at {}", clock(t, now)));
    let by = match r.revoked_by.as_str() {
        "" => String::new(),
        who => format!(" by {}", clean(who)),
    };
    format!(
        "revoked grant {}{at}{by}: {}",
        clean(&r.grant_id),
        clean(&r.reason)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocation_text() {
        let r = pb::Revocation {
            grant_id: "3f00aa11bb22cc33".into(),
            revoked_by: "alice".into(),
            reason: "wrong cluster".into(),
            time: None,
        };
        assert_eq!(
            revoked_text(&r, SystemTime::now()),
            "revoked grant 3f00aa11bb22cc33 by alice: wrong cluster"
        );
    }
}
