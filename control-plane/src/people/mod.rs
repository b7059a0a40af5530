//! People: who may call what (roles, groups), authenticated by certificate or token.
//!
//! The server reads one people file (YAML, see [`file`]): each person has approver groups,
//! roles and optionally bearer tokens, kept only as SHA-256 digests. A certificate person not
//! in the file has no roles: every call of theirs is `permission_denied`.

pub mod auth;
pub mod file;
pub mod logins;
pub mod token;

use std::collections::BTreeMap;
use std::fmt;

use tonic::Status;

pub use auth::{Authenticator, Caller, Credential};
pub use file::PeopleError;
pub use token::TokenDigest;

/// What a person may do on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// Decides requests (ApprovalService), within the approver groups of each rule.
    Approver,
    /// Puts policies and revokes any grant.
    Admin,
    /// Reads the audit trail and the policy history.
    Auditor,
}

impl Role {
    /// The name as written in the people file.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Approver => "approver",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
        }
    }

    /// Parses a role name of the people file.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "approver" => Some(Role::Approver),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            _ => None,
        }
    }

    /// "an approver", "an admin", "an auditor": for error messages.
    fn with_article(self) -> &'static str {
        match self {
            Role::Approver => "an approver",
            Role::Admin => "an admin",
            Role::Auditor => "an auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One person of the people file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// User name, as in `countersign://person/NAME` certificates.
    pub name: String,
    /// Approver groups (matched against a rule's `approvers.groups`).
    pub groups: Vec<String>,
    /// Roles, each once.
    pub roles: Vec<Role>,
    /// Digests of the person's bearer tokens.
    pub tokens: Vec<TokenDigest>,
}

impl Person {
    /// A person with no groups, roles nor tokens: how the server sees a certificate person
    /// missing from the file.
    pub fn nobody(name: &str) -> Person {
        Person {
            name: name.to_owned(),
            groups: Vec::new(),
            roles: Vec::new(),
            tokens: Vec::new(),
        }
    }

    /// Whether the person holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// `Ok` when the person holds `role`, else `permission_denied` naming both.
    pub fn require(&self, role: Role) -> Result<(), Status> {
        if self.has(role) {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "person '{}' is not {}",
                self.name,
                role.with_article()
            )))
        }
    }

    /// Whether the person is in at least one of `groups`.
    pub fn in_any(&self, groups: &[String]) -> bool {
        self.groups.iter().any(|g| groups.contains(g))
    }
}

/// The whole people file: default approver groups and every person by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct People {
    /// Approver groups of requests whose rule the server's policy does not know.
    pub default_approvers: Vec<String>,
    people: BTreeMap<String, Person>,
}

impl People {
    /// Builds the directory from already validated people (names unique).
    pub fn new(default_approvers: Vec<String>, people: Vec<Person>) -> People {
        People {
            default_approvers,
            people: people.into_iter().map(|p| (p.name.clone(), p)).collect(),
        }
    }

    /// The person named `name`, if the file lists them.
    pub fn get(&self, name: &str) -> Option<&Person> {
        self.people.get(name)
    }

    /// The person named `name`, or one without any role when the file does not list them.
    pub fn person_or_nobody(&self, name: &str) -> Person {
        self.get(name)
            .cloned()
            .unwrap_or_else(|| Person::nobody(name))
    }

    /// Everybody, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Person> {
        self.people.values()
    }

    /// Number of people in the file.
    pub fn len(&self) -> usize {
        self.people.len()
    }

    /// Whether the file lists nobody.
    pub fn is_empty(&self) -> bool {
        self.people.is_empty()
    }

    /// The person holding the bearer token `token`, compared in constant time over every
    /// digest of every person (the time taken does not tell which digest, if any, matched).
    pub fn by_token(&self, token: &str) -> Option<&Person> {
        let presented = TokenDigest::of(token);
        let mut found = None;
        for person in self.people.values() {
            for digest in &person.tokens {
                if digest.matches(&presented) {
                    found = Some(person);
                }
            }
        }
        found
    }
}

#[cfg(test)]
mod tests;
