//! The gRPC service itself: each call reads the pods and the store as
//! they are now (on tokio's blocking threads, so a slow disk holds no
//! other call), streams for events and logs.

// Every call answers with tonic's `Status`, large as it is: boxing it would
// only be unboxed again at each return.
#![allow(clippy::result_large_err)]

use std::os::fd::FromRawFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use abi::app_log::rfc3339_nanos;
use tokio::sync::mpsc;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use super::images::{self, ImageCache};
use super::proto::public_api_server::{PublicApi, PublicApiServer};
use super::proto::*;
use super::{events, pods, ApiError, API_VERSION};
use crate::pod::lifecycle::{is_uuid, Pod, PodError, PodState};
use crate::pod::logs::{journal_command, select, AppLogFiles, LogQuery};
use crate::services::activation::{listen_fds, LISTEN_FDS_START};
use crate::services::{shutdown_signal, StartError};
use crate::store::{Store, StoreError};

/// Consecutive failed looks (5 s) before an event stream gives up.
const MAX_FAILED_LOOKS: u32 = 20;

/// How often the event and log streams look for news.
const POLL: Duration = Duration::from_millis(250);

/// What the service was started with (`GetInfo` reports it).
pub struct Config {
    pub data_dir: PathBuf,
    pub global_flags: GlobalFlags,
    /// `--listen` (host:port); `None`: the sockets systemd passed, else
    /// [`DEFAULT_LISTEN`].
    pub listen: Option<String>,
}

/// Log streams open at once (each holds a thread, and maybe a journalctl).
const MAX_LOG_STREAMS: usize = 64;

struct Api {
    data_dir: PathBuf,
    log_streams: Arc<tokio::sync::Semaphore>,
    /// `Err` (why) when the store could not be opened at start.
    store: Result<Arc<Store>, String>,
    info: Info,
}

fn internal(e: impl std::fmt::Display) -> Status {
    Status::internal(e.to_string())
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Status> + Send + 'static,
) -> Result<T, Status> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}

/// A pod error as a status: missing pods are NOT_FOUND, a pods directory
/// this user cannot read is PERMISSION_DENIED with the fix.
fn pods_error(e: PodError) -> Status {
    match &e {
        PodError::NotFound(_) | PodError::NoMatch(_) | PodError::Gone(_) => {
            Status::not_found(e.to_string())
        }
        PodError::PodsUnreadable { .. } => Status::permission_denied(e.to_string()),
        PodError::Io { source, .. } if source.kind() == std::io::ErrorKind::PermissionDenied => {
            Status::permission_denied(format!(
                "{e}; run the api service as root, or as a member of the data directory's group (`rkt`)"
            ))
        }
        _ => Status::internal(e.to_string()),
    }
}

impl Api {
    fn store(&self) -> Result<&Store, Status> {
        self.store
            .as_deref()
            .map_err(|why| Status::unavailable(format!("the image store cannot be read: {why}")))
    }

    fn pod(&self, id: &str) -> Result<Pod, Status> {
        if !is_uuid(id) {
            return Err(Status::invalid_argument(format!(
                "{id:?} is not a pod UUID"
            )));
        }
        Pod::load(&self.data_dir, id).map_err(pods_error)
    }
}

#[tonic::async_trait]
impl PublicApi for Arc<Api> {
    async fn get_info(
        &self,
        _: Request<GetInfoRequest>,
    ) -> Result<Response<GetInfoResponse>, Status> {
        Ok(Response::new(GetInfoResponse {
            info: Some(self.info.clone()),
        }))
    }

    async fn list_pods(
        &self,
        req: Request<ListPodsRequest>,
    ) -> Result<Response<ListPodsResponse>, Status> {
        let req = req.into_inner();
        for f in &req.filters {
            pods::check(f).map_err(Status::invalid_argument)?;
        }
        let api = self.clone();
        let pods = blocking(move || {
            let mut cache = ImageCache::default();
            let all = Pod::list(&api.data_dir).map_err(pods_error)?;
            Ok(all
                .iter()
                .map(|p| pods::describe(p, req.detail, api.store.as_deref().ok(), &mut cache))
                .filter(|p| {
                    req.filters.is_empty() || req.filters.iter().any(|f| pods::matches(p, f))
                })
                .collect())
        })
        .await?;
        Ok(Response::new(ListPodsResponse { pods }))
    }

