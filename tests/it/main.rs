//! The one integration-test binary: real server, real database, real HTTP.

mod audit;
mod auth;
mod cli;
mod frame;
mod helpers;
mod setup;
