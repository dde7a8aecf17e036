//! natter-local: natter's whole WebSocket API on one machine, driven by template.yaml.
//!
//! - [`template`]: reads the SAM template (CloudFormation tags included) and resolves intrinsics.
//! - [`stack`]: local names of every resource; each function's environment, the routes, the event sources.
//! - [`provision`]: creates the tables and queues in the emulator, idempotently.
//! - [`moto`]: the embedded emulator (moto_server from the project's .venv).
//! - [`testkit`]: what handler and end-to-end tests share (emulator per binary, fresh stacks, stubs, events).

pub mod moto;
pub mod provision;
pub mod stack;
pub mod template;
pub mod testkit;
