//! The `teams:` section of the chat file.

use marked_yaml::Spanned;
use serde::Deserialize;

use super::TeamsConfig;
use crate::chat::config::Problem;

/// As written in the file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {}

/// Checks the section; `None` when a problem was noted.
pub(crate) fn build(_raw: &Spanned<Raw>, _problems: &mut Vec<Problem>) -> Option<TeamsConfig> {
    Some(TeamsConfig {})
}
