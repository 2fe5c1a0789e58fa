//! Blocking control socket client for the CLI: one request at a time, plus
//! a notification stream for `--watch`.
//!
//! Owns the client side of the line protocol only; printing and exit codes
//! beyond [`ClientError::exit_code`] belong to `main.rs`.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::proto::rpc::RpcError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the loa daemon is not running (cannot connect to {}: {source}); start it with `systemctl start loa` or `loa serve`",
        path.display()
    )]
    Unreachable { path: PathBuf, source: io::Error },
    #[error("the loa daemon did not answer {method} within {timeout:?}")]
    Timeout { method: String, timeout: Duration },
    /// The daemon answered with an error; its message is shown as is.
    #[error("{0}")]
    Rpc(RpcError),
    #[error("lost the connection to the loa daemon: {0}")]
    Io(#[from] io::Error),
    #[error("the loa daemon sent something unexpected: {0}")]
    Protocol(String),
}

impl ClientError {
    /// 2 when there is no daemon to talk to, so scripts can tell "down"
    /// from "said no"; 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => 2,
            _ => 1,
        }
    }
}

pub struct Client {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
    timeout: Duration,
    /// Notifications that arrived while a call waited for its response.
    pending: VecDeque<(String, Value)>,
}

enum Message {
    Response {
        id: Value,
        result: Result<Value, RpcError>,
    },
    Notification {
        method: String,
        params: Value,
    },
}

impl Client {
    /// Connects; `timeout` bounds each later call's wait for its answer.
    pub fn connect(path: &Path, timeout: Duration) -> Result<Client, ClientError> {
        let unreachable = |source| ClientError::Unreachable {
            path: path.to_path_buf(),
            source,
        };
        let stream = UnixStream::connect(path).map_err(unreachable)?;
        let timeout = timeout.max(Duration::from_millis(1));
        stream.set_write_timeout(Some(timeout))?;
        let reader = BufReader::new(stream.try_clone()?);
        Ok(Client {
            writer: stream,
            reader,
            next_id: 1,
            timeout,
            pending: VecDeque::new(),
        })
    }

    /// Sends one request and waits for its response; notifications that
    /// arrive meanwhile are kept for [`Client::next_notification`].
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let mut request = json!({ "jsonrpc": "2.0", "id": id, "method": method });
        if !params.is_null() {
            request["params"] = params;
        }
        let mut line = request.to_string();
        line.push('\n');
        self.writer.write_all(line.as_bytes())?;
        self.reader.get_ref().set_read_timeout(Some(self.timeout))?;
        loop {
            let message = self.read_message().map_err(|e| match e {
                ClientError::Io(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    ClientError::Timeout {
                        method: method.to_owned(),
                        timeout: self.timeout,
                    }
                }
                e => e,
            })?;
            match message {
                Message::Notification { method, params } => {
                    self.pending.push_back((method, params))
                }
                // The server answers requests in order and cannot always
                // read the id of a malformed one, hence null counts as ours.
                Message::Response {
                    id: response_id,
                    result,
                } if response_id == json!(id) || response_id.is_null() => {
                    return result.map_err(ClientError::Rpc)
                }
                Message::Response { id: other, .. } => {
                    return Err(ClientError::Protocol(format!(
                        "response to request {other} while waiting for {id}"
                    )))
                }
            }
        }
    }

    /// Another handle on the connection, for writing a data stream after a
    /// stream method's answer (`live.start`); writes on it never time out.
    pub fn data_stream(&self) -> io::Result<UnixStream> {
        let stream = self.writer.try_clone()?;
        stream.set_write_timeout(None)?;
        Ok(stream)
    }

    /// Waits, without time limit, for the next notification of a
    /// subscription made with [`Client::call`].
    pub fn next_notification(&mut self) -> Result<(String, Value), ClientError> {
        if let Some(next) = self.pending.pop_front() {
            return Ok(next);
        }
        self.reader.get_ref().set_read_timeout(None)?;
        match self.read_message()? {
            Message::Notification { method, params } => Ok((method, params)),
            Message::Response { id, .. } => Err(ClientError::Protocol(format!(
                "response to request {id} nobody is waiting for"
            ))),
        }
    }

    fn read_message(&mut self) -> Result<Message, ClientError> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(ClientError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                )));
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                break;
            }
        }
        let mut value: Value = serde_json::from_slice(&line)
            .map_err(|e| ClientError::Protocol(format!("not JSON ({e})")))?;
        let Some(object) = value.as_object_mut() else {
            return Err(ClientError::Protocol(
                "a JSON value that is not an object".into(),
            ));
        };
        if let Some(method) = object.get("method").and_then(Value::as_str) {
            if !object.contains_key("id") {
                return Ok(Message::Notification {
                    method: method.to_owned(),
                    params: object.remove("params").unwrap_or(Value::Null),
                });
            }
        }
        let id = object.remove("id").unwrap_or(Value::Null);
        let result = match (object.remove("result"), object.remove("error")) {
            (Some(result), None) => Ok(result),
            (None, Some(error)) => Err(serde_json::from_value::<RpcError>(error)
                .map_err(|e| ClientError::Protocol(format!("malformed error object ({e})")))?),
            _ => {
                return Err(ClientError::Protocol(
                    "a response with neither or both of result and error".into(),
                ))
            }
        };
        Ok(Message::Response { id, result })
    }
}
