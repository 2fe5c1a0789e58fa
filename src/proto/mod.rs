//! The vocabulary every other folder speaks: the control protocol's
//! JSON-RPC 2.0 framing, and the closed sets (priority) that travel on it.
//!
//! Must not touch: anything else in the crate (this folder imports nothing
//! of loa), sockets, tasks.

#[macro_use]
pub mod words;
pub mod ids;
pub mod policy;
pub mod priority;
pub mod rpc;
pub mod say;
pub mod text;

pub use ids::{ProgramId, ZoneId};
pub use policy::{OnBusy, OnPreempt};
pub use priority::Priority;
pub use rpc::{Request, RpcError, MAX_LINE, METHODS};
