//! The supervisor's control socket, for mutable pods (`rkt app add`,
//! `start`, `stop`, `rm`): one JSON request per connection, one JSON
//! response. The socket lives in the stage1 rootfs, which no app can see;
//! the crossing entrypoints reach it from the host through the pod's PID 1
//! (`/proc/<pid>/root/rkt/supervisor.sock`).

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use abi::schema::{ImageManifest, RuntimeApp, Volume};
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Inside the stage1 rootfs.
pub const CONTROL_SOCKET: &str = "rkt/supervisor.sock";

/// rkt's exit status of `app/stop` for an app that is not running.
pub const NOT_RUNNING: i32 = 5;

/// Longest a request or response may be (an image manifest is at most
/// 1 MiB; the rest is small).
const MAX_MESSAGE: u64 = 4 << 20;

/// How long one side waits for the other to send its whole message.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a client waits for an answer: `stop` answers once the app is
/// gone, which may take the whole grace period before SIGKILL.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Error)]
pub enum ControlError {
    #[error("cannot reach the pod's supervisor at {path:?}: {source}; is the pod running and mutable (rkt app sandbox)?")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot talk to the pod's supervisor: {0}")]
    Io(#[from] io::Error),
    #[error("malformed message on the supervisor's control socket: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Request {
    /// Plan an app whose rootfs and volumes are already in the pod.
    Add {
        app: String,
        runtime: Box<RuntimeApp>,
        image: Box<ImageManifest>,
        /// The pod's volumes (the app's mounts refer to them).
        volumes: Vec<Volume>,
    },
    Start {
        app: String,
    },
    Stop {
        app: String,
    },
    Rm {
        app: String,
    },
}

/// `code` 0 is success; otherwise the entrypoint's exit status, with
/// `message` saying why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response {
    pub code: i32,
    pub message: String,
}

impl Response {
    pub fn ok() -> Self {
        Response {
            code: 0,
            message: String::new(),
        }
    }

    pub fn error(code: i32, message: impl Into<String>) -> Self {
        Response {
            code,
            message: message.into(),
        }
    }
}

/// The control socket of the pod whose PID 1 is `pod_pid` (a host pid),
/// as the host reaches it.
pub fn socket_of(pod_pid: i32) -> PathBuf {
    PathBuf::from(format!("/proc/{pod_pid}/root/{CONTROL_SOCKET}"))
}

/// Sends `request` to the supervisor listening on `socket` and waits for
/// its answer.
pub fn send(socket: &Path, request: &Request) -> Result<Response, ControlError> {
    let mut stream = UnixStream::connect(socket).map_err(|source| ControlError::Connect {
        path: socket.to_path_buf(),
        source,
    })?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    stream.set_read_timeout(Some(ANSWER_TIMEOUT))?;
    stream.write_all(&serde_json::to_vec(request)?)?;
    stream.shutdown(std::net::Shutdown::Write)?;
    read_message(&mut stream)
}

/// The request on a freshly accepted connection (supervisor side), read
/// within [`IO_TIMEOUT`] in all: PID 1 serves one client at a time, so a
/// slow one must not hold it up for longer.
pub fn read_request(stream: &mut UnixStream) -> Result<Request, ControlError> {
    stream.set_nonblocking(false)?;
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || buf.len() as u64 > MAX_MESSAGE {
            return Err(ControlError::Io(io::ErrorKind::TimedOut.into()));
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(serde_json::from_slice(&buf)?)
}

/// Answers a request; the client may have gone, which is not an error of
/// the pod.
pub fn reply(mut stream: UnixStream, response: &Response) {
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    if let Ok(bytes) = serde_json::to_vec(response) {
        let _ = stream.write_all(&bytes);
    }
}

fn read_message<T: for<'de> Deserialize<'de>>(stream: &mut UnixStream) -> Result<T, ControlError> {
    let mut buf = Vec::new();
    stream.take(MAX_MESSAGE).read_to_end(&mut buf)?;
    Ok(serde_json::from_slice(&buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_as_tagged_json() {
        let r = Request::Stop { app: "a".into() };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, r#"{"op":"stop","app":"a"}"#);
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), r);
    }

    #[test]
    fn a_request_and_its_answer_over_a_socket_pair() {
        let (mut client, mut server) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let req = read_request(&mut server).unwrap();
            assert_eq!(req, Request::Start { app: "x".into() });
            reply(server, &Response::error(NOT_RUNNING, "no"));
        });
        client
            .write_all(&serde_json::to_vec(&Request::Start { app: "x".into() }).unwrap())
            .unwrap();
        client.shutdown(std::net::Shutdown::Write).unwrap();
        let resp: Response = read_message(&mut client).unwrap();
        assert_eq!(resp, Response::error(NOT_RUNNING, "no"));
        t.join().unwrap();
    }
}
