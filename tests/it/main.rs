//! The one integration-test binary: real server, real database, real HTTP.

mod auth;
mod cli;
mod frame;
mod helpers;
mod invitations;
mod setup;
mod smtp;
mod users;