    async fn inspect_pod(
        &self,
        req: Request<InspectPodRequest>,
    ) -> Result<Response<InspectPodResponse>, Status> {
        let id = req.into_inner().id;
        let api = self.clone();
        let pod = blocking(move || {
            let pod = api.pod(&id)?;
            Ok(pods::describe(
                &pod,
                true,
                api.store.as_deref().ok(),
                &mut ImageCache::default(),
            ))
        })
        .await?;
        Ok(Response::new(InspectPodResponse { pod: Some(pod) }))
    }

    async fn list_images(
        &self,
        req: Request<ListImagesRequest>,
    ) -> Result<Response<ListImagesResponse>, Status> {
        let req = req.into_inner();
        let api = self.clone();
        let images = blocking(move || {
            let store = api.store()?;
            Ok(images::all(store)
                .map_err(internal)?
                .iter()
                .filter(|i| req.filters.is_empty() || req.filters.iter().any(|f| i.matches(f)))
                .map(|i| i.to_proto(req.detail))
                .collect())
        })
        .await?;
        Ok(Response::new(ListImagesResponse { images }))
    }

    async fn inspect_image(
        &self,
        req: Request<InspectImageRequest>,
    ) -> Result<Response<InspectImageResponse>, Status> {
        let id = req.into_inner().id;
        let api = self.clone();
        let image = blocking(move || {
            let store = api.store()?;
            let key = store.resolve_key(&id).map_err(|e| match e {
                StoreError::NotFound(_) => Status::not_found(format!("no image {id} in the store")),
                e => Status::invalid_argument(e.to_string()),
            })?;
            let info = store.info(&key).map_err(internal)?;
            Ok(images::StoredImage::load(store, info).to_proto(true))
        })
        .await?;
        Ok(Response::new(InspectImageResponse { image: Some(image) }))
    }

    type ListenEventsStream = ReceiverStream<Result<ListenEventsResponse, Status>>;

    async fn listen_events(
        &self,
        req: Request<ListenEventsRequest>,
    ) -> Result<Response<Self::ListenEventsStream>, Status> {
        let filter = req.into_inner().filter.unwrap_or_default();
        events::check(&filter).map_err(Status::invalid_argument)?;
        let (tx, rx) = mpsc::channel(16);
        let api = self.clone();
        let snap = {
            let api = api.clone();
            move || events::snapshot(&api.data_dir, api.store.as_deref().ok())
        };
        // The baseline is taken before the stream is handed back: whatever
        // happens after the call is reported.
        let mut last = tokio::task::spawn_blocking(snap.clone())
            .await
            .map_err(internal)?
            .map_err(Status::unavailable)?;
        tokio::spawn(async move {
            // A look that fails is skipped (the next one reports what
            // changed); failing for this long ends the stream with the reason.
            let mut failures = 0;
            loop {
                tokio::time::sleep(POLL).await;
                if tx.is_closed() {
                    return;
                }
                let now = match tokio::task::spawn_blocking(snap.clone()).await {
                    Ok(Ok(now)) => now,
                    Ok(Err(_)) if failures < MAX_FAILED_LOOKS => {
                        failures += 1;
                        continue;
                    }
                    Ok(Err(why)) => {
                        let _ = tx.send(Err(Status::unavailable(why))).await;
                        return;
                    }
                    Err(_) => return,
                };
                failures = 0;
                let found: Vec<Event> = events::diff(&last, &now, events::now_secs())
                    .into_iter()
                    .filter(|e| events::wanted(e, &filter))
                    .collect();
                last = now;
                if !found.is_empty()
                    && tx
                        .send(Ok(ListenEventsResponse { events: found }))
                        .await
                        .is_err()
                {
                    return;
                }
                if filter.until_time != 0 && events::now_secs() > filter.until_time {
                    return;
                }
            }
        });
        drop(api);
        Ok(Response::new(ReceiverStream::new(rx)))
    }

