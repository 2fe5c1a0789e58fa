//! The vocabulary every other folder speaks: identifiers, the closed sets
//! (priority, on_busy, on_preempt, outcome, endpoint state, …), and the
//! typed control protocol — one params type per method with its response
//! type (`request`), over JSON-RPC 2.0 framing (`rpc`). The CLI, the daemon
//! and later the web console and the source-system adapter all use these
//! types; nothing else spells a method name or builds a reply by hand.
//!
//! Must not touch: anything else in the crate (this folder imports nothing
//! of loa), sockets, tasks.

#[macro_use]
pub mod words;
pub mod broadcast;
pub mod health;
pub mod history;
pub mod ids;
pub mod keys;
pub mod pcm;
pub mod playlist;
pub mod policy;
pub mod priority;
pub mod reload;
pub mod request;
pub mod rpc;
pub mod say;
pub mod schedule;
pub mod speakers;
pub mod status;
pub mod text;
pub mod zones;

pub use health::{EndpointCounts, EndpointState};
pub use history::Outcome;
pub use ids::{ProgramId, ZoneId};
pub use pcm::{PcmEncoding, PcmFormat};
pub use policy::{OnBusy, OnPreempt};
pub use priority::Priority;
pub use request::{Method, Request, Response, METHODS, STREAM_METHODS};
pub use rpc::{RpcError, MAX_LINE};
pub use zones::ZoneSelection;
