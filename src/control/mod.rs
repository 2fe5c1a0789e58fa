//! Control socket: JSON-RPC 2.0 protocol types, the Unix socket server and
//! the CLI client.

pub mod client;
pub mod protocol;
pub mod server;

#[cfg(test)]
mod tests;

pub use client::{Client, ClientError};
pub use protocol::{Request, RpcError, MAX_LINE, METHODS};
pub use server::{bind, serve, Caller, ControlError, Event, Handler, HandlerFuture, ServerOptions};
