//! The control socket server: accepts operator connections on a Unix socket,
//! reads JSON-RPC lines, hands calls to a [`Handler`] and pushes subscribed
//! events back.
//!
//! Owns connection lifetime, framing limits and back-pressure policy. It must
//! not decide anything about broadcasts, schedules or endpoints — that is the
//! handler's job — and no client may ever slow the daemon down: every write
//! to a client goes through a bounded queue and a timeout, and a client that
//! cannot keep up is dropped.

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch, Notify};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};
use tracing::{debug, error, info, warn};

use crate::proto::rpc::{notification, parse_request, response_err, response_ok, RpcError, MAX_LINE};
use crate::proto::{METHODS, STREAM_METHODS};

/// Lines waiting to be written to one client; a client this far behind is
/// not reading and gets dropped.
const QUEUE_LINES: usize = 256;

/// How long shutdown waits for in-flight calls before cutting connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Who is on the other end of a connection, from SO_PEERCRED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub pid: Option<i32>,
}

pub type HandlerFuture = Pin<Box<dyn std::future::Future<Output = Result<Value, RpcError>> + Send>>;
pub type StreamFuture = Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

/// What the daemon does with a call. Only methods listed in
/// [`METHODS`] reach it.
pub trait Handler: Send + Sync + 'static {
    fn call(&self, caller: Caller, method: String, params: Value) -> HandlerFuture;

    /// A [`STREAM_METHODS`] request: the connection is the handler's from
    /// here on (it answers request `id` on it and reads what follows).
    /// `leftover`: bytes already read past the request line. A handler
    /// without streams answers "unknown method".
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        _caller: Caller,
        id: Value,
        method: String,
        _params: Value,
        mut stream: UnixStream,
        _leftover: Vec<u8>,
    ) -> StreamFuture {
        Box::pin(async move {
            let line = format!("{}\n", response_err(Some(&id), &RpcError::method_not_found(&method)));
            let _ = timeout(Duration::from_secs(1), stream.write_all(line.as_bytes())).await;
        })
    }
}

/// A change pushed to every connection subscribed to `topic`.
#[derive(Debug, Clone)]
pub struct Event {
    /// Matches the prefix of `<topic>.subscribe`, e.g. "endpoints".
    pub topic: String,
    /// Notification method sent to subscribers, e.g. "endpoints.changed".
    pub method: String,
    pub params: Value,
}

#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub path: PathBuf,
    /// Socket file mode, normally 0o660.
    pub mode: u32,
    /// Group that owns the socket file, so its members may connect.
    pub group: Option<String>,
    /// Clients silent this long are dropped; subscribers are exempt.
    pub idle_timeout: Duration,
    /// A single write to a client taking longer drops the client.
    pub write_timeout: Duration,
    /// Connections beyond this get one error line and are closed.
    pub max_clients: usize,
}

