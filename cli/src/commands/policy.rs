//! `countersign policy`: validate, push, list and fetch the policy the server distributes.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use countersign_api::pb;
use tonic::Code;

use super::all_pages;
use crate::connect::Connection;
use crate::exit::{Failure, Outcome, OK, REFUSED};
use crate::json;
use crate::output::{errln, out, outln};
use crate::render::time::{clock, from_pb, relative};
use crate::render::{clean, Table};

/// `policy` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum PolicyCommand {
    /// Check a policy file on the server without storing it.
    Validate {
        /// Policy YAML.
        file: PathBuf,
    },
    /// Store a policy file as the new revision (daemons fetch it within seconds).
    Push {
        /// Policy YAML.
        file: PathBuf,
        /// What changed and why (shown by `policy history`).
        #[arg(long, default_value = "")]
        comment: String,
        /// The revision this file was edited from [default: the server's current one].
        #[arg(long, value_name = "REV")]
        base: Option<String>,
    },
    /// Past revisions, newest first.
    History {
        /// At most N revisions.
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: usize,
        /// Print the revisions as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print one revision's YAML (the current one without REV).
    Get {
        /// Revision id.
        #[arg(value_name = "REV")]
        revision: Option<String>,
    },
}

/// Runs a `policy` subcommand.
pub async fn run(conn: &Connection, command: &PolicyCommand) -> Outcome {
    match command {
        PolicyCommand::Validate { file } => validate(conn, file).await,
        PolicyCommand::Push {
            file,
            comment,
            base,
        } => push(conn, file, comment, base.as_deref()).await,
        PolicyCommand::History { limit, json } => history(conn, *limit, *json).await,
        PolicyCommand::Get { revision } => get(conn, revision.as_deref()).await,
    }
}

fn read(file: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(file).map_err(|e| Failure::usage(format!("{}: {e}", file.display())))
}

/// `FILE:LINE: rule 'id': message`, as `countersign-agent policy check` prints errors.
pub fn error_line(file: &Path, e: &pb::PolicyError) -> String {
    let mut text = file.display().to_string();
    if e.line > 0 {
        text.push_str(&format!(":{}", e.line));
    }
    if !e.rule.is_empty() {
        text.push_str(&format!(": rule '{}'", clean(&e.rule)));
    }
    format!("{text}: {}", clean(&e.message))
}

async fn validate(conn: &Connection, file: &Path) -> Outcome {
    let yaml = read(file)?;
    let response = conn
        .policy()
        .validate(pb::ValidateRequest { yaml })
        .await?
        .into_inner();
    if response.errors.is_empty() {
        outln!("{}: ok", file.display());
        return Ok(OK);
    }
    for e in &response.errors {
        errln!("{}", error_line(file, e));
    }
    Ok(REFUSED)
}

async fn push(conn: &Connection, file: &Path, comment: &str, base: Option<&str>) -> Outcome {
    let yaml = read(file)?;
    let mut client = conn.policy();
    let base_revision = match base {
        Some(rev) => rev.to_owned(),
        None => match client.get(pb::GetPolicyRevisionRequest::default()).await {
            Ok(current) => current.into_inner().revision,
            // The first policy of a fresh server.
            Err(s) if s.code() == Code::NotFound => String::new(),
            Err(s) => return Err(s.into()),
        },
    };
    let request = pb::PutPolicyRequest {
        yaml: yaml.clone(),
        comment: comment.to_owned(),
        base_revision: base_revision.clone(),
    };
    match client.put(request).await {
        Ok(put) => {
            let put = put.into_inner();
            let from = match base_revision.as_str() {
                "" => String::new(),
                rev => format!(" (replacing {})", clean(rev)),
            };
            outln!(
                "pushed {} as revision {}{from}",
                file.display(),
                clean(&put.revision)
            );
            Ok(OK)
        }
        Err(s) if s.code() == Code::InvalidArgument => {
            // Name each error with its line when the caller may also validate; the server's
            // own message otherwise.
            let errors = client
                .validate(pb::ValidateRequest { yaml })
                .await
                .map(|r| r.into_inner().errors)
                .unwrap_or_default();
            if errors.is_empty() {
                return Err(s.into());
            }
            let lines: Vec<String> = errors.iter().map(|e| error_line(file, e)).collect();
            Err(Failure::refused(format!(
                "the server refused the policy:\n{}",
                lines.join("\n")
            )))
        }
        Err(s) => Err(s.into()),
    }
}

