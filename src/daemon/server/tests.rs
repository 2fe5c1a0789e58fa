//! Server and client together over real Unix sockets in temp directories.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream as StdUnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{broadcast, watch};

use super::*;
use crate::cli::client::{Client, ClientError};
use crate::proto::rpc::{RpcError, MAX_LINE};

/// Answers `status` with {"ok":true}, echoes `history` params, and
/// remembers who called.
#[derive(Default)]
struct TestHandler {
    last_caller: Mutex<Option<Caller>>,
}

impl Handler for TestHandler {
    fn call(&self, caller: Caller, method: String, params: Value) -> HandlerFuture {
        *self.last_caller.lock().unwrap() = Some(caller);
        Box::pin(async move {
            match method.as_str() {
                "status" => Ok(json!({ "ok": true })),
                "history" => Ok(params),
                "endpoints.subscribe" => Ok(json!({ "endpoints": [] })),
                _ => Err(RpcError::refused(format!(
                    "{method} is not in the test handler"
                ))),
            }
        })
    }
}

struct TestServer {
    _dir: tempfile::TempDir,
    path: PathBuf,
    handler: Arc<TestHandler>,
    events: broadcast::Sender<Event>,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn options(path: &Path) -> ServerOptions {
    ServerOptions {
        write_timeout: Duration::from_secs(1),
        ..ServerOptions::new(path)
    }
}

async fn start_with(configure: impl FnOnce(&mut ServerOptions)) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run/loa.sock");
    let mut options = options(&path);
    configure(&mut options);
    let listener = bind(&options).await.unwrap();
    let handler = Arc::new(TestHandler::default());
    let (events, _) = broadcast::channel(64);
    let (shutdown, stop) = watch::channel(false);
    let task = tokio::spawn(serve(
        listener,
        options,
        handler.clone(),
        events.clone(),
        stop,
    ));
    TestServer {
        _dir: dir,
        path,
        handler,
        events,
        shutdown,
        task,
    }
}

async fn start() -> TestServer {
    start_with(|_| {}).await
}

/// Runs blocking client code off the runtime's worker threads.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

fn connect(path: &Path) -> Client {
    Client::connect(path, Duration::from_secs(5)).unwrap()
}

/// A raw connection for sending what `Client` never would.
fn raw(path: &Path) -> (StdUnixStream, BufReader<StdUnixStream>) {
    let stream = StdUnixStream::connect(path).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reader = BufReader::new(stream.try_clone().unwrap());
    (stream, reader)
}

fn read_json(reader: &mut BufReader<StdUnixStream>) -> Value {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    serde_json::from_str(&line).unwrap()
}

const STATUS: &[u8] = b"{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":\"status\"}\n";

