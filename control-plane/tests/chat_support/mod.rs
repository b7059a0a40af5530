//! Local servers that speak the chats' real protocols, for the chat tests: a Slack Web API
//! and Socket Mode peer ([`slack`]), a Bot Framework peer ([`botframework`]).

#![allow(dead_code, reason = "each test file uses a part")]

pub mod botframework;
pub mod slack;
