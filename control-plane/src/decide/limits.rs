//! Grant limits: what one approval may give, within the rule and the kernel.

use std::time::Duration;

use super::Refusal;

use crate::store::{RequestSpec, Verdict};

/// Most uses one grant can have: the kernel's grant map holds one slot per use.
pub const MAX_KERNEL_USES: u32 = agent_common::grant::MAX_GRANT_SLOTS;

/// The `(uses, ttl)` an approval asks for, checked against the request's spec: approve once
/// is one use for the rule's longest ttl; approve for D needs 0 < D <= the rule's ttl and
/// uses within the rule's (0 = unlimited only when the rule allows unlimited) and the
/// kernel's limit. Violations are [`Refusal::OutOfLimits`] naming the limit.
pub fn grant_of(verdict: &Verdict, spec: &RequestSpec) -> Result<(u32, Duration), Refusal> {
    let rule = &spec.rule;
    match verdict {
        Verdict::ApproveOnce => Ok((1, spec.max_grant_ttl)),
        Verdict::Deny { .. } => Err(Refusal::OutOfLimits("a deny grants nothing".into())),
        Verdict::ApproveFor { duration, uses } => {
            if duration.is_zero() {
                return Err(Refusal::OutOfLimits(
                    "approve_for_duration.duration must be longer than 0".into(),
                ));
            }
            if *duration > spec.max_grant_ttl {
                return Err(Refusal::OutOfLimits(format!(
                    "approve_for_duration.duration {} is longer than rule '{rule}' allows: \
                     grants last at most {}",
                    policy::format_duration(*duration),
                    policy::format_duration(spec.max_grant_ttl)
                )));
            }
            let max = spec.max_grant_uses;
            if *uses > MAX_KERNEL_USES && (max == 0 || max > MAX_KERNEL_USES) {
                return Err(Refusal::OutOfLimits(format!(
                    "approve_for_duration.uses {uses} is more than a grant can hold: at most \
                     {MAX_KERNEL_USES} uses (or 0 for unlimited within the duration)"
                )));
            }
            if max != 0 && (*uses == 0 || *uses > max) {
                let given = if *uses == 0 {
                    "0 (unlimited)".to_owned()
                } else {
                    uses.to_string()
                };
                return Err(Refusal::OutOfLimits(format!(
                    "approve_for_duration.uses {given} is more than rule '{rule}' allows: at \
                     most {max} use{}",
                    if max == 1 { "" } else { "s" }
                )));
            }
            Ok((*uses, *duration))
        }
    }
}
