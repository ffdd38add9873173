//! The two listeners over HTTP/1.1: registration on a unix socket only
//! root can reach, the apps' API on TCP. One small tokio runtime; a
//! connection that stalls costs a task, not a thread, and is dropped when
//! its request head does not arrive in time.

use std::convert::Infallible;
use std::future::Future;
use std::os::fd::FromRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

use super::identity::Signer;
use super::registry::Registry;
use super::routes::{self, Reply, Request};
use super::MetadataError;
use crate::services::activation::{listen_fds, LISTEN_FDS_START};
use crate::services::{shutdown_signal, StartError};

/// Largest registration body: a pod or image manifest.
const MAX_REGISTRATION_BODY: usize = 1 << 20;
/// Largest body from a pod: a form to sign or verify.
const MAX_PUBLIC_BODY: usize = 64 << 10;
/// A connection must send a request head, and then its body, within this
/// long each.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once per listener; more are closed at once.
const MAX_CONNECTIONS: usize = 16_384;

/// Where the service listens.
pub struct Listen {
    /// The registration socket to create, unless socket-activated.
    pub socket: PathBuf,
    pub port: u16,
}

/// What a listener answers, and how large a body it takes.
#[derive(Clone)]
struct Endpoint {
    handler: Arc<dyn Fn(&Request) -> Reply + Send + Sync>,
    max_body: usize,
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(listen: &Listen) -> Result<(), MetadataError> {
    raise_open_files_limit();
    crate::services::run(serve_async(listen))
}

async fn serve_async(listen: &Listen) -> Result<(), MetadataError> {
    let registry = Arc::new(Registry::default());
    let signer = Arc::new(Signer::random());
    // TCP first: a port in use then leaves no socket file behind.
    let tcp = TcpListener::bind(("0.0.0.0", listen.port))
        .await
        .map_err(|source| StartError::Listen {
            what: format!("TCP port {}", listen.port),
            source,
        })?;
    let (unix, created) = registration_listener(&listen.socket)?;
    let register = Endpoint {
        handler: {
            let registry = registry.clone();
            Arc::new(move |req| routes::registration(&registry, req))
        },
        max_body: MAX_REGISTRATION_BODY,
    };
    let public = Endpoint {
        handler: Arc::new(move |req| routes::public(&registry, &signer, req)),
        max_body: MAX_PUBLIC_BODY,
    };
    eprintln!(
        "metadata service running: registration on {}, pods on 0.0.0.0:{}",
        created
            .as_deref()
            .unwrap_or(Path::new("the socket-activated descriptor"))
            .display(),
        listen.port
    );
    let shutdown = shutdown_signal()?;
    tokio::select! {
        _ = accept_loop(|| unix.accept(), register) => {}
        _ = accept_loop(|| tcp.accept(), public) => {}
        _ = shutdown => {}
    }
    eprintln!("metadata service exiting");
    if let Some(path) = created {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// The registration socket: systemd's descriptor 3 when socket-activated
/// (left in place at exit), else a new socket at `path` (removed at exit;
/// returned as the second value).
fn registration_listener(path: &Path) -> Result<(UnixListener, Option<PathBuf>), MetadataError> {
    let listen_err = |source| StartError::Listen {
        what: format!("the registration socket {}", path.display()),
        source,
    };
    if listen_fds().map_err(StartError::Activation)?.is_some() {
        // SAFETY: systemd passed descriptor 3 to this process for it to
        // own; nothing else in the process uses it.
        let std = unsafe { std::os::unix::net::UnixListener::from_raw_fd(LISTEN_FDS_START) };
        std.local_addr().map_err(|e| {
            StartError::Activation(format!("descriptor 3 is not a unix socket: {e}"))
        })?;
        std.set_nonblocking(true).map_err(listen_err)?;
        return Ok((UnixListener::from_std(std).map_err(listen_err)?, None));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(listen_err)?;
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(MetadataError::Running(path.to_path_buf()));
    }
    // A socket left by a service that died: nobody answers on it.
    let _ = std::fs::remove_file(path);
    // Only root registers pods: anyone else could make up a pod. The
    // socket is created 0600 (umask), not made so after it is reachable.
    let old_mask = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = UnixListener::bind(path);
    nix::sys::stat::umask(old_mask);
    let listener = bound.map_err(listen_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen_err)?;
    Ok((listener, Some(path.to_path_buf())))
}

async fn accept_loop<F, Fut, S, A>(accept: F, endpoint: Endpoint)
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::io::Result<(S, A)>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        match accept().await {
            Ok((stream, _)) => {
                // Over the cap the connection is closed at once: one client
                // holding thousands cannot take the descriptors of others.
                let Ok(permit) = open.clone().try_acquire_owned() else {
                    continue;
                };
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    serve_connection(stream, endpoint).await;
                    drop(permit);
                });
            }
            Err(e) => {
                // Out of descriptors, most likely: give the open
                // connections time to finish or time out.
                eprintln!("metadata service: accepting a connection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_connection<S>(stream: S, endpoint: Endpoint)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| answer(req, endpoint.clone()));
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(
    req: hyper::Request<Incoming>,
    endpoint: Endpoint,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let uri = req.uri().clone();
    let body = Limited::new(req.into_body(), endpoint.max_body).collect();
    let reply = match tokio::time::timeout(HEAD_TIMEOUT, body).await {
        Ok(Ok(body)) => (endpoint.handler)(&Request {
            method: &method,
            path: uri.path(),
            query: uri.query(),
            body: &body.to_bytes(),
        }),
        Ok(Err(_)) => Reply {
            status: 413,
            content_type: routes::TEXT,
            body: format!(
                "request body over {} bytes, or cut short\n",
                endpoint.max_body
            )
            .into_bytes(),
        },
        Err(_) => Reply {
            status: 408,
            content_type: routes::TEXT,
            body: format!(
                "request body not sent within {} s\n",
                HEAD_TIMEOUT.as_secs()
            )
            .into_bytes(),
        },
    };
    // rkt's log line for every request.
    eprintln!("{method} {uri} - {}", reply.status);
    let response = hyper::Response::builder()
        .status(reply.status)
        .header("Content-Type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .expect("a status code and a static header make a valid response");
    Ok(response)
}

/// Many clients each hold a descriptor: use the hard limit, not the
/// customary soft 1024.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a valid pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
