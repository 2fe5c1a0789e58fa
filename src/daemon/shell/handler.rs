//! The control server's handler: a request line's method and params become
//! a typed [`Request`] here (a bad one is answered at once, in plain
//! words) and go to the engine task on the priority lane.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;
use tokio::sync::oneshot;

use super::{Lanes, ShellMsg};
use crate::daemon::core::RequestId;
use crate::daemon::server::{self, Caller, Handler, HandlerFuture};
use crate::live::LiveInput;
use crate::media::PcmFormat;
use crate::proto::{Request, RpcError};

pub struct ShellHandler {
    lanes: Lanes,
    next: AtomicU64,
}

impl ShellHandler {
    pub fn new(lanes: Lanes) -> ShellHandler {
        ShellHandler { lanes, next: AtomicU64::new(1) }
    }

    fn next_id(&self) -> RequestId {
        RequestId(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

fn shutting_down() -> RpcError {
    RpcError::refused("the daemon is shutting down")
}

impl Handler for ShellHandler {
    fn call(&self, caller: Caller, method: String, params: Value) -> HandlerFuture {
        let request = match Request::parse(&method, params) {
            Ok(request) => request,
            Err(e) => return Box::pin(async move { Err(e) }),
        };
        let (reply, answer) = oneshot::channel();
        let sent = self.lanes.urgent.send(ShellMsg::Request { id: self.next_id(), caller, request, reply });
        Box::pin(async move {
            if sent.is_err() {
                return Err(shutting_down());
            }
            let response = answer.await.unwrap_or_else(|_| Err(shutting_down()))?;
            serde_json::to_value(response).map_err(|e| RpcError::internal(format!("cannot write the answer: {e}")))
        })
    }

    fn stream(
        &self,
        caller: Caller,
        id: Value,
        method: String,
        params: Value,
        stream: tokio::net::UnixStream,
        leftover: Vec<u8>,
    ) -> server::StreamFuture {
        let lanes = self.lanes.clone();
        let request_id = self.next_id();
        Box::pin(async move {
            // The program worker reads the connection with blocking reads
            // on its own thread; this task keeps a clone to answer on, and
            // the engine one for notifications.
            let stream = match stream.into_std().and_then(|s| s.set_nonblocking(false).map(|()| s)) {
                Ok(s) => s,
                Err(e) => return tracing::warn!("cannot take over a live connection: {e}"),
            };
            let (answer, notify) = match (stream.try_clone(), stream.try_clone()) {
                (Ok(a), Ok(n)) => (a, n),
                (Err(e), _) | (_, Err(e)) => return tracing::warn!("cannot take over a live connection: {e}"),
            };
            let result = match Request::parse(&method, params) {
                Ok(Request::LiveStart(params)) => {
                    let format = PcmFormat { encoding: params.format, rate: params.rate, channels: params.channels };
                    let input = LiveInput { stream, leftover, format };
                    let (reply, response) = oneshot::channel();
                    let msg = ShellMsg::Live { id: request_id, caller, params, input, notify, reply };
                    match lanes.urgent.send(msg) {
                        Ok(()) => response.await.unwrap_or_else(|_| Err(shutting_down())),
                        Err(_) => Err(shutting_down()),
                    }
                }
                Ok(other) => Err(RpcError::method_not_found(other.method())),
                Err(e) => Err(e),
            };
            let mut line = match result.map(serde_json::to_value) {
                Ok(Ok(value)) => crate::proto::rpc::response_ok(&id, value),
                Ok(Err(e)) => crate::proto::rpc::response_err(Some(&id), &RpcError::internal(e)),
                Err(err) => crate::proto::rpc::response_err(Some(&id), &err),
            };
            line.push('\n');
            crate::live::send_now(&answer, line.as_bytes());
        })
    }
}
