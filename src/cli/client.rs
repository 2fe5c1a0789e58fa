//! Blocking control socket client for the CLI: one typed request at a time
//! ([`Client::call`] with a params type of `proto::request`), plus the
//! typed notifications of a subscription or a live connection.
//!
//! Owns the client side of the line protocol only; printing and exit codes
//! beyond [`ClientError::exit_code`] belong to the command modules.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::ser::SerializeStruct;
use serde::Serialize;
use serde_json::Value;

use crate::proto::broadcast::{LiveEnded, LivePlaying, LIVE_ENDED, LIVE_ON_AIR, LIVE_PLAYING};
use crate::proto::health::{EndpointChange, ENDPOINTS_CHANGED};
use crate::proto::request::{response_of, Method};
use crate::proto::rpc::RpcError;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the loa daemon is not running (cannot connect to {}: {}); start it with `systemctl start loa` or `loa serve`, or if it runs on another config, name that file with --config FILE",
        path.display(),
        crate::proto::text::io_reason(source)
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
    /// An answer or notification of another shape than this loa's
    /// protocol types (a daemon of another version); the text says which
    /// field.
    #[error("{0}")]
    Answer(String),
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

/// A JSON-RPC 2.0 request as the client writes it.
#[derive(Serialize)]
struct RequestLine<'a> {
    jsonrpc: &'static str,
    id: u64,
    method: &'a str,
    #[serde(skip_serializing_if = "Value::is_null")]
    params: Value,
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

    /// Calls the method whose params `params` are and reads its answer as
    /// that method's response type; notifications that arrive meanwhile
    /// are kept for [`Client::next_notification`].
    pub fn call<M: Method>(&mut self, params: &M) -> Result<M::Response, ClientError> {
        let params = serde_json::to_value(params)
            .map_err(|e| ClientError::Protocol(format!("cannot write the {} request ({e})", M::NAME)))?;
        let result = self.call_raw(M::NAME, params)?;
        response_of::<M>(result).map_err(ClientError::Answer)
    }

    /// Sends one request as JSON and waits for its result as JSON: for
    /// tests and tools that send what the typed protocol would not.
    pub fn call_raw(&mut self, method: &str, params: Value) -> Result<Value, ClientError> {
        let id = self.next_id;
        self.next_id += 1;
        let request = RequestLine { jsonrpc: "2.0", id, method, params };
        // A request of strings, a number and JSON params always serializes,
        // on one line (serde_json escapes newlines).
        let mut line = serde_json::to_string(&request).expect("request line serializes");
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
                } if response_id.as_u64() == Some(id) || response_id.is_null() => {
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
    /// subscription or live connection, typed.
    pub fn next_notification(&mut self) -> Result<Notification, ClientError> {
        let (method, params) = self.next_notification_raw()?;
        Notification::parse(method, params)
    }

    /// [`Client::next_notification`] as the method name and JSON params.
    pub fn next_notification_raw(&mut self) -> Result<(String, Value), ClientError> {
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

/// A notification from the daemon, typed by its method.
#[derive(Debug, Clone, PartialEq)]
pub enum Notification {
    /// `endpoints.changed`, after `endpoints.subscribe`.
    EndpointChanged(EndpointChange),
    /// `live.on_air`: the live input itself is on air (after any chime).
    LiveOnAir,
    /// `live.playing`: the live program now plays on a zone it waited for.
    LivePlaying(LivePlaying),
    /// `live.ended`: the live program ended; the connection closes.
    LiveEnded(LiveEnded),
    /// A method this loa does not know (a newer daemon); callers skip it.
    Other { method: String, params: Value },
}

impl Notification {
    /// Reads `params` as the type of `method`'s notification; another shape
    /// is an error naming the field.
    pub fn parse(method: String, params: Value) -> Result<Notification, ClientError> {
        fn typed<T: DeserializeOwned>(method: &str, params: Value) -> Result<T, ClientError> {
            serde_path_to_error::deserialize(params).map_err(|e| {
                ClientError::Answer(format!(
                    "the daemon's {method} notification is not what this loa expects ({}: {}); are the daemon and the CLI the same version?",
                    e.path(),
                    e.inner()
                ))
            })
        }
        Ok(match method.as_str() {
            ENDPOINTS_CHANGED => Notification::EndpointChanged(typed(&method, params)?),
            LIVE_ON_AIR => Notification::LiveOnAir,
            LIVE_PLAYING => Notification::LivePlaying(typed(&method, params)?),
            LIVE_ENDED => Notification::LiveEnded(typed(&method, params)?),
            _ => Notification::Other { method, params },
        })
    }

    pub fn method(&self) -> &str {
        match self {
            Notification::EndpointChanged(_) => ENDPOINTS_CHANGED,
            Notification::LiveOnAir => LIVE_ON_AIR,
            Notification::LivePlaying(_) => LIVE_PLAYING,
            Notification::LiveEnded(_) => LIVE_ENDED,
            Notification::Other { method, .. } => method,
        }
    }
}

/// As `{"method": …, "params": …}`, the line `--json` prints for it.
impl Serialize for Notification {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Empty {}
        let mut line = s.serialize_struct("Notification", 2)?;
        line.serialize_field("method", self.method())?;
        match self {
            Notification::EndpointChanged(change) => line.serialize_field("params", change)?,
            Notification::LiveOnAir => line.serialize_field("params", &Empty {})?,
            Notification::LivePlaying(playing) => line.serialize_field("params", playing)?,
            Notification::LiveEnded(ended) => line.serialize_field("params", ended)?,
            Notification::Other { params, .. } => line.serialize_field("params", params)?,
        }
        line.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{EndpointState, Outcome};
    use serde_json::json;

    #[test]
    fn notifications_are_read_as_their_types_and_written_back_as_they_came() {
        let change = json!({"zone": "thon-1", "endpoint": "loa-cho", "address": "127.0.0.3", "from": "online",
            "to": "offline", "detail": "no report for 15 s", "at": "2026-12-04T06:00:00+07:00"});
        let n = Notification::parse("endpoints.changed".into(), change.clone()).unwrap();
        let Notification::EndpointChanged(c) = &n else { panic!("{n:?}") };
        assert_eq!((c.from, c.to), (EndpointState::Online, EndpointState::Offline));
        assert_eq!(serde_json::to_value(&n).unwrap(), json!({"method": "endpoints.changed", "params": change}));

        let ended = Notification::parse("live.ended".into(), json!({"outcome": "stopped", "error": null})).unwrap();
        assert_eq!(ended, Notification::LiveEnded(LiveEnded { outcome: Outcome::Stopped, error: None }));
        let on_air = Notification::parse("live.on_air".into(), json!({})).unwrap();
        assert_eq!(serde_json::to_string(&on_air).unwrap(), r#"{"method":"live.on_air","params":{}}"#);
        let other = Notification::parse("schedule.changed".into(), json!({"n": 1})).unwrap();
        assert_eq!(serde_json::to_value(&other).unwrap(), json!({"method": "schedule.changed", "params": {"n": 1}}));
    }

    #[test]
    fn a_notification_of_another_shape_is_an_error_naming_the_field_with_exit_1() {
        let err = Notification::parse("live.ended".into(), json!({"outcome": "finished"})).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("live.ended notification") && text.contains("outcome"), "{text}");
        assert!(text.contains(r#"unknown outcome "finished""#), "{text}");
        assert_eq!(err.exit_code(), 1);
    }

    /// A one-connection server that answers the first request with `result`.
    fn answering(result: Value) -> (tempfile::TempDir, std::thread::JoinHandle<Value>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = std::os::unix::net::UnixListener::bind(dir.path().join("s")).unwrap();
        let server = std::thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let request: Value = serde_json::from_str(&line).unwrap();
            let reply = json!({"jsonrpc": "2.0", "id": request["id"], "result": result});
            (&stream).write_all(format!("{reply}\n").as_bytes()).unwrap();
            request
        });
        (dir, server)
    }

    #[test]
    fn a_typed_call_sends_the_params_under_the_method_name_and_reads_the_typed_answer() {
        use crate::proto::broadcast::{StopParams, Stopped};
        use crate::proto::ProgramId;
        let (dir, server) = answering(json!({"stopped": [4]}));
        let mut client = Client::connect(&dir.path().join("s"), Duration::from_secs(5)).unwrap();
        let stopped = client.call(&StopParams { id: ProgramId::new(4), ..Default::default() }).unwrap();
        assert_eq!(stopped, Stopped { stopped: vec![ProgramId::new(4).unwrap()] });
        let request = server.join().unwrap();
        assert_eq!(request["method"], "broadcast.stop");
        assert_eq!(request["params"], json!({"id": 4}));
    }

    #[test]
    fn an_answer_of_another_shape_is_a_plain_error_with_exit_1() {
        let (dir, server) = answering(json!({"version": 1}));
        let mut client = Client::connect(&dir.path().join("s"), Duration::from_secs(5)).unwrap();
        let err = client.call(&crate::proto::status::StatusParams {}).unwrap_err();
        server.join().unwrap();
        let text = err.to_string();
        assert!(text.starts_with("the daemon's answer to status is not what this loa expects"), "{text}");
        assert!(text.contains("version"), "{text}");
        assert_eq!(err.exit_code(), 1);
    }
}
