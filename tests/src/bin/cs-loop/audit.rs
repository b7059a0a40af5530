//! The audit trail as an auditor exports it (AuditService.Export, JSON Lines): what the
//! checks of both benchmarks count.

use std::time::{Duration, SystemTime};

use countersign_api::pb::{ExportFormat, ExportRequest};
use serde_json::Value;
use tonic::transport::Channel;

use crate::grpc;

/// One exported record, the fields the checks look at.
#[derive(Clone, Debug)]
pub struct Record {
    /// `attempt`, `request`, `decision`, `grant`, `grant_use`, `login`, …
    pub kind: String,
    /// Who did it (`id`) and through which channel (`channel`: `api`, `cli`, `slack`, …).
    pub actor: Value,
    pub subject: Value,
    /// When the server wrote it (its clock: the same as ours on this machine).
    pub time: Option<SystemTime>,
}

impl Record {
    /// A string member of the subject (`""` when absent).
    pub fn field(&self, name: &str) -> &str {
        self.subject[name].as_str().unwrap_or_default()
    }
}

/// The whole trail, exported over `auditor` (a channel with an auditor's certificate).
pub async fn export(auditor: &Channel) -> Result<Vec<Record>, String> {
    let mut stream = grpc::audit(auditor)
        .export(ExportRequest {
            filter: None,
            format: ExportFormat::Jsonl as i32,
        })
        .await
        .map_err(|s| grpc::failed("AuditService.Export", &s))?
        .into_inner();
    let mut data = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| grpc::failed("AuditService.Export (stream)", &s))?
    {
        data.extend_from_slice(&chunk.data);
    }
    let text = String::from_utf8(data).map_err(|e| format!("the export is not UTF-8: {e}"))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .map_err(|e| format!("export line is not JSON ({e}): {l}"))?;
            Ok(Record {
                kind: v["kind"].as_str().unwrap_or_default().to_owned(),
                actor: v["actor"].clone(),
                subject: v["subject"].clone(),
                time: v["time"].as_str().and_then(parse_time),
            })
        })
        .collect()
}

/// `2026-11-23T14:00:08.750Z` (UTC, any number of fraction digits) as a time.
pub fn parse_time(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z')?;
    let (date, clock) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let nanos = if frac.is_empty() {
        0
    } else {
        let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
        digits.parse::<u64>().ok()?
    };
    // Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let secs = days * 86_400 + h * 3600 + min * 60 + sec;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        let t = |s| parse_time(s).map(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(Some(Duration::ZERO)));
        assert_eq!(
            t("2026-11-23T14:00:08.750Z"),
            Some(Some(Duration::from_millis(1_795_442_408_750)))
        );
        assert_eq!(
            t("2000-03-01T00:00:00.000001Z"),
            Some(Some(Duration::from_micros(951_868_800_000_001)))
        );
        assert_eq!(t("2026-11-23 14:00:08Z"), None);
        assert_eq!(t("2026-11-23T14:00:08"), None);
    }
}
