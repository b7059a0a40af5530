//! Checking uploaded event records and turning them into store [`Ingest`] items.
//!
//! A bad record refuses the whole batch (`invalid_argument` naming its index and field):
//! the daemon keeps its log and the operator sees the error, rather than the server storing
//! half a batch and acknowledging past a gap.

use policy::Policy;
use prost::Message as _;
use tonic::Status;

use countersign_api::verdict::Said;

use super::check::{self, invalid};
use super::pb;
use super::spec::spec_for;
use crate::store::Ingest;

/// Most records in one `UploadEvents` call (the daemon sends at most 1000).
pub const MAX_BATCH: usize = 5000;

/// Checks one operation (`field` names it in errors, e.g. `events[3].operation`).
/// `needs_fingerprint`: a request is keyed by it, so it must be there.
pub fn operation(
    field: &str,
    op: Option<&pb::Operation>,
    needs_fingerprint: bool,
) -> Result<(), Status> {
    let Some(op) = op else {
        return if needs_fingerprint {
            Err(invalid(format!("{field} is required")))
        } else {
            Ok(())
        };
    };
    if needs_fingerprint || !op.fingerprint.is_empty() {
        check::fingerprint(&format!("{field}.fingerprint"), &op.fingerprint)?;
    }
    if needs_fingerprint && op.agent_group.is_empty() {
        return Err(invalid(format!("{field}.agent_group is required")));
    }
    for (name, value) in [
        ("agent_group", &op.agent_group),
        ("session", &op.session),
        ("launching_user", &op.launching_user),
    ] {
        if value.len() > 256 || value.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{field}.{name} {:?} is too long or has control characters",
                check::shorten(value)
            )));
        }
    }
    Ok(())
}

use countersign_api::UNREADABLE_LOG_LINE;

