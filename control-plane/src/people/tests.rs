//! The people file and caller identification.

use std::sync::Arc;

use tonic::metadata::MetadataMap;
use tonic::Code;

use super::auth::{Audience, AUTHORIZATION, CHANNEL};
use super::logins::Logins;
use super::*;
use crate::certs;
use crate::tls::identity::{PeerIdentity, Role as CertRole};

const ALICE_TOKEN: &str = "alice-token-0123456789";

fn people_text() -> String {
    format!(
        "# who may do what\n\
         default_approvers: [security]\n\
         people:\n\
         \x20 - name: alice\n\
         \x20   groups: [sre]\n\
         \x20   roles: [approver, auditor]\n\
         \x20   tokens: [\"{}\"]\n\
         \x20 - name: bob\n\
         \x20   roles: [admin]\n",
        TokenDigest::of(ALICE_TOKEN)
    )
}

fn people() -> People {
    file::parse("people.yaml", &people_text()).expect("valid people file")
}

fn problems(text: &str) -> Vec<String> {
    let e = file::parse("people.yaml", text).expect_err("invalid");
    e.to_string().lines().map(str::to_owned).collect()
}

#[test]
fn parses_people() {
    let p = people();
    assert_eq!(p.default_approvers, ["security"]);
    assert_eq!(p.len(), 2);
    let alice = p.get("alice").expect("alice");
    assert_eq!(alice.groups, ["sre"]);
    assert_eq!(alice.roles, [Role::Approver, Role::Auditor]);
    assert!(alice.has(Role::Approver) && !alice.has(Role::Admin));
    assert_eq!(
        p.by_token(ALICE_TOKEN).map(|p| p.name.as_str()),
        Some("alice")
    );
    assert!(p.by_token("alice-token-012345678").is_none());
    assert!(p.by_token("").is_none());
    let bob = p.get("bob").expect("bob");
    assert!(bob.groups.is_empty() && bob.tokens.is_empty());
    assert_eq!(
        bob.require(Role::Auditor)
            .expect_err("not auditor")
            .message(),
        "person 'bob' is not an auditor"
    );
    assert_eq!(
        bob.require(Role::Approver)
            .expect_err("not approver")
            .code(),
        Code::PermissionDenied
    );
    assert!(p.person_or_nobody("carol").roles.is_empty());
}

#[test]
fn empty_file_means_nobody() {
    let p = file::parse("people.yaml", "# nobody yet\n\n").expect("empty is fine");
    assert!(p.is_empty() && p.default_approvers.is_empty());
}

#[test]
fn errors_name_file_and_line() {
    let e = problems("people:\n  - name: alice\n    role: [approver]\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].starts_with("people.yaml:"), "{e:?}");
    assert!(e[0].contains("role"), "{e:?}");

    let e = problems("people:\n  - name: alice\n    roles: [approver, root]\n  - name: Alice\n");
    assert_eq!(
        e,
        [
            "people.yaml:3: person 'alice': unknown role 'root' (expected approver, admin or auditor)",
            "people.yaml:4: person name \"Alice\" must match [a-z0-9][a-z0-9._-]* (as in certificates)",
        ]
    );

    let e = problems("people:\n  - name: a\n  - name: a\n");
    assert_eq!(
        e,
        ["people.yaml:3: person 'a' is listed twice (first at line 2)"]
    );

    let e = problems("people:\n  - name: a\n    tokens: [plaintext-token]\n");
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("people.yaml:3: person 'a': a token must be written as sha256:"),
        "{e:?}"
    );
    assert!(
        !e[0].contains("plaintext-token"),
        "never echo a token: {e:?}"
    );

    let digest = TokenDigest::of("shared");
    let e = problems(&format!(
        "people:\n  - name: a\n    tokens: [\"{digest}\"]\n  - name: b\n    tokens: [\"{digest}\"]\n"
    ));
    assert_eq!(
        e,
        ["people.yaml:5: person 'b': this token digest is also listed for 'a'"]
    );

    let e = problems("default_approvers: [\"a b\"]\nfolks: []\n");
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("folks"), "{e:?}");

    let e = problems("people: [\n");
    assert!(e[0].starts_with("people.yaml:"), "{e:?}");
    let e = problems("people: []\npeople: []\n");
    assert_eq!(e, ["people.yaml:2: duplicate key 'people'"]);
}

