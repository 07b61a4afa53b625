//! hookwarden: a reverse proxy that lets only genuine webhooks reach the app behind it.
//!
//! Each POST on a protected route is read whole, its signature and timestamp verified
//! ([`scheme`]), checked against the replay store ([`store`]) and forwarded byte for byte
//! with trusted headers ([`proxy`]). [`server::run`] starts it from a [`config::Config`].

pub mod admin;
pub mod cli;
pub mod config;
pub mod metrics;
pub mod outcome;
pub mod proxy;
pub mod scheme;
pub mod server;
pub mod store;
