//! The one integration-test binary: real server, real database, real HTTP.

mod account;
mod admin;
mod audit;
mod auth;
mod authz;
mod browser;
mod cli;
mod confirm;
mod disk_full;
mod frame;
mod fuzz;
mod groups;
mod hardening;
mod helpers;
mod invitations;
mod lockout;
mod matrix;
mod outage;
mod outbox_crash;
mod pools;
mod proxies;
mod roles;
mod setup;
mod smtp;
mod throttle;
mod users;