/// Checks a batch and builds its ingest items; requests get the spec of their rule in
/// `policy` (or the defaults).
pub fn ingest_batch(
    events: Vec<pb::EventRecord>,
    policy: Option<&Policy>,
    default_approvers: &[String],
) -> Result<Vec<Ingest>, Status> {
    if events.len() > MAX_BATCH {
        return Err(invalid(format!(
            "events: {} records in one call; at most {MAX_BATCH}",
            events.len()
        )));
    }
    let mut previous: Option<u64> = None;
    let mut out = Vec::with_capacity(events.len());
    for (i, mut event) in events.into_iter().enumerate() {
        let at = |f: &str| format!("events[{i}].{f}");
        check::encoded_size(&format!("events[{i}]"), event.encoded_len())?;
        if event.sequence == 0 {
            return Err(invalid(format!(
                "{} must be > 0 (sequences start at 1)",
                at("sequence")
            )));
        }
        if let Some(p) = previous.filter(|p| event.sequence <= *p) {
            return Err(invalid(format!(
                "{} {} is not greater than events[{}].sequence {p}: records must be in increasing order",
                at("sequence"),
                event.sequence,
                i - 1
            )));
        }
        previous = Some(event.sequence);
        match pb::OperationKind::try_from(event.kind) {
            // A daemon fills the sequence number of a log line it cannot read with such a
            // record, so that the acknowledged sequence can move past it: stored (and audited)
            // as what it is rather than blocking every later upload.
            Ok(pb::OperationKind::Unspecified)
                if event.flags.iter().any(|f| f == UNREADABLE_LOG_LINE) => {}
            Ok(pb::OperationKind::Unspecified) | Err(_) => {
                return Err(invalid(format!(
                    "{} {} is not a known operation kind (exec, connect, argv_mismatch, tamper)",
                    at("kind"),
                    event.kind
                )))
            }
            Ok(_) => {}
        }
        if event.time.is_none() {
            return Err(invalid(format!("{} is required", at("time"))));
        }
        let said = Said::of(&event);
        let judged = event.kind != pb::OperationKind::Unspecified as i32;
        if judged && (said.action.is_none() || said.outcome.is_none()) {
            return Err(invalid(format!(
                "events[{i}] does not say its verdict: rule_action (or action) and result \
                 (or outcome) must name a known action (allow, audit, deny, approve) and \
                 outcome (allowed, refused, killed, would_refuse, granted)"
            )));
        }
        // An approve refusal without its group (a daemon that could not name the policy
        // generation it was judged with) cannot become a request, but it is evidence: it is
        // stored and audited, and the upload goes on instead of stalling on it forever.
        let asks = said.asks_approval();
        let mut opens = asks
            && event
                .operation
                .as_ref()
                .is_some_and(|op| !op.agent_group.is_empty());
        if asks && !opens {
            tracing::warn!(
                sequence = event.sequence,
                "an approve refusal without its agent group: stored, no request opened"
            );
        }
        operation(&at("operation"), event.operation.as_ref(), opens)?;
        // A refusal whose id is not the operation it shows (or that cannot be bound at all)
        // is evidence, stored and audited with the reason as a flag; it opens no request.
        if let Some(Err(unbound)) = event
            .operation
            .as_ref()
            .filter(|_| opens)
            .map(countersign_api::binding::verify)
        {
            tracing::warn!(
                sequence = event.sequence,
                reason = %unbound,
                "an approve refusal that cannot be approved: stored, no request opened"
            );
            event.flags.push(unbound.flag().to_owned());
            opens = false;
        }
        if !event.grant_id.is_empty() {
            check::grant_id(&at("grant_id"), &event.grant_id)?;
        }
        if event.rule.len() > 128 || event.rule.chars().any(char::is_control) {
            return Err(invalid(format!(
                "{} {:?} is too long or has control characters",
                at("rule"),
                check::shorten(&event.rule)
            )));
        }
        let request = opens.then(|| spec_for(policy, &event.rule, default_approvers));
        out.push(Ingest { event, request });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An approve refusal, as a daemon that predates the typed verdict sends it.
    #[allow(deprecated, reason = "the strings of older daemons")]
    fn event(sequence: u64) -> pb::EventRecord {
        pb::EventRecord {
            sequence,
            time: Some(std::time::SystemTime::now().into()),
            kind: pb::OperationKind::Exec.into(),
            action: "approve".into(),
            outcome: "refused".into(),
            operation: Some(pb::Operation {
                agent_group: "ai".into(),
                session: "s1".into(),
                device: "8:1".into(),
                inode: 42,
                argv: vec!["kubectl".into(), "delete".into(), "pod".into()],
                rule_number: 3,
                fingerprint: agent_common::binding::Binding::exec(
                    3,
                    (8 << 20) | 1,
                    42,
                    &["kubectl", "delete", "pod"],
                )
                .id(),
                ..Default::default()
            }),
            rule: "kubectl".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_refusal_that_is_not_its_operation_opens_no_request() {
        // The fingerprint of `kubectl delete pod`, shown with another pod: what approvers
        // would read is not what the daemon would grant.
        let mut forged = event(1);
        if let Some(op) = forged.operation.as_mut() {
            op.argv.push("prod-db".into());
        }
        let mut truncated = event(2);
        if let Some(op) = truncated.operation.as_mut() {
            op.argv_truncated = true;
        }
        let mut legacy = event(3);
        if let Some(op) = legacy.operation.as_mut() {
            op.fingerprint = "00000000000000aa".into();
        }
        let items = ingest_batch(vec![forged, truncated, legacy, event(4)], None, &[])
            .expect("stored as evidence, not refused");
        let flags: Vec<_> = items.iter().map(|i| i.event.flags.clone()).collect();
        assert_eq!(
            flags,
            [
                vec!["not_approvable_unbound".to_owned()],
                vec!["not_approvable_truncated".to_owned()],
                vec!["not_approvable_unbound".to_owned()],
                vec![],
            ]
        );
        let opened: Vec<_> = items.iter().map(|i| i.request.is_some()).collect();
        assert_eq!(opened, [false, false, false, true]);
    }

    #[test]
    fn unreadable_log_lines_keep_the_sequence_contiguous() {
        let filler = pb::EventRecord {
            sequence: 2,
            time: Some(std::time::SystemTime::now().into()),
            flags: vec![UNREADABLE_LOG_LINE.into()],
            ..Default::default()
        };
        let batch = ingest_batch(vec![event(1), filler.clone(), event(3)], None, &[])
            .expect("a filler is accepted");
        assert_eq!(batch.len(), 3);
        assert!(batch[1].request.is_none());
        let unflagged = pb::EventRecord {
            flags: Vec::new(),
            ..filler
        };
        assert!(error(vec![unflagged]).contains("kind"));
    }

    fn error(events: Vec<pb::EventRecord>) -> String {
        let e = ingest_batch(events, None, &[]).expect_err("invalid");
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        e.message().to_owned()
    }

    #[test]
    fn good_batch() {
        let mut allowed = event(3);
        allowed.set_rule_action(pb::Action::Allow);
        allowed.set_result(pb::Outcome::Allowed);
        allowed.operation = None;
        let items =
            ingest_batch(vec![event(1), allowed, event(7)], None, &["sec".into()]).expect("valid");
        assert_eq!(items.len(), 3);
        assert!(items[0].request.is_some() && items[1].request.is_none());
        assert_eq!(
            items[2].request.as_ref().map(|s| s.approver_groups.clone()),
            Some(vec!["sec".to_owned()])
        );
        assert!(ingest_batch(vec![], None, &[]).expect("empty").is_empty());
    }

    #[test]
    fn bad_records_name_index_and_field() {
        assert_eq!(
            error(vec![event(0)]),
            "events[0].sequence must be > 0 (sequences start at 1)"
        );
        assert_eq!(
            error(vec![event(2), event(2)]),
            "events[1].sequence 2 is not greater than events[0].sequence 2: records must be in increasing order"
        );
        let mut e = event(1);
        e.kind = 0;
        assert!(error(vec![e]).starts_with("events[0].kind 0 is not a known operation kind"));
        let mut e = event(1);
        e.kind = 42;
        assert!(error(vec![e]).starts_with("events[0].kind 42"));
        #[allow(deprecated, reason = "what an older daemon would send")]
        let garbled = [
            |e: &mut pb::EventRecord| {
                e.rule_action = 99;
                e.action = "notify".into();
            },
            |e: &mut pb::EventRecord| e.outcome = "REFUSED".into(),
            |e: &mut pb::EventRecord| e.action.clear(),
        ];
        for garble in garbled {
            let mut e = event(1);
            garble(&mut e);
            assert!(
                error(vec![e]).starts_with("events[0] does not say its verdict"),
                "an unknown verdict is refused, never guessed"
            );
        }
        let mut e = event(2);
        if let Some(op) = e.operation.as_mut() {
            op.fingerprint = "NOT-HEX".into();
        }
        assert_eq!(
            error(vec![event(1), e.clone()]),
            "events[1].operation.fingerprint \"NOT-HEX\" is not a fingerprint (32 lowercase hex digits)"
        );
        // An approve refusal without its operation or group is kept as evidence, but opens
        // no request (and does not stall the host's upload).
        e.operation = None;
        let kept = ingest_batch(vec![e], None, &[]).expect("stored");
        assert!(kept[0].request.is_none());
        let mut e = event(1);
        if let Some(op) = e.operation.as_mut() {
            op.agent_group.clear();
        }
        let kept = ingest_batch(vec![e], None, &[]).expect("stored");
        assert!(kept[0].request.is_none());
        // An event that opens no request may omit the operation, but a fingerprint given
        // must still be well formed.
        let mut e = event(1);
        e.set_result(pb::Outcome::Allowed);
        if let Some(op) = e.operation.as_mut() {
            op.fingerprint = "0x12".into();
        }
        assert!(error(vec![e]).starts_with("events[0].operation.fingerprint"));
        let mut e = event(1);
        e.grant_id = "0000000000000000".into();
        assert!(error(vec![e]).starts_with("events[0].grant_id"));
        let mut e = event(1);
        e.time = None;
        assert_eq!(error(vec![e]), "events[0].time is required");
        let many = (1..=(MAX_BATCH as u64 + 1)).map(event).collect();
        assert!(error(many).contains("at most 5000"));
        // One oversized record (a hostile host's) is refused by name, not stored to break
        // every later export.
        let mut e = event(2);
        if let Some(op) = e.operation.as_mut() {
            op.argv = vec!["x".repeat(4096); 70];
        }
        let said = error(vec![event(1), e]);
        assert!(
            said.starts_with("events[1] is ") && said.ends_with("bytes encoded; at most 262144"),
            "{said}"
        );
    }
}
