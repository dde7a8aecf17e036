//! natter-local: natter's whole WebSocket API on one machine, driven by template.yaml.
//!
//! - [`template`]: reads the SAM template (CloudFormation tags included) and resolves intrinsics.
//! - [`stack`]: local names of every resource; each function's environment, the routes, the event sources.
//! - [`provision`]: creates the tables and queues in the emulator, idempotently.
//! - [`runtime`]: the Lambda Runtime API; every function runs as its real binary, scaled out on demand.
//! - [`gateway`]: the WebSocket API (authorizer, routes, route responses, limits) and @connections.
//! - [`poller`]: SQS event sources (batch size, batching window, partial batch failures).
//! - [`stream_source`]: DynamoDB stream event sources (filters, batching, retries from the failed record).
//! - [`streams`]: reading a table's stream through the emulator (shared by `lag` and `stream_source`).
//! - [`local`]: starting and stopping the whole stack.
//! - [`stats`]: AWS calls per function and kind (from the functions' EMF lines), init times, CPU time.
//! - [`coldstart`]: init time of each function binary over repeated starts.
//! - [`emulator`]: the embedded emulator (moto_server from the project's .venv) and SDK configurations for one.
//! - [`process`]: the workspace root, free ports, child processes that die with natter-local.
//! - [`redrive`]: moving dead-lettered jobs back to their queue.
//! - [`lag`]: read lag as DynamoDB has it (a replica of every table, fed from the tables' streams, serves the
//!   eventually consistent reads `--read-lag` behind).
//! - [`proxy`]: between the functions and the emulator: kept-alive connections, and faults injected on purpose.
//! - [`web`]: the reference web client, served at `/` to browsers, and its development tokens.
//! - [`notifications`]: the push notifications the functions publish through SNS, as a device would show them.

pub mod buckets;
pub mod coldstart;
pub mod cors;
pub mod emulator;
pub mod gateway;
pub mod guard;
pub mod iam;
pub mod keys;
pub mod lag;
pub mod local;
pub mod naming;
pub mod notifications;
pub mod poller;
pub mod process;
pub mod provision;
pub mod proxy;
pub mod redrive;
pub mod runtime;
pub mod stack;
pub mod stats;
pub mod stream_source;
pub mod streams;
pub mod template;
mod time;
pub mod web;