fn auth(
    audience: Audience,
) -> (
    Authenticator,
    tokio::sync::mpsc::UnboundedReceiver<logins::Login>,
) {
    let (logins, rx) = Logins::new();
    let service = match audience {
        Audience::Hosts => "AgentService",
        Audience::People => "ApprovalService",
    };
    (
        Authenticator::new(Arc::new(people()), logins, audience, service),
        rx,
    )
}

fn der_of(dir: &std::path::Path, role: CertRole, name: &str) -> Vec<u8> {
    let pair = certs::issue_client(dir, &PeerIdentity::new(role, name)).expect("certificate");
    let pem = std::fs::read(&pair.cert).expect("read certificate");
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem).expect("PEM");
    block.contents
}

fn token(t: &str) -> MetadataMap {
    let mut m = MetadataMap::new();
    m.insert(AUTHORIZATION, format!("Bearer {t}").parse().expect("ascii"));
    m
}

#[test]
fn identify_people_and_hosts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let host = der_of(dir.path(), CertRole::Host, "web-01");
    let alice = der_of(dir.path(), CertRole::Person, "alice");
    let (people_auth, mut logins) = auth(Audience::People);
    let (host_auth, _) = auth(Audience::Hosts);
    let none = MetadataMap::new();

    // Certificates.
    assert_eq!(
        host_auth.identify(Some(&host), &none).expect("host"),
        Caller::Host("web-01".into())
    );
    let Caller::Person(p) = people_auth.identify(Some(&alice), &none).expect("alice") else {
        panic!("not a person")
    };
    assert_eq!(
        (p.person.name.as_str(), p.credential),
        ("alice", Credential::Certificate)
    );
    assert_eq!(p.channel, "api");

    // Token without certificate, with a channel label.
    let mut meta = token(ALICE_TOKEN);
    meta.insert(CHANNEL, "cli".parse().expect("ascii"));
    let Caller::Person(p) = people_auth.identify(None, &meta).expect("token") else {
        panic!("not a person")
    };
    assert_eq!(
        (p.person.name.as_str(), p.credential, p.channel.as_str()),
        ("alice", Credential::Token, "cli")
    );
    // Same token with the same person's certificate is fine.
    assert!(people_auth
        .identify(Some(&alice), &token(ALICE_TOKEN))
        .is_ok());
    // Only one login record for alice however many calls.
    assert_eq!(
        logins.try_recv().map(|l| l.person).ok().as_deref(),
        Some("alice")
    );
    assert!(logins.try_recv().is_err());

    // Failures.
    let code = |r: Result<Caller, tonic::Status>| r.expect_err("refused").code();
    assert_eq!(
        code(people_auth.identify(None, &none)),
        Code::Unauthenticated
    );
    assert_eq!(code(host_auth.identify(None, &none)), Code::Unauthenticated);
    assert_eq!(
        code(people_auth.identify(None, &token("wrong"))),
        Code::Unauthenticated
    );
    let bad = people_auth
        .identify(None, &token("wrong"))
        .expect_err("bad");
    assert!(!bad.message().contains("wrong"), "token echoed: {bad:?}");
    let mut basic = MetadataMap::new();
    basic.insert(AUTHORIZATION, "Basic abc".parse().expect("ascii"));
    assert_eq!(
        code(people_auth.identify(None, &basic)),
        Code::Unauthenticated
    );
    assert_eq!(
        code(people_auth.identify(Some(b"not a cert"), &none)),
        Code::Unauthenticated
    );
    let bob = der_of(dir.path(), CertRole::Person, "bob");
    assert_eq!(
        code(people_auth.identify(Some(&bob), &token(ALICE_TOKEN))),
        Code::Unauthenticated
    );

    // Wrong audience.
    let e = host_auth
        .identify(Some(&alice), &none)
        .expect_err("person on hosts");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("person 'alice' may not call AgentService"),
        "{e:?}"
    );
    assert_eq!(
        code(host_auth.identify(None, &token(ALICE_TOKEN))),
        Code::PermissionDenied
    );
    let e = people_auth
        .identify(Some(&host), &none)
        .expect_err("host on people");
    assert_eq!(e.code(), Code::PermissionDenied);
    assert!(
        e.message()
            .contains("host 'web-01' may not call ApprovalService"),
        "{e:?}"
    );
}
