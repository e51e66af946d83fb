//! All integration tests, as one test binary.
//!
//! Each `tests/*.rs` file used to be its own binary, and each linked the whole crate plus
//! rmcp, axum and reqwest with debug info (~280 MB apiece). On a 2-core machine linking 16 of
//! them dominated `cargo test`; one binary links once. The modules below are the former files
//! (`cargo test --test it admin::` runs what `--test admin` did). Tests in one process share
//! it, so none may change process-wide state (environment, working directory, a global
//! logger): every gateway is built from its own config on its own ports, CLI tests run the
//! built binary as a child process with its own environment.

mod common;

mod admin;
mod approvals;
mod audit;
mod auth;
mod config_cli;
mod conformance;
mod demo_server;
mod errors;
mod hostile;
mod identity;
mod kill_switch;
mod modern_vserver;
mod observability;
mod policy;
mod principal_caps;
mod principals;
mod proxy;
mod quota;
mod readme_demo;
mod redis_store;
mod regressions;
mod server_to_client;
mod status_page;
mod tools_cli;
mod upgrade;
mod upstream_failures;
mod vault_cli;
mod virtual_servers;
mod vserver_events;
mod vserver_prompts_resources;
