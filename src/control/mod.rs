//! Control socket: JSON-RPC 2.0 protocol types, the Unix socket server and
//! the CLI client.
