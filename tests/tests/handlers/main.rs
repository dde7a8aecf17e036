//! Each function's handler against the emulator (DynamoDB and SQS as provisioned from template.yaml) and a
//! @connections stub, with events shaped as AWS sends them: what the caller, the recipients and the tables see.
//! One module per function; one binary, so the AWS SDK links once.

mod ack;
mod authorizer;
mod connect;
mod default;
mod directory;
mod disconnect;
mod index;
mod presence_notify;
mod retention;
mod send;
mod sync;
mod warm_up;
