//! A minimal HTTP/1.1 client for one thing: POSTing a small JSON body to a
//! webhook over `http://` or `https://` (rustls with the webpki roots), one
//! connection per request, and reading the status line back.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use crate::error::{Error, Result};

/// The largest response head read back (status line and headers).
const MAX_HEAD: usize = 16 * 1024;

/// The URL as it may be shown: scheme, host and port only (a webhook's
/// path is its secret).
pub(crate) fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}/…",
            u.scheme(),
            u.host_str().unwrap_or("?"),
            u.port().map(|p| format!(":{p}")).unwrap_or_default()
        ),
        Err(_) => "(an unparseable URL)".into(),
    }
}

fn err(url: &str, why: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("the webhook {} failed: {why}", redact(url)))
}

/// POSTs `body` as JSON to `url` and returns the HTTP status; a status
/// outside 2xx is an error naming it.
pub(crate) async fn post_json(
    url: &str,
    body: &serde_json::Value,
    timeout: Duration,
) -> Result<u16> {
    tokio::time::timeout(timeout, post_inner(url, body))
        .await
        .map_err(|_| err(url, format!("no answer within {} s", timeout.as_secs())))?
}

async fn post_inner(url: &str, body: &serde_json::Value) -> Result<u16> {
    let u = url::Url::parse(url).map_err(|e| err(url, e))?;
    let host = u.host_str().ok_or_else(|| err(url, "no host"))?.to_string();
    let port = u
        .port_or_known_default()
        .ok_or_else(|| err(url, "no port"))?;
    let mut path = u.path().to_string();
    if let Some(q) = u.query() {
        path.push('?');
        path.push_str(q);
    }
    let payload = body.to_string();
    let host_header = match u.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.clone(),
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: cachedeck/{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
        env!("CARGO_PKG_VERSION"),
        payload.len()
    );
    let tcp = TcpStream::connect((host.trim_start_matches('[').trim_end_matches(']'), port))
        .await
        .map_err(|e| err(url, e))?;
    match u.scheme() {
        "http" => exchange(tcp, &request, url).await,
        "https" => {
            let mut roots = RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| err(url, e))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            let name = ServerName::try_from(host.clone()).map_err(|e| err(url, e))?;
            let tls = TlsConnector::from(Arc::new(config))
                .connect(name, tcp)
                .await
                .map_err(|e| err(url, e))?;
            exchange(tls, &request, url).await
        }
        other => Err(err(url, format!("`{other}` is not http or https"))),
    }
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
    url: &str,
) -> Result<u16> {
    s.write_all(request.as_bytes())
        .await
        .map_err(|e| err(url, e))?;
    s.flush().await.map_err(|e| err(url, e))?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        let n = s.read(&mut buf).await.map_err(|e| err(url, e))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
        if head.windows(2).any(|w| w == b"\r\n") || head.len() >= MAX_HEAD {
            break;
        }
    }
    let text = String::from_utf8_lossy(&head);
    let status_line = text.lines().next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| err(url, format!("not an HTTP answer: `{status_line}`")))?;
    if (200..300).contains(&status) {
        Ok(status)
    } else {
        Err(err(url, format!("HTTP {status}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_paths_are_not_shown() {
        assert_eq!(
            redact("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact("http://127.0.0.1:8080/x"), "http://127.0.0.1:8080/…");
    }
}
