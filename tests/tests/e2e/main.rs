//! End to end: real websocket clients (and the web client in Chromium) against natter-local running the real
//! function binaries on the emulator. One module per area; one binary, so the AWS SDK links once.

mod attachments;
mod aws_limits;
mod browser;
mod changes;
mod chat;
mod dev;
mod endpoints;
mod gateway;
mod groups;
mod iam;
mod invites;
mod limits;
mod local_endpoints;
mod notifications;
mod order;
mod pages;
mod presence;
mod privacy;
mod pulls;
mod read_lag;
mod reads;
mod reliability;
mod security;
mod soak;
mod typing;
mod work;
