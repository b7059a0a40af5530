//! Microsoft Teams: a Bot Framework bot (Adaptive Cards with `Action.Execute`) and
//! notification-only Workflows webhooks. (Being built: see docs/chat.md.)

pub mod config;

use std::sync::Arc;

use axum::Router;

use super::{Bridge, Integration};

/// The `teams:` section of the chat file, checked.
#[derive(Clone, Debug)]
pub struct TeamsConfig {}

/// The Teams side of a server.
#[derive(Clone, Debug)]
pub struct Teams {}

impl Teams {
    /// Prepares the clients of `config`.
    pub fn new(_config: TeamsConfig) -> anyhow::Result<Teams> {
        Ok(Teams {})
    }

    /// The outbound sides (bot, webhooks).
    pub fn integrations(&self) -> Vec<Arc<dyn Integration>> {
        Vec::new()
    }
}

/// The bot's messaging endpoint.
pub fn routes(_bridge: &Bridge, _teams: &Teams) -> Router {
    Router::new()
}
