//! The two listeners over HTTP/1.1: registration on a unix socket only
//! root can reach, the apps' API on TCP. One small tokio runtime; a
//! connection that stalls costs a task, not a thread, and is dropped when
//! its request head does not arrive in time.

use std::convert::Infallible;
use std::future::Future;
use std::os::fd::{FromRawFd, RawFd};
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
use tokio::signal::unix::{signal, SignalKind};

use super::identity::Signer;
use super::registry::Registry;
use super::routes::{self, Reply, Request};
use super::MetadataError;

/// Largest request body: a pod or image manifest, or a form to sign.
const MAX_BODY: usize = 1 << 20;
/// A connection must send a request head within this long.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// First descriptor passed by systemd socket activation.
const LISTEN_FDS_START: RawFd = 3;

/// Where the service listens.
pub struct Listen {
    /// The registration socket to create, unless socket-activated.
    pub socket: PathBuf,
    pub port: u16,
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// Serves until SIGINT or SIGTERM.
pub fn serve(listen: &Listen) -> Result<(), MetadataError> {
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(MetadataError::Runtime)?;
    runtime.block_on(serve_async(listen))
}

async fn serve_async(listen: &Listen) -> Result<(), MetadataError> {
    let registry = Arc::new(Registry::default());
    let signer = Arc::new(Signer::random());
    let (unix, created) = registration_listener(&listen.socket)?;
    let tcp = TcpListener::bind(("0.0.0.0", listen.port))
        .await
        .map_err(|source| MetadataError::Listen {
            what: format!("TCP port {}", listen.port),
            source,
        })?;
    let register: Handler = {
        let registry = registry.clone();
        Arc::new(move |req| routes::registration(&registry, req))
    };
    let public: Handler = Arc::new(move |req| routes::public(&registry, &signer, req));
    eprintln!(
        "metadata service running: registration on {}, pods on 0.0.0.0:{}",
        created
            .as_deref()
            .unwrap_or(Path::new("the socket-activated descriptor"))
            .display(),
        listen.port
    );
    let mut term = signal(SignalKind::terminate()).map_err(MetadataError::Runtime)?;
    let mut int = signal(SignalKind::interrupt()).map_err(MetadataError::Runtime)?;
    tokio::select! {
        _ = accept_loop(|| unix.accept(), register) => {}
        _ = accept_loop(|| tcp.accept(), public) => {}
        _ = term.recv() => {}
        _ = int.recv() => {}
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
    let listen_err = |source| MetadataError::Listen {
        what: format!("the registration socket {}", path.display()),
        source,
    };
    if let Some(count) = activated_fds()? {
        if count < 1 {
            return Err(MetadataError::Activation("LISTEN_FDS is 0".into()));
        }
        // SAFETY: systemd passed descriptor 3 to this process for it to
        // own; nothing else in the process uses it.
        let std = unsafe { std::os::unix::net::UnixListener::from_raw_fd(LISTEN_FDS_START) };
        std.local_addr().map_err(|e| {
            MetadataError::Activation(format!("descriptor 3 is not a unix socket: {e}"))
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
    let listener = UnixListener::bind(path).map_err(listen_err)?;
    // Only root registers pods: anyone else could make up a pod.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(listen_err)?;
    Ok((listener, Some(path.to_path_buf())))
}

/// `LISTEN_FDS` when it is meant for this process (`LISTEN_PID`).
fn activated_fds() -> Result<Option<i32>, MetadataError> {
    let Ok(fds) = std::env::var("LISTEN_FDS") else {
        return Ok(None);
    };
    if let Ok(pid) = std::env::var("LISTEN_PID") {
        if pid.trim() != std::process::id().to_string() {
            return Ok(None);
        }
    }
    fds.trim()
        .parse()
        .map(Some)
        .map_err(|_| MetadataError::Activation(format!("LISTEN_FDS={fds:?} is not a number")))
}

async fn accept_loop<F, Fut, S, A>(accept: F, handler: Handler)
where
    F: Fn() -> Fut,
    Fut: Future<Output = std::io::Result<(S, A)>>,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    loop {
        match accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_connection(stream, handler.clone()));
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

async fn serve_connection<S>(stream: S, handler: Handler)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req| answer(req, handler.clone()));
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn answer(
    req: hyper::Request<Incoming>,
    handler: Handler,
) -> Result<hyper::Response<Full<Bytes>>, Infallible> {
    let method = req.method().as_str().to_string();
    let uri = req.uri().clone();
    let reply = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => handler(&Request {
            method: &method,
            path: uri.path(),
            query: uri.query(),
            body: &body.to_bytes(),
        }),
        Err(_) => Reply {
            status: 413,
            content_type: routes::TEXT,
            body: format!("request body over {MAX_BODY} bytes, or cut short\n").into_bytes(),
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