    type GetLogsStream = ReceiverStream<Result<GetLogsResponse, Status>>;

    async fn get_logs(
        &self,
        req: Request<GetLogsRequest>,
    ) -> Result<Response<Self::GetLogsStream>, Status> {
        let req = req.into_inner();
        if req.lines < 0 {
            return Err(Status::invalid_argument("lines must not be negative"));
        }
        let api = self.clone();
        let (pod_id, app_name) = (req.pod_id.clone(), req.app_name.clone());
        let (pod, apps) = blocking(move || {
            let req = GetLogsRequest {
                pod_id,
                app_name,
                ..Default::default()
            };
            let pod = api.pod(&req.pod_id)?;
            let names = pod.app_names().map_err(internal)?;
            let apps = match req.app_name.as_str() {
                "" => names,
                app if names.iter().any(|n| n == app) => vec![app.to_string()],
                app => {
                    return Err(Status::not_found(format!(
                        "pod {} has no app named {app:?}; its apps are: {}",
                        req.pod_id,
                        names.join(", ")
                    )))
                }
            };
            Ok((pod, apps))
        })
        .await?;
        let secs = |s: i64| (s > 0).then(|| UNIX_EPOCH + Duration::from_secs(s as u64));
        let query = LogQuery {
            app: (!req.app_name.is_empty()).then(|| req.app_name.clone()),
            lines: req.lines as u64,
            since: secs(req.since_time),
            until: secs(req.until_time),
            follow: req.follow,
        };
        let permit = self.log_streams.clone().try_acquire_owned().map_err(|_| {
            Status::resource_exhausted(format!(
                "{MAX_LOG_STREAMS} log streams are open; close one or try later"
            ))
        })?;
        let (tx, rx) = mpsc::channel(16);
        std::thread::spawn(move || {
            stream_logs(pod, apps, query, tx);
            drop(permit);
        });
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Lines per `GetLogsResponse`: gRPC clients refuse messages over 4 MiB.
const LINES_PER_RESPONSE: usize = 1000;

/// Sends the pod's log lines to `tx` until done: at the end of the log,
/// or, following, once the pod stops running or the client goes away.
/// Runs on its own thread, which ends in every case.
fn stream_logs(
    mut pod: Pod,
    apps: Vec<String>,
    query: LogQuery,
    tx: mpsc::Sender<Result<GetLogsResponse, Status>>,
) {
    let send = |lines: Vec<String>| {
        lines.chunks(LINES_PER_RESPONSE).all(|chunk| {
            tx.blocking_send(Ok(GetLogsResponse {
                lines: chunk.to_vec(),
            }))
            .is_ok()
        })
    };
    if let Some(mut cmd) = journal_command(&pod, &query) {
        let child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                let _ = tx.blocking_send(Err(Status::unavailable(format!(
                    "cannot run journalctl: {e}"
                ))));
                return;
            }
        };
        // journalctl's lines arrive through a reader thread, so this one
        // can notice a client that left, or a pod that stopped, while the
        // journal is quiet.
        let lines = read_lines(child.stdout.take().expect("piped"));
        // Following: once the pod has stopped, what journalctl still has
        // is sent, up to the first quiet poll.
        let mut stopping = false;
        loop {
            match lines.recv_timeout(POLL) {
                Ok(line) => {
                    let mut batch = vec![line];
                    batch.extend(lines.try_iter().take(LINES_PER_RESPONSE));
                    if !send(batch) {
                        break;
                    }
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) if stopping => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if tx.is_closed() {
                break;
            }
            if query.follow && !stopping && !still_running(&mut pod) {
                stopping = true;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        return;
    }
    let mut sources = AppLogFiles::of(&pod, &apps);
    let since = query.since.map(rfc3339_nanos);
    let until = query.until.map(rfc3339_nanos);
    let first = sources.iter_mut().flat_map(AppLogFiles::read_new).collect();
    let lines = |entries| select(entries, since.as_deref(), until.as_deref(), 0);
    let first: Vec<String> = select(first, since.as_deref(), until.as_deref(), query.lines)
        .into_iter()
        .map(|e| e.1)
        .collect();
    if !send(first) || !query.follow {
        return;
    }
    loop {
        std::thread::sleep(POLL);
        let running = still_running(&mut pod);
        let new = sources.iter_mut().flat_map(AppLogFiles::read_new).collect();
        let new: Vec<String> = lines(new).into_iter().map(|e| e.1).collect();
        if !send(new) || !running || tx.is_closed() {
            return;
        }
    }
}

fn still_running(pod: &mut Pod) -> bool {
    pod.refresh().is_ok() && pod.state() == PodState::Running
}

/// The lines of `out`, read on a thread of their own (which ends at EOF,
/// when the process is killed).
fn read_lines(out: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Serves until SIGINT or SIGTERM.
pub fn serve(config: Config) -> Result<(), ApiError> {
    crate::services::run(serve_async(config))
}

async fn serve_async(config: Config) -> Result<(), ApiError> {
    let listeners = listeners(config.listen.as_deref()).await?;
    let store = Store::open_for_reading(&config.data_dir)
        .map(Arc::new)
        .map_err(|e| {
            eprintln!(
            "api service: cannot open the image store: {e}; image calls will answer UNAVAILABLE"
        );
            e.to_string()
        });
    let api = Arc::new(Api {
        data_dir: config.data_dir,
        log_streams: Arc::new(tokio::sync::Semaphore::new(MAX_LOG_STREAMS)),
        store,
        info: Info {
            rkt_version: env!("CARGO_PKG_VERSION").to_string(),
            appc_version: abi::schema::AC_VERSION.to_string(),
            api_version: API_VERSION.to_string(),
            global_flags: Some(config.global_flags),
        },
    });
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    eprintln!("api service listening on {}", addrs.join(", "));
    // Every listener's connections, as one stream.
    let incoming = tokio_stream::StreamMap::from_iter(
        listeners
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i, TcpListenerStream::new(l))),
    )
    .map(|(_, connection)| connection);
    let shutdown = shutdown_signal()?;
    tonic::transport::Server::builder()
        .add_service(PublicApiServer::new(api))
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await
        .map_err(|e| ApiError::Serve(e.to_string()))?;
    eprintln!("api service exiting");
    Ok(())
}

/// systemd's descriptors (from 3) when socket-activated, else `listen`.
async fn listeners(listen: Option<&str>) -> Result<Vec<tokio::net::TcpListener>, StartError> {
    let activated = listen_fds().map_err(StartError::Activation)?;
    match (activated, listen) {
        (Some(_), Some(_)) => Err(StartError::Activation(
            "--listen cannot be used with socket activation; the sockets come from systemd".into(),
        )),
        (Some(n), None) => (LISTEN_FDS_START..LISTEN_FDS_START + n)
            .map(|fd| {
                // SAFETY: systemd passed these descriptors to this process
                // for it to own; nothing else uses them.
                let std = unsafe { std::net::TcpListener::from_raw_fd(fd) };
                std.local_addr()
                    .and_then(|_| std.set_nonblocking(true))
                    .and_then(|()| tokio::net::TcpListener::from_std(std))
                    .map_err(|e| {
                        StartError::Activation(format!("descriptor {fd} is not a TCP socket: {e}"))
                    })
            })
            .collect(),
        (None, listen) => {
            let addr = listen.unwrap_or(DEFAULT_LISTEN);
            let l = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen {
                    what: addr.to_string(),
                    source,
                })?;
            Ok(vec![l])
        }
    }
}

/// rkt's default address.
pub const DEFAULT_LISTEN: &str = "localhost:15441";
