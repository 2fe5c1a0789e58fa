//! Probe executors against loopback listeners started by the tests themselves.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::health::{run_probe, Probe, ProbeRequest};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn request(probe: Probe, timeout: Duration) -> ProbeRequest {
    ProbeRequest {
        zone: "thon-1".into(),
        endpoint: "a".into(),
        address: LOOPBACK,
        probe,
        timeout,
    }
}

/// One-shot HTTP server on loopback answering `answer` after reading the
/// request head; returns the URL and what the server received.
async fn http_server(answer: &'static [u8]) -> (String, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut received = Vec::new();
        let mut buf = [0u8; 512];
        while !received.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            received.extend_from_slice(&buf[..n]);
        }
        stream.write_all(answer).await.unwrap();
        String::from_utf8(received).unwrap()
    });
    (format!("http://127.0.0.1:{port}/status"), server)
}

#[tokio::test]
async fn tcp_probe_to_a_listening_port_succeeds() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let rtt = run_probe(&request(Probe::Tcp { port }, Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(rtt < Duration::from_secs(2));
}

#[tokio::test]
async fn tcp_probe_to_a_closed_port_is_refused() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let err = run_probe(&request(Probe::Tcp { port }, Duration::from_secs(2)))
        .await
        .unwrap_err();
    assert_eq!(err, "connection refused");
}

#[tokio::test]
async fn http_probe_with_200_succeeds_and_sends_a_plain_get() {
    let (url, server) = http_server(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
    run_probe(&request(
        Probe::Http { url: url.clone() },
        Duration::from_secs(2),
    ))
    .await
    .unwrap();
    let received = server.await.unwrap();
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches("/status");
    assert!(
        received.starts_with("GET /status HTTP/1.0\r\n"),
        "{received}"
    );
    assert!(
        received.contains(&format!("\r\nHost: {host}\r\n")),
        "{received}"
    );
}

#[tokio::test]
async fn http_probe_with_500_fails() {
    let (url, _server) = http_server(b"HTTP/1.1 500 Internal Server Error\r\n\r\n").await;
    let err = run_probe(&request(
        Probe::Http { url: url.clone() },
        Duration::from_secs(2),
    ))
    .await
    .unwrap_err();
    assert_eq!(err, format!("{url} answered 500"));
}

#[tokio::test]
async fn http_probe_with_a_garbage_answer_fails() {
    let (url, _server) = http_server(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    let err = run_probe(&request(
        Probe::Http { url: url.clone() },
        Duration::from_secs(2),
    ))
    .await
    .unwrap_err();
    assert_eq!(err, format!("{url} did not answer with http"));
}

#[tokio::test]
async fn http_probe_to_a_silent_server_times_out() {
    let listener = TcpListener::bind((LOOPBACK, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/");
    // Accepted by the kernel backlog, never answered.
    let err = run_probe(&request(Probe::Http { url }, Duration::from_millis(200)))
        .await
        .unwrap_err();
    assert_eq!(err, "timed out after 200 ms");
    drop(listener);
}

#[tokio::test]
async fn https_probes_are_refused() {
    let err = run_probe(&request(
        Probe::Http {
            url: "https://127.0.0.1/".into(),
        },
        Duration::from_secs(2),
    ))
    .await
    .unwrap_err();
    assert_eq!(err, "https probes are not supported");
}
