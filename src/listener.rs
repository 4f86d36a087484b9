//! How the data plane takes connections: plain HTTP or TLS (rustls, certificate and key from
//! PEM files), at most `max_connections` at once, and a bound on how long a client may take
//! to send its request headers, so slow or idle clients cannot use the server up.

use axum_server::accept::Accept;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Certificate chain and private key files of the data plane's TLS.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// How connections are taken.
#[derive(Debug, Clone)]
pub struct Listening {
    /// TLS instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Connections served at once; further ones are closed as they arrive.
    pub max_connections: usize,
    /// How long a client has to send a request's headers (on a kept-alive connection too).
    pub header_timeout: Duration,
}

impl Default for Listening {
    fn default() -> Self {
        Listening {
            tls: None,
            max_connections: 10_000,
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    listening: &Listening,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    let limit = ConnectionLimit::new(listening.max_connections, listening.header_timeout);
    let server = axum_server::from_tcp(listener.into_std()?)?.handle(handle);
    // HTTP/1.1 only: the IronMQ clients speak it, and cleartext HTTP/2 would bring its own
    // idle connections outside the header timeout.
    let mut server = server.http1_only();
    server
        .http_builder()
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(listening.header_timeout);
    let app = app.into_make_service();
    match &listening.tls {
        None => server.acceptor(limit).serve(app).await,
        Some(files) => {
            crate::tls::install_crypto_provider();
            let config = RustlsConfig::from_pem_file(&files.cert, &files.key)
                .await
                .map_err(|e| {
                    io::Error::new(
                        e.kind(),
                        format!(
                            "TLS certificate {} or key {}: {e}",
                            files.cert.display(),
                            files.key.display()
                        ),
                    )
                })?;
            let tls = RustlsAcceptor::new(config).acceptor(limit);
            server.acceptor(tls).serve(app).await
        }
    }
}

/// An acceptor that refuses connections beyond a limit: each accepted one holds a permit
/// until it closes.
#[derive(Clone)]
struct ConnectionLimit {
    permits: Arc<Semaphore>,
    /// How long a new connection may stay silent (hyper's header timeout starts only at the
    /// first byte).
    first_byte: Duration,
}

impl ConnectionLimit {
    fn new(max: usize, first_byte: Duration) -> Self {
        ConnectionLimit {
            permits: Arc::new(Semaphore::new(max.max(1))),
            first_byte,
        }
    }
}

impl<S> Accept<TcpStream, S> for ConnectionLimit {
    type Stream = Counted<TcpStream>;
    type Service = S;
    type Future = std::future::Ready<io::Result<(Counted<TcpStream>, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        // Answers are small and written whole: no reason to hold them back (Nagle).
        let _ = stream.set_nodelay(true);
        let accepted = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => Ok((
                Counted {
                    inner: stream,
                    _permit: permit,
                    silent_until: Some(Box::pin(tokio::time::sleep(self.first_byte))),
                },
                service,
            )),
            Err(_) => {
                tracing::warn!("connection refused: FERROMQ_MAX_CONNECTIONS reached");
                Err(io::Error::other("too many connections"))
            }
        };
        std::future::ready(accepted)
    }
}

/// A connection that gives its permit back when it is dropped, and is closed if it sends
/// nothing at all within its first-byte deadline.
struct Counted<I> {
    inner: I,
    _permit: OwnedSemaphorePermit,
    silent_until: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Some(deadline) = self.silent_until.as_mut() {
            if matches!(read, Poll::Ready(_)) && buf.filled().len() > before {
                self.silent_until = None;
            } else if read.is_pending() && deadline.as_mut().poll(cx).is_ready() {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no request within the header timeout",
                )));
            }
        }
        read
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