async fn history(conn: &Connection, limit: usize, as_json: bool) -> Outcome {
    let client = conn.policy();
    let revisions = all_pages(limit, |page_token| {
        let mut client = client.clone();
        let request = pb::PolicyHistoryRequest {
            page_size: u32::try_from(limit.min(200)).unwrap_or(200),
            page_token,
        };
        async move {
            let page = client.history(request).await?.into_inner();
            Ok((page.revisions, page.next_page_token))
        }
    })
    .await?;
    if as_json {
        let list = revisions.iter().map(json::policy).collect();
        super::print_json(&serde_json::Value::Array(list))?;
    } else if revisions.is_empty() {
        outln!("no policy revisions yet");
    } else {
        out!("{}", history_table(&revisions, SystemTime::now()).render());
    }
    Ok(OK)
}

/// The table of `policy history`.
pub fn history_table(revisions: &[pb::PolicyDocument], now: SystemTime) -> Table {
    let mut t = Table::new(&["REVISION", "CREATED", "AUTHOR", "COMMENT"]);
    for p in revisions {
        let created = from_pb(p.created.as_ref()).map_or_else(
            || "-".into(),
            |c| format!("{} ({})", clock(c, now), relative(c, now)),
        );
        t.row(vec![
            clean(&p.revision).into_owned(),
            created,
            clean(&p.author).into_owned(),
            clean(&p.comment).into_owned(),
        ]);
    }
    t
}

async fn get(conn: &Connection, revision: Option<&str>) -> Outcome {
    let request = pb::GetPolicyRevisionRequest {
        revision: revision.unwrap_or_default().to_owned(),
    };
    let doc = conn.policy().get(request).await?.into_inner();
    let now = SystemTime::now();
    let created = from_pb(doc.created.as_ref())
        .map_or_else(String::new, |c| format!(", {}", relative(c, now)));
    // The header goes to stderr so that stdout is exactly the YAML (`> policy.yaml`).
    errln!(
        "# revision {} by {}{created}{}",
        clean(&doc.revision),
        clean(&doc.author),
        match doc.comment.as_str() {
            "" => String::new(),
            c => format!(": {}", clean(c)),
        }
    );
    out!("{}", doc.yaml);
    if !doc.yaml.ends_with('\n') {
        outln!();
    }
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_file_line_and_rule() {
        let e = pb::PolicyError {
            line: 12,
            rule: "kubectl-mutations".into(),
            message: "unknown action 'maybe'".into(),
        };
        assert_eq!(
            error_line(Path::new("p.yaml"), &e),
            "p.yaml:12: rule 'kubectl-mutations': unknown action 'maybe'"
        );
        let e = pb::PolicyError {
            line: 0,
            rule: String::new(),
            message: "empty document".into(),
        };
        assert_eq!(
            error_line(Path::new("p.yaml"), &e),
            "p.yaml: empty document"
        );
    }

    #[test]
    fn history_rows() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_442_592);
        let p = pb::PolicyDocument {
            revision: "7".into(),
            author: "carol".into(),
            comment: "block other".into(),
            created: Some((now - std::time::Duration::from_secs(120)).into()),
            yaml: String::new(),
        };
        let text = history_table(&[p], now).render();
        let row = text.lines().nth(1).expect("row");
        assert!(row.starts_with("7  "), "{row}");
        assert!(row.contains(" (2m ago)  carol "), "{row}");
        assert!(row.ends_with("  block other"), "{row}");
    }
}
