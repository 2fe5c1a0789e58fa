//! Active probe executors: the I/O half of a [`ProbeRequest`].
//!
//! Thin on purpose: one connect (TCP) or one HTTP/1.0 GET, bounded by the
//! request's timeout, answered with the round trip or a reason in plain
//! words for the event log. Deciding what a result means is the monitor's.
//!
//! HTTP probes always connect to the endpoint's inventory address (at the
//! URL's port); the URL's host only goes into the `Host` header. The probe
//! checks that speaker, and the daemon never depends on DNS.


use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use super::monitor::{fmt_duration, Probe, ProbeRequest};

/// The status line must fit in this; a speaker's web server is not verbose.
const MAX_STATUS_LINE: usize = 1024;

/// Runs one probe; `Ok(round trip)` if the endpoint answered in time.
pub async fn run_probe(request: &ProbeRequest) -> Result<Duration, String> {
    let start = Instant::now();
    let work = async {
        match &request.probe {
            Probe::Rtcp => Err("rtcp endpoints are not probed".to_owned()),
            Probe::Tcp { port } => {
                TcpStream::connect((request.address, *port))
                    .await
                    .map_err(|e| io_reason(&e))?;
                Ok(())
            }
            Probe::Http { url } => http_get(request, url).await,
        }
    };
    match timeout(request.timeout, work).await {
        Ok(Ok(())) => Ok(start.elapsed()),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(format!("timed out after {}", fmt_duration(request.timeout))),
    }
}

/// GET `url` from the endpoint; `Ok` on a 2xx status line.
async fn http_get(request: &ProbeRequest, url: &str) -> Result<(), String> {
    let target = HttpTarget::parse(url)?;
    let mut stream = TcpStream::connect((request.address, target.port))
        .await
        .map_err(|e| io_reason(&e))?;
    let get = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: loa-health\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    stream
        .write_all(get.as_bytes())
        .await
        .map_err(|e| io_reason(&e))?;

    let mut head = Vec::with_capacity(128);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < MAX_STATUS_LINE {
        let n = stream.read(&mut buf).await.map_err(|e| io_reason(&e))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    if head.is_empty() {
        return Err(format!("{url} closed the connection without answering"));
    }
    match status_code(&head) {
        Some(code) if (200..300).contains(&code) => Ok(()),
        Some(code) => Err(format!("{url} answered {code}")),
        None => Err(format!("{url} did not answer with http")),
    }
}

/// The status code of an `HTTP/1.x NNN reason` line.
fn status_code(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end_matches('\r');
    let mut parts = line.splitn(3, ' ');
    let version = parts.next()?;
    let code = parts.next()?;
    if !version.starts_with("HTTP/1.")
        || code.len() != 3
        || !code.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    code.parse().ok()
}

#[derive(Debug, PartialEq, Eq)]
struct HttpTarget {
    /// Authority as written, for the Host header.
    host: String,
    port: u16,
    path: String,
}

impl HttpTarget {
    fn parse(url: &str) -> Result<HttpTarget, String> {
        let lower = url.to_ascii_lowercase();
        if lower.starts_with("https://") {
            return Err("https probes are not supported".to_owned());
        }
        if !lower.starts_with("http://") {
            return Err(format!("{url} is not an http:// url"));
        }
        let rest = &url["http://".len()..];
        let rest = rest.split('#').next().unwrap_or_default();
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty()
            || authority.contains('@')
            || authority.chars().any(char::is_whitespace)
        {
            return Err(format!("{url} has no usable host"));
        }
        let path = match path {
            "" => "/".to_owned(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_owned(),
        };
        if path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{url} has spaces in its path"));
        }
        // A port follows the last ':' unless that ':' is inside an IPv6 literal.
        let port = match authority.rfind(':') {
            Some(i) if !authority[i..].contains(']') => authority[i + 1..]
                .parse()
                .map_err(|_| format!("{url} has an invalid port"))?,
            _ => 80,
        };
        Ok(HttpTarget {
            host: authority.to_owned(),
            port,
            path,
        })
    }
}

use crate::proto::text::io_reason;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_target_takes_port_and_path_from_the_url() {
        let t = HttpTarget::parse("http://10.0.0.5:8080/status?x=1").unwrap();
        assert_eq!(
            t,
            HttpTarget {
                host: "10.0.0.5:8080".into(),
                port: 8080,
                path: "/status?x=1".into()
            }
        );
        let t = HttpTarget::parse("http://speaker-3").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/"));
        let t = HttpTarget::parse("http://[::1]/a").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/a"));
        let t = HttpTarget::parse("http://[::1]:81").unwrap();
        assert_eq!(t.port, 81);
    }

    #[test]
    fn http_target_rejects_what_it_cannot_probe() {
        assert_eq!(
            HttpTarget::parse("https://x/").unwrap_err(),
            "https probes are not supported"
        );
        assert!(HttpTarget::parse("ftp://x/").is_err());
        assert!(HttpTarget::parse("http://").is_err());
        assert!(HttpTarget::parse("http://u:p@x/").is_err());
        assert!(HttpTarget::parse("http://x:99999/").is_err());
        assert!(HttpTarget::parse("http://x/a b").is_err());
    }

    #[test]
    fn status_code_reads_only_http_status_lines() {
        assert_eq!(status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(status_code(b"HTTP/1.0 500 Oops\r\n"), Some(500));
        assert_eq!(status_code(b"SSH-2.0-OpenSSH\r\n"), None);
        assert_eq!(status_code(b"HTTP/1.1 2000 x\r\n"), None);
        assert_eq!(status_code(&[0xff, 0xfe, b'\n']), None);
    }
}