#[tokio::test(flavor = "multi_thread")]
async fn status_round_trips_through_the_client() {
    let server = start().await;
    let path = server.path.clone();
    let (status, history) = blocking(move || {
        let mut client = connect(&path);
        (
            client.call_raw("status", Value::Null).unwrap(),
            client.call_raw("history", json!({ "limit": 5 })).unwrap(),
        )
    })
    .await;
    assert_eq!(status, json!({ "ok": true }));
    assert_eq!(history, json!({ "limit": 5 }));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_line_gets_parse_error_and_connection_keeps_working() {
    let server = start().await;
    let path = server.path.clone();
    let (error, status) = blocking(move || {
        let (mut stream, mut reader) = raw(&path);
        stream.write_all(b"this is { not json\n").unwrap();
        let error = read_json(&mut reader);
        stream.write_all(STATUS).unwrap();
        (error, read_json(&mut reader))
    })
    .await;
    assert_eq!(error["error"]["code"], -32700);
    assert_eq!(error["id"], Value::Null);
    assert_eq!(status["result"], json!({ "ok": true }));
}

#[tokio::test(flavor = "multi_thread")]
async fn megabyte_line_is_refused_and_connection_keeps_working() {
    let server = start().await;
    let path = server.path.clone();
    let (error, status) = blocking(move || {
        let (mut stream, mut reader) = raw(&path);
        let mut huge = vec![b'x'; 1 << 20];
        huge.push(b'\n');
        stream.write_all(&huge).unwrap();
        let error = read_json(&mut reader);
        stream.write_all(STATUS).unwrap();
        (error, read_json(&mut reader))
    })
    .await;
    assert_eq!(error["error"]["code"], -32600);
    assert_eq!(
        error["error"]["message"],
        "request longer than 65536 bytes refused"
    );
    assert_eq!(status["id"], 99);
    assert_eq!(status["result"], json!({ "ok": true }));
}

#[tokio::test(flavor = "multi_thread")]
async fn line_of_exactly_max_length_is_accepted() {
    let server = start().await;
    let path = server.path.clone();
    let reply = blocking(move || {
        let (mut stream, mut reader) = raw(&path);
        let head = br#"{"jsonrpc":"2.0","id":1,"method":"history","params":{"pad":""#;
        let tail = br#""}}"#;
        let mut line = head.to_vec();
        line.resize(MAX_LINE - tail.len(), b'a');
        line.extend_from_slice(tail);
        assert_eq!(line.len(), MAX_LINE);
        line.push(b'\n');
        stream.write_all(&line).unwrap();
        read_json(&mut reader)
    })
    .await;
    assert_eq!(reply["id"], 1);
    assert!(reply["result"]["pad"].as_str().unwrap().len() > 60_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_method_error_lists_the_methods() {
    let server = start().await;
    let path = server.path.clone();
    let err = blocking(move || connect(&path).call_raw("foo", Value::Null).unwrap_err()).await;
    let ClientError::Rpc(err) = &err else {
        panic!("expected an rpc error, got {err:?}")
    };
    assert_eq!(err.code, -32601);
    assert!(
        err.message.contains(r#"unknown method "foo""#),
        "{}",
        err.message
    );
    assert!(err.message.contains("schedule.add"), "{}", err.message);
}

#[tokio::test(flavor = "multi_thread")]
async fn notification_without_id_gets_no_reply() {
    let server = start().await;
    let path = server.path.clone();
    let first = blocking(move || {
        let (mut stream, mut reader) = raw(&path);
        stream
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"status\"}\n")
            .unwrap();
        stream
            .write_all(b"{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"}\n")
            .unwrap();
        stream.write_all(STATUS).unwrap();
        read_json(&mut reader)
    })
    .await;
    assert_eq!(first["id"], 99);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_clients_all_get_status() {
    let server = start().await;
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let path = server.path.clone();
            tokio::task::spawn_blocking(move || connect(&path).call_raw("status", Value::Null))
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap().unwrap(), json!({ "ok": true }));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_receives_events_of_its_topic_only() {
    let server = start().await;
    let path = server.path.clone();
    let events = server.events.clone();
    let (snapshot, received) = blocking(move || {
        let mut client = connect(&path);
        let snapshot = client.call_raw("endpoints.subscribe", Value::Null).unwrap();
        for (topic, n) in [("schedule", 1), ("endpoints", 2)] {
            events
                .send(Event {
                    topic: topic.into(),
                    method: format!("{topic}.changed"),
                    params: json!({ "n": n }),
                })
                .unwrap();
        }
        (snapshot, client.next_notification_raw().unwrap())
    })
    .await;
    assert_eq!(snapshot, json!({ "endpoints": [] }));
    assert_eq!(
        received,
        ("endpoints.changed".to_string(), json!({ "n": 2 }))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriber_that_never_reads_is_dropped_without_slowing_others() {
    let server = start().await;
    let path = server.path.clone();
    let mut subscriber = StdUnixStream::connect(&path).unwrap();
    subscriber
        .write_all(b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"endpoints.subscribe\"}\n")
        .unwrap();
    // Let the subscription take effect before publishing.
    let mut probe = connect(&path);
    sleep(Duration::from_millis(100)).await;

    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let prober = tokio::task::spawn_blocking(move || {
        let mut slowest = Duration::ZERO;
        let mut calls = 0;
        while done_rx.try_recv().is_err() || calls < 10 {
            let began = Instant::now();
            probe.call_raw("status", Value::Null).unwrap();
            slowest = slowest.max(began.elapsed());
            calls += 1;
        }
        (slowest, calls)
    });
    let padding = "x".repeat(1024);
    for n in 0..10_000 {
        let _ = server.events.send(Event {
            topic: "endpoints".into(),
            method: "endpoints.changed".into(),
            params: json!({ "n": n, "padding": padding }),
        });
        if n % 100 == 0 {
            sleep(Duration::from_millis(1)).await;
        }
    }
    done_tx.send(()).unwrap();
    let (slowest, calls) = prober.await.unwrap();
    assert!(
        slowest < Duration::from_millis(100),
        "slowest status call took {slowest:?} ({calls} calls)"
    );

    let reached_eof = blocking(move || {
        subscriber
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut sink = Vec::new();
        subscriber.read_to_end(&mut sink).is_ok()
    })
    .await;
    assert!(reached_eof, "the slow subscriber was not disconnected");
}

#[tokio::test(flavor = "multi_thread")]
async fn socket_file_has_mode_0660() {
    let server = start().await;
    let mode = std::fs::metadata(&server.path)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
}

#[tokio::test(flavor = "multi_thread")]
async fn stale_socket_file_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loa.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let listener = bind(&options(&path)).await.unwrap();
    let (_stop, stop_rx) = watch::channel(false);
    let (events, _) = broadcast::channel(4);
    tokio::spawn(serve(
        listener,
        options(&path),
        Arc::new(TestHandler::default()),
        events,
        stop_rx,
    ));
    let status = blocking(move || connect(&path).call_raw("status", Value::Null).unwrap()).await;
    assert_eq!(status, json!({ "ok": true }));
}

#[tokio::test(flavor = "multi_thread")]
async fn regular_file_at_socket_path_is_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("loa.sock");
    std::fs::write(&path, "precious").unwrap();
    let err = bind(&options(&path)).await.unwrap_err();
    assert!(matches!(err, ControlError::NotASocket { .. }), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "precious");
}

#[tokio::test(flavor = "multi_thread")]
async fn second_bind_while_serving_fails_with_already_listening() {
    let server = start().await;
    let err = bind(&options(&server.path)).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "another loa daemon is already listening on {}",
            server.path.display()
        )
    );
    assert!(server.path.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_group_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut options = options(&dir.path().join("loa.sock"));
    options.group = Some("no-such-group-for-loa-tests".into());
    let err = bind(&options).await.unwrap_err();
    assert!(matches!(err, ControlError::UnknownGroup { .. }), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn caller_uid_is_the_connecting_process_uid() {
    let server = start().await;
    let path = server.path.clone();
    blocking(move || connect(&path).call_raw("status", Value::Null).unwrap()).await;
    let caller = server.handler.last_caller.lock().unwrap().unwrap();
    assert_eq!(caller.uid, unsafe { libc::getuid() });
    assert_eq!(caller.pid, Some(std::process::id() as i32));
}

#[test]
fn connecting_to_a_missing_socket_is_unreachable_with_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.sock");
    let err = Client::connect(&path, Duration::from_secs(1))
        .err()
        .unwrap();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err}");
    assert_eq!(err.exit_code(), 2);
    assert!(err
        .to_string()
        .starts_with("the loa daemon is not running (cannot connect to "));
    assert!(err.to_string().contains("missing.sock"));
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_errors_exit_with_code_1() {
    let server = start().await;
    let path = server.path.clone();
    let err = blocking(move || connect(&path).call_raw("schedule.add", json!({})).unwrap_err()).await;
    assert_eq!(err.to_string(), "schedule.add is not in the test handler");
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_client_is_disconnected() {
    let server = start_with(|o| o.idle_timeout = Duration::from_millis(200)).await;
    let path = server.path.clone();
    let closed = blocking(move || {
        let (_stream, mut reader) = raw(&path);
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest).map(|n| n == 0)
    })
    .await;
    assert!(closed.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn client_beyond_max_clients_gets_an_error_line() {
    let server = start_with(|o| o.max_clients = 1).await;
    let path = server.path.clone();
    let reply = blocking(move || {
        let mut first = connect(&path);
        first.call_raw("status", Value::Null).unwrap();
        let (_stream, mut reader) = raw(&path);
        read_json(&mut reader)
    })
    .await;
    assert_eq!(reply["error"]["code"], -32000);
    assert!(reply["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many control clients"));
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_removes_the_socket_file() {
    let server = start().await;
    let path = server.path.clone();
    let idle_client = StdUnixStream::connect(&path).unwrap();
    server.shutdown.send(true).unwrap();
    timeout(Duration::from_secs(3), server.task)
        .await
        .expect("serve returned within the grace period")
        .unwrap();
    assert!(!path.exists());
    drop(idle_client);
}
