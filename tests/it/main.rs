//! End-to-end tests: the real hub on port 0, real signed HTTP deliveries,
//! against SQLite and (when configured) PostgreSQL with the same code.

mod fakes;
mod harness;
mod import;

mod api;
mod chat;
mod cli;
mod conversations;
mod destinations;
mod durability;
mod identity;
mod pipeline;
mod segments;
mod platforms;
mod search;
mod suggestions;
mod sync;
mod triggers;
mod webhooks;
mod profiles;
mod tools;
