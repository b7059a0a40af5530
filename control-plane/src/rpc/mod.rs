//! The gRPC services (the API itself, `api/proto/countersign.proto`, package `countersign.v1`, is the `countersign-api` crate).
//!
//! One module per service ([`agent`], [`approval`], [`policy`], [`audit`]), all sharing one
//! [`Ctx`] (store, people, the server's current policy). Each service is wrapped by the
//! [`Authenticator`](crate::people::Authenticator) interceptor of its audience, so handlers
//! always find a [`Caller`](crate::people::Caller) in the request extensions.

pub mod agent;
pub mod approval;
pub mod audit;
pub mod check;
pub mod convert;
pub mod events;
pub mod people;
pub mod policy;
pub mod sessions;
pub mod spec;

use std::sync::Arc;

use tokio::sync::watch;

use crate::people::auth::Audience;
use crate::people::logins::Logins;
use crate::people::{Authenticator, People};
use crate::store::Store;

/// Messages, clients and servers of the API (`countersign_api::pb`).
pub use countersign_api::pb;

/// What every service shares. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// The database.
    pub store: Store,
    /// The people file (roles, groups, tokens).
    pub people: Arc<People>,
    /// The server's current policy, parsed (rule specs of new requests).
    pub policy: Arc<spec::PolicyCache>,
    /// Login audit records, deduplicated per person and hour.
    pub logins: Logins,
    /// Becomes true when the server shuts down: endless streams (Decisions) end then, so
    /// that the graceful shutdown does not wait for them forever.
    pub stopping: watch::Receiver<bool>,
    /// The control plane's listeners and database, told to every daemon at registration
    /// (`server::endpoints`).
    pub endpoints: Arc<Vec<pb::Endpoint>>,
}

impl Ctx {
    /// A context over `store` and `people`; `logins` feeds the login audit writer;
    /// `stopping` turns true at shutdown; `endpoints` are told to daemons.
    pub fn new(
        store: Store,
        people: Arc<People>,
        logins: Logins,
        stopping: watch::Receiver<bool>,
        endpoints: Vec<pb::Endpoint>,
    ) -> Ctx {
        Ctx {
            store,
            people,
            policy: Arc::new(spec::PolicyCache::default()),
            logins,
            stopping,
            endpoints: Arc::new(endpoints),
        }
    }

    /// The interceptor for a service of `audience` named `service`.
    pub fn authenticator(&self, audience: Audience, service: &'static str) -> Authenticator {
        Authenticator::new(self.people.clone(), self.logins.clone(), audience, service)
    }
}

/// The five services, each behind its authenticator, added to a tonic server.
pub fn routes(ctx: &Ctx) -> tonic::service::Routes {
    tonic::service::Routes::new(agent::service(ctx))
        .add_service(approval::service(ctx))
        .add_service(policy::service(ctx))
        .add_service(audit::service(ctx))
        .add_service(people::service(ctx))
}