impl ServerOptions {
    /// Production defaults for a socket at `path`.
    pub fn new(path: impl Into<PathBuf>) -> ServerOptions {
        ServerOptions {
            path: path.into(),
            mode: 0o660,
            group: None,
            idle_timeout: Duration::from_secs(600),
            write_timeout: Duration::from_secs(5),
            max_clients: 512,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another loa daemon is already listening on {}", path.display())]
    AlreadyListening { path: PathBuf },
    #[error("{} exists and is not a socket; refusing to replace it", path.display())]
    NotASocket { path: PathBuf },
    #[error("cannot remove stale control socket {}: {source}", path.display())]
    RemoveStale { path: PathBuf, source: io::Error },
    #[error("cannot create directory {} for the control socket: {source}", path.display())]
    CreateDir { path: PathBuf, source: io::Error },
    #[error("cannot bind control socket {}: {source}", path.display())]
    Bind { path: PathBuf, source: io::Error },
    #[error("cannot set mode {mode:o} on control socket {}: {source}", path.display())]
    SetMode {
        path: PathBuf,
        mode: u32,
        source: io::Error,
    },
    #[error("group {group:?} for control socket {} does not exist", path.display())]
    UnknownGroup { path: PathBuf, group: String },
    #[error("cannot give control socket {} to group {group:?}: {source}", path.display())]
    SetGroup {
        path: PathBuf,
        group: String,
        source: io::Error,
    },
}

/// Binds the control socket, replacing a stale socket file left by a daemon
/// that died, but never one a live daemon still answers on.
pub async fn bind(options: &ServerOptions) -> Result<UnixListener, ControlError> {
    let path = &options.path;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(ControlError::NotASocket { path: path.clone() })
        }
        Ok(_) => match UnixStream::connect(path).await {
            Ok(_) => return Err(ControlError::AlreadyListening { path: path.clone() }),
            Err(_) => {
                debug!(path = %path.display(), "removing stale control socket");
                std::fs::remove_file(path).map_err(|source| ControlError::RemoveStale {
                    path: path.clone(),
                    source,
                })?;
            }
        },
        Err(_) => {}
    }
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| ControlError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let listener = UnixListener::bind(path).map_err(|source| ControlError::Bind {
        path: path.clone(),
        source,
    })?;
    // Until these two calls the socket carries umask permissions; a group
    // member connecting in that instant is refused, which is harmless.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(options.mode)).map_err(
        |source| ControlError::SetMode {
            path: path.clone(),
            mode: options.mode,
            source,
        },
    )?;
    if let Some(group) = &options.group {
        let gid = group_id(group).ok_or_else(|| ControlError::UnknownGroup {
            path: path.clone(),
            group: group.clone(),
        })?;
        std::os::unix::fs::chown(path, None, Some(gid)).map_err(|source| {
            ControlError::SetGroup {
                path: path.clone(),
                group: group.clone(),
                source,
            }
        })?;
    }
    Ok(listener)
}

/// Looks a group name up in the system group database.
fn group_id(name: &str) -> Option<u32> {
    let name = std::ffi::CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    loop {
        // SAFETY: `group` and `buf` outlive the call; getgrnam_r writes only
        // into them and sets `result` to null or to `&group`.
        let mut group: libc::group = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                name.as_ptr(),
                &mut group,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && buf.len() < 1 << 20 {
            buf.resize(buf.len() * 4, 0);
            continue;
        }
        return (rc == 0 && !result.is_null()).then_some(group.gr_gid);
    }
}

struct Shared {
    handler: Arc<dyn Handler>,
    events: broadcast::Sender<Event>,
    idle_timeout: Duration,
    write_timeout: Duration,
}

/// Serves until `shutdown` becomes true (or its sender is dropped), then
/// stops accepting, gives in-flight calls up to 2 s and removes the socket
/// file.
pub async fn serve(
    listener: UnixListener,
    options: ServerOptions,
    handler: Arc<dyn Handler>,
    events: broadcast::Sender<Event>,
    mut shutdown: watch::Receiver<bool>,
) {
    let shared = Arc::new(Shared {
        handler,
        events,
        idle_timeout: options.idle_timeout,
        write_timeout: options.write_timeout,
    });
    let mut connections = JoinSet::new();
    // Each connection watches its own copy; `shutdown` is borrowed by the
    // select below.
    let connection_shutdown = shutdown.clone();
    loop {
        tokio::select! {
            biased;
            _ = stopping(&mut shutdown) => break,
            Some(joined) = connections.join_next(), if !connections.is_empty() => {
                if let Err(e) = joined {
                    error!(error = %e, "control connection task failed");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) if connections.len() >= options.max_clients => {
                    refuse_busy(&stream, options.max_clients);
                }
                Ok((stream, _)) => {
                    connections.spawn(connection(
                        stream,
                        shared.clone(),
                        connection_shutdown.clone(),
                    ));
                }
                Err(e) => {
                    // Usually out of file descriptors; pausing keeps this
                    // loop from spinning while the condition lasts.
                    warn!(error = %e, "control socket accept failed");
                    sleep(Duration::from_millis(100)).await;
                }
            },
        }
    }
    drop(listener);
    let drained = timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        info!(
            connections = connections.len(),
            "control clients still busy after {SHUTDOWN_GRACE:?}; closing them"
        );
        connections.shutdown().await;
    }
    match std::fs::remove_file(&options.path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => warn!(path = %options.path.display(), error = %e, "cannot remove control socket"),
    }
}

