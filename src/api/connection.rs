//! Beneath HTTP: each accepted connection, wrapped so that the one answer actix-http writes
//! by itself reads like every other error. A request head it cannot parse (a NUL or another
//! control byte in a header, a broken request line) is answered inside actix-http's dispatcher
//! with a bare `400 Bad Request` and no body, before any middleware or handler runs, and it
//! offers no hook for it. [`ProblemOnBareError`] sees that answer go out — a 400 head with
//! `content-length: 0`, which the service itself never sends (its 400s all carry a problem
//! body) — and writes a problem+json answer in its place; every other byte passes unchanged.
//!
//! Routing, middleware and the problem documents of handlers are elsewhere (`mod.rs`,
//! `middleware.rs`, `error.rs`).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How actix-http's own answer to an unparsable request begins.
const BARE_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n";

/// The problem document sent instead.
const PROBLEM: &str =
    "{\"detail\":\"the request could not be parsed as HTTP/1.1: a header holds a \
    control character (such as NUL), or the request line or a header is malformed\",\
    \"status\":400,\"title\":\"Invalid request\",\"type\":\"/problems/invalid-request\"}";

/// A connection whose bare 400 answers are rewritten as problem+json (see the module comment).
pub struct ProblemOnBareError<T> {
    io: T,
    /// Bytes of a rewritten answer not yet written.
    pending: Vec<u8>,
}

impl<T> ProblemOnBareError<T> {
    /// Wraps an accepted connection.
    pub fn new(io: T) -> Self {
        Self {
            io,
            pending: Vec::new(),
        }
    }
}

/// The answer written in place of a bare 400 whose head is `head` (its other headers kept).
fn rewritten(head: &[u8]) -> Vec<u8> {
    let rest = &head[BARE_400.len()..];
    let mut out = b"HTTP/1.1 400 Bad Request\r\n".to_vec();
    out.extend_from_slice(
        format!(
            "content-length: {}\r\ncontent-type: application/problem+json\r\n\
             cache-control: no-store\r\n",
            PROBLEM.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(rest);
    out.extend_from_slice(PROBLEM.as_bytes());
    out
}

impl<T: AsyncWrite + Unpin> ProblemOnBareError<T> {
    /// Writes what is pending; ready when nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.io).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ProblemOnBareError<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ProblemOnBareError<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.poll_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        // The bare answer goes out whole, its head ending the buffer (it has no body).
        if buf.starts_with(BARE_400) && buf.ends_with(b"\r\n\r\n") {
            this.pending = rewritten(buf);
            let _ = this.poll_pending(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.poll_pending(cx)?.is_pending() {
            return Poll::Pending;
        }
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_400_becomes_a_problem_and_keeps_its_other_headers() {
        let bare = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\
                     date: Thu, 03 Dec 2026 06:08:35 GMT\r\n\r\n";
        let out = String::from_utf8(rewritten(bare)).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-type: application/problem+json\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(!head.contains("content-length: 0\r\n"));
        let problem: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(problem["status"], 400);
        assert_eq!(problem["type"], "/problems/invalid-request");
    }
}
