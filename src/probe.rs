//! `gatehouse probe URL`: a health check for container images that carry no curl.

use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Sends `GET` to a plain-HTTP URL and succeeds on a 2xx status.
pub async fn probe(url: &str) -> anyhow::Result<()> {
    let (authority, path) = split_url(url)?;
    let status = tokio::time::timeout(PROBE_TIMEOUT, status_of(&authority, &path))
        .await
        .with_context(|| format!("{url} did not answer within {PROBE_TIMEOUT:?}"))??;
    if !(200..300).contains(&status) {
        bail!("{url} answered {status}");
    }
    Ok(())
}

fn split_url(url: &str) -> anyhow::Result<(String, String)> {
    let rest = url.strip_prefix("http://").context("probe URLs must start with http://")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains(char::is_whitespace) || path.contains(char::is_whitespace) {
        bail!("{url:?} is not a valid probe URL");
    }
    Ok((authority.to_owned(), path.to_owned()))
}

async fn status_of(authority: &str, path: &str) -> anyhow::Result<u16> {
    let mut stream = TcpStream::connect(authority).await.with_context(|| format!("cannot connect to {authority}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 32];
    let mut read = 0;
    while read < 12 {
        let n = stream.read(&mut head[read..]).await?;
        if n == 0 {
            break;
        }
        read += n;
    }
    // "HTTP/1.1 200 ..." — the status code is bytes 9..12.
    let line = std::str::from_utf8(&head[..read]).unwrap_or_default();
    line.get(9..12).and_then(|code| code.parse().ok()).context("not an HTTP response")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_into_authority_and_path() {
        assert_eq!(split_url("http://a:1/health").unwrap(), ("a:1".into(), "/health".into()));
        assert_eq!(split_url("http://a:1").unwrap(), ("a:1".into(), "/".into()));
        assert!(split_url("https://a/health").is_err());
        assert!(split_url("http:///x").is_err());
        assert!(split_url("http://a b/").is_err());
    }
}