/// Resolves once shutdown is requested or nobody can request it any more.
/// (`watch::Receiver::wait_for` would hold a non-`Send` guard across the
/// select, making the tasks unspawnable.)
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    loop {
        let stop = *shutdown.borrow_and_update();
        if stop || shutdown.changed().await.is_err() {
            return;
        }
    }
}

fn refuse_busy(stream: &UnixStream, max_clients: usize) {
    warn!(max_clients, "control socket full; refusing a client");
    let err = RpcError::refused(format!(
        "too many control clients ({max_clients} connected); try again later"
    ));
    // A fresh socket's send buffer is empty, so one short line fits without
    // waiting; if it somehow does not, the client just sees the close.
    let _ = stream.try_write(format!("{}\n", response_err(None, &err)).as_bytes());
}

/// Why a connection ended; the io errors are read by the `Debug` log line.
#[derive(Debug)]
#[allow(dead_code)]
enum Disconnect {
    Eof,
    Shutdown,
    Idle,
    ReadFailed(io::Error),
    WriteFailed(io::Error),
    WriteTimeout,
    QueueFull,
    SlowSubscriber,
    /// A stream method: the connection goes to the handler.
    Upgrade(Box<Upgrade>),
}

/// A [`STREAM_METHODS`] request and what the connection had read past it.
#[derive(Debug)]
struct Upgrade {
    id: Value,
    method: String,
    params: Value,
    read_half: Option<OwnedReadHalf>,
    leftover: Vec<u8>,
}

impl Disconnect {
    /// Ends that are the client's fault and worth an operator's attention.
    fn is_forced(&self) -> bool {
        matches!(
            self,
            Disconnect::WriteTimeout | Disconnect::QueueFull | Disconnect::SlowSubscriber
        )
    }
}

async fn connection(stream: UnixStream, shared: Arc<Shared>, shutdown: watch::Receiver<bool>) {
    let caller = match stream.peer_cred() {
        Ok(cred) => Caller {
            uid: cred.uid(),
            gid: cred.gid(),
            pid: cred.pid(),
        },
        Err(e) => {
            info!(error = %e, "cannot read control client credentials; closing");
            return;
        }
    };
    debug!(uid = caller.uid, pid = ?caller.pid, "control client connected");
    let (read_half, mut write_half) = stream.into_split();
    let (queue, queued) = mpsc::channel(QUEUE_LINES);
    let slow = Arc::new(Notify::new());
    let session = Session {
        caller,
        shared: shared.clone(),
        queue,
        slow: slow.clone(),
        subscriptions: JoinSet::new(),
        topics: HashSet::new(),
        requests: 0,
    };
    let reason = {
        let mut writer = std::pin::pin!(write_lines(&mut write_half, queued, shared.write_timeout));
        tokio::select! {
            reason = session.run(read_half, shutdown) => match reason {
                // The client is gone or we are closing politely: what is
                // already queued (the last responses) still goes out.
                Disconnect::Eof | Disconnect::Shutdown | Disconnect::Idle => {
                    match timeout(shared.write_timeout, &mut writer).await {
                        Ok(Disconnect::Eof) | Err(_) => reason,
                        Ok(write_reason) => write_reason,
                    }
                }
                reason => reason,
            },
            reason = &mut writer => reason,
            _ = slow.notified() => Disconnect::SlowSubscriber,
        }
    };
    if let Disconnect::Upgrade(mut upgrade) = reason {
        // The stream request was the connection's first, so nothing was
        // queued for the writer: the connection is whole again.
        let Some(read_half) = upgrade.read_half.take() else { return };
        match read_half.reunite(write_half) {
            Ok(stream) => {
                info!(uid = caller.uid, pid = ?caller.pid, method = %upgrade.method, "control connection becomes a stream");
                let Upgrade { id, method, params, leftover, .. } = *upgrade;
                shared.handler.stream(caller, id, method, params, stream, leftover).await;
            }
            Err(e) => error!(error = %e, "cannot reunite a control connection"),
        }
        return;
    }
    if reason.is_forced() {
        info!(uid = caller.uid, pid = ?caller.pid, ?reason, "dropped control client that does not read");
    } else {
        debug!(uid = caller.uid, pid = ?caller.pid, ?reason, "control client disconnected");
    }
}

