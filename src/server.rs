//! The one listener: accepts TCP (optionally TLS) connections and serves HTTP/1.1
//! on them, with upgrades, so health checks, REST and WebSockets share a port.

use std::{io, net::SocketAddr, sync::Arc, time::Duration};

use axum::{Router, extract::ConnectInfo};
use hyper::server::conn::http1;
use hyper_util::{
    rt::{TokioIo, TokioTimer},
    service::TowerToHyperService,
};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower::ServiceExt;

use crate::tls::Tls;

/// Binds `addr`. An unspecified IPv6 address is made dual-stack; when IPv6 is not
/// available at all, `::` falls back to `0.0.0.0`.
pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = match Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)) {
        Err(error) if addr.is_ipv6() && addr.ip().is_unspecified() => {
            tracing::warn!(%error, "IPv6 is unavailable; listening on 0.0.0.0 instead");
            return bind(SocketAddr::from(([0, 0, 0, 0], addr.port())));
        }
        other => other?,
    };
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

/// Raises the soft limit of open files to the hard limit (as Go's runtime does)
/// and returns it: every connection is a file descriptor, and the usual soft
/// limit of 1024 would cap the server long before its connection limits.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        if setrlimit(Resource::Nofile, raised).is_ok() {
            return limit.maximum;
        }
    }
    limit.current
}

/// What every connection needs to be served.
#[derive(Clone)]
pub struct Serving {
    pub router: Router,
    pub tls: Option<Arc<Tls>>,
    /// Cancelled on shutdown: stop accepting, finish in-flight requests.
    pub stop: CancellationToken,
    pub tasks: TaskTracker,
    pub header_timeout: Duration,
    /// Bounds the connections not (yet) upgraded to WebSocket; WebSockets are
    /// bounded by the session registry.
    pub http_slots: Arc<Semaphore>,
}

/// Accepts connections until `stop` is cancelled, then drops the listener. When
/// every HTTP slot is taken, new connections wait in the kernel's backlog.
pub async fn accept_loop(listener: TcpListener, serving: Serving) {
    loop {
        let slot = tokio::select! {
            _ = serving.stop.cancelled() => return,
            slot = Arc::clone(&serving.http_slots).acquire_owned() => slot.expect("never closed"),
        };
        let accepted = tokio::select! {
            _ = serving.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                serving
                    .tasks
                    .spawn(connection(stream, peer, serving.clone(), slot));
            }
            // Per-connection failures (reset before accept) are the client's business.
            Err(error) if is_connection_error(&error) => {}
            // Out of file descriptors and the like: back off instead of spinning.
            Err(error) => {
                tracing::error!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one TCP connection. The HTTP slot is held until the connection ends
/// or is handed over to a WebSocket session.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    serving: Serving,
    _slot: OwnedSemaphorePermit,
) {
    match &serving.tls {
        None => serve_http(stream, peer, &serving).await,
        Some(tls) => {
            let handshake = tls.acceptor().accept(stream);
            match tokio::time::timeout(serving.header_timeout, handshake).await {
                Ok(Ok(stream)) => serve_http(stream, peer, &serving).await,
                Ok(Err(error)) => tracing::debug!(%peer, %error, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_http<S>(stream: S, peer: SocketAddr, serving: &Serving)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let router =
        serving
            .router
            .clone()
            .map_request(move |mut request: axum::extract::Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
    let service = TowerToHyperService::new(router);
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(serving.header_timeout)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = serving.stop.cancelled() => {
            // Finish the request in flight, then close; idle keep-alives close now.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "http connection ended with an error");
    }
}