/// Writes queued lines until the queue closes; `Eof` means all written.
async fn write_lines(
    out: &mut OwnedWriteHalf,
    mut queued: mpsc::Receiver<String>,
    write_timeout: Duration,
) -> Disconnect {
    while let Some(line) = queued.recv().await {
        match timeout(write_timeout, out.write_all(line.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Disconnect::WriteFailed(e),
            Err(_) => return Disconnect::WriteTimeout,
        }
    }
    Disconnect::Eof
}

/// The reading side of one connection.
struct Session {
    caller: Caller,
    shared: Arc<Shared>,
    queue: mpsc::Sender<String>,
    /// Notified by a subscription that cannot keep up.
    slow: Arc<Notify>,
    /// Forwarders of subscribed events; dropping the session aborts them.
    subscriptions: JoinSet<()>,
    topics: HashSet<String>,
    /// Requests handled so far (a stream method must come first).
    requests: u64,
}

impl Session {
    async fn run(
        mut self,
        read_half: OwnedReadHalf,
        mut shutdown: watch::Receiver<bool>,
    ) -> Disconnect {
        let mut lines = LineReader::new(read_half);
        let idle = sleep(self.shared.idle_timeout);
        tokio::pin!(idle);
        loop {
            let line = tokio::select! {
                biased;
                _ = stopping(&mut shutdown) => return Disconnect::Shutdown,
                _ = &mut idle, if self.topics.is_empty() => return Disconnect::Idle,
                line = lines.next_line() => line,
            };
            idle.as_mut()
                .reset(Instant::now() + self.shared.idle_timeout);
            let outcome = match line {
                Ok(Some(Line::Complete(bytes))) => self.handle_line(&bytes).await,
                Ok(Some(Line::TooLong)) => {
                    info!(
                        uid = self.caller.uid,
                        "control request longer than {MAX_LINE} bytes refused"
                    );
                    self.send(response_err(None, &RpcError::line_too_long()))
                }
                Ok(None) => return Disconnect::Eof,
                Err(e) => return Disconnect::ReadFailed(e),
            };
            match outcome {
                Ok(()) => {}
                Err(Disconnect::Upgrade(mut upgrade)) => {
                    let reader = lines.into_inner();
                    upgrade.leftover = reader.buffer().to_vec();
                    upgrade.read_half = Some(reader.into_inner());
                    return Disconnect::Upgrade(upgrade);
                }
                Err(reason) => return reason,
            }
        }
    }

    async fn handle_line(&mut self, bytes: &[u8]) -> Result<(), Disconnect> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(());
        }
        let request = match parse_request(bytes) {
            Ok(request) => request,
            Err(err) => {
                info!(uid = self.caller.uid, error = %err, "bad control request");
                return self.send(response_err(None, &err));
            }
        };
        if !METHODS.contains(&request.method.as_str()) {
            info!(uid = self.caller.uid, method = %request.method, "unknown control method");
            return match &request.id {
                Some(id) => self.send(response_err(
                    Some(id),
                    &RpcError::method_not_found(&request.method),
                )),
                None => Ok(()),
            };
        }
        self.requests += 1;
        if STREAM_METHODS.contains(&request.method.as_str()) {
            let refuse = match (&request.id, self.requests) {
                (None, _) => Some(format!("{} needs an id: its answer says whether the stream is taken", request.method)),
                (_, n) if n > 1 => Some(format!("{} must be the first request on its connection", request.method)),
                _ => None,
            };
            if let Some(message) = refuse {
                info!(uid = self.caller.uid, "{message}");
                return self.send(response_err(request.id.as_ref(), &RpcError::invalid_request(message)));
            }
            return Err(Disconnect::Upgrade(Box::new(Upgrade {
                id: request.id.unwrap_or(Value::Null),
                method: request.method,
                params: request.params,
                read_half: None,
                leftover: Vec::new(),
            })));
        }
        let topic = request.method.strip_suffix(".subscribe").map(str::to_owned);
        // Subscribe before the handler takes its snapshot, so no event
        // between snapshot and subscription is lost (one may arrive twice).
        let events = topic.as_ref().map(|_| self.shared.events.subscribe());
        let result = self.call(request.method, request.params).await;
        if let Some(id) = &request.id {
            let line = match &result {
                Ok(value) => response_ok(id, value.clone()),
                Err(err) => response_err(Some(id), err),
            };
            self.send(line)?;
        }
        if let (Ok(_), Some(topic), Some(events)) = (&result, topic, events) {
            if self.topics.insert(topic.clone()) {
                self.subscriptions.spawn(forward_events(
                    topic,
                    events,
                    self.queue.clone(),
                    self.slow.clone(),
                ));
            }
        }
        Ok(())
    }

    /// Runs the handler in its own task: a panicking handler costs one
    /// error response, and a call survives its client hanging up.
    async fn call(&self, method: String, params: Value) -> Result<Value, RpcError> {
        let handler = self.shared.handler.clone();
        let caller = self.caller;
        let name = method.clone();
        match tokio::spawn(async move { handler.call(caller, method, params).await }).await {
            Ok(result) => result,
            Err(e) => {
                error!(method = %name, error = %e, "control handler failed");
                Err(RpcError::internal(format!(
                    "{name} failed; see the daemon log"
                )))
            }
        }
    }

    fn send(&self, line: String) -> Result<(), Disconnect> {
        enqueue(&self.queue, line).map_err(|full| {
            if full {
                Disconnect::QueueFull
            } else {
                Disconnect::Eof
            }
        })
    }
}

/// Queues a line for the writer; `Err(true)` when the client is too far
/// behind, `Err(false)` when the writer is gone.
fn enqueue(queue: &mpsc::Sender<String>, mut line: String) -> Result<(), bool> {
    line.push('\n');
    queue
        .try_send(line)
        .map_err(|e| matches!(e, mpsc::error::TrySendError::Full(_)))
}

async fn forward_events(
    topic: String,
    mut events: broadcast::Receiver<Event>,
    queue: mpsc::Sender<String>,
    slow: Arc<Notify>,
) {
    loop {
        match events.recv().await {
            Ok(event) if event.topic == topic => {
                match enqueue(&queue, notification(&event.method, event.params)) {
                    Ok(()) => {}
                    Err(true) => return slow.notify_one(),
                    Err(false) => return,
                }
            }
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                debug!(%topic, missed, "subscriber fell behind the event stream");
                return slow.notify_one();
            }
            // Nobody publishes any more; the connection still answers calls.
            Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

enum Line {
    Complete(Vec<u8>),
    TooLong,
}

/// Reads newline-terminated lines of at most [`MAX_LINE`] bytes. Cancel
/// safe: a partial line stays in `self` when a `select!` drops the future.
struct LineReader<R> {
    inner: BufReader<R>,
    line: Vec<u8>,
    /// Skipping the rest of a line already answered with `TooLong`.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    /// The reader, with whatever it buffered past the last line.
    fn into_inner(self) -> BufReader<R> {
        self.inner
    }

    fn new(inner: R) -> Self {
        LineReader {
            inner: BufReader::new(inner),
            line: Vec::new(),
            discarding: false,
        }
    }

    /// `None` at end of stream.
    async fn next_line(&mut self) -> io::Result<Option<Line>> {
        loop {
            let available = self.inner.fill_buf().await?;
            if available.is_empty() {
                self.discarding = false;
                return Ok(
                    (!self.line.is_empty()).then(|| Line::Complete(std::mem::take(&mut self.line)))
                );
            }
            let newline = available.iter().position(|&b| b == b'\n');
            let (take, used) = match newline {
                Some(at) => (at, at + 1),
                None => (available.len(), available.len()),
            };
            if self.discarding {
                self.inner.consume(used);
                self.discarding = newline.is_none();
                continue;
            }
            if self.line.len() + take > MAX_LINE {
                self.inner.consume(used);
                self.line.clear();
                self.discarding = newline.is_none();
                return Ok(Some(Line::TooLong));
            }
            self.line.extend_from_slice(&available[..take]);
            self.inner.consume(used);
            if newline.is_some() {
                if self.line.last() == Some(&b'\r') {
                    self.line.pop();
                }
                return Ok(Some(Line::Complete(std::mem::take(&mut self.line))));
            }
        }
    }
}

#[cfg(test)]
mod tests;
