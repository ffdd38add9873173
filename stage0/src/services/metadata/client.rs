//! stage0's side of registration: plain HTTP/1.1 over the service's unix
//! socket, so `rkt run` starts no runtime for it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

use super::MetadataError;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A new token for a pod's URL: 128 random bits, in hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    crate::store::to_hex(&bytes)
}

/// A connection to the registration socket (fails clearly when no service
/// listens).
pub fn probe(socket: &Path) -> Result<(), MetadataError> {
    connect(socket).map(drop)
}

fn connect(socket: &Path) -> Result<UnixStream, MetadataError> {
    let stream = UnixStream::connect(socket).map_err(|source| MetadataError::Unreachable {
        path: socket.to_path_buf(),
        source,
    })?;
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    Ok(stream)
}

/// Registers pod `uuid` under `token` with its manifest, then each app's
/// image manifest.
pub fn register_pod(
    socket: &Path,
    uuid: &str,
    token: &str,
    pod_manifest: &[u8],
    apps: &[(String, Vec<u8>)],
) -> Result<(), MetadataError> {
    call(
        socket,
        "PUT",
        &format!("/pods/{uuid}?token={token}"),
        pod_manifest,
        || format!("registering pod {uuid}"),
    )?;
    for (app, manifest) in apps {
        call(
            socket,
            "PUT",
            &format!("/pods/{uuid}/{app}"),
            manifest,
            || format!("registering app {app:?} of pod {uuid}"),
        )?;
    }
    Ok(())
}

/// Unregisters pod `uuid` (at gc).
pub fn unregister_pod(socket: &Path, uuid: &str) -> Result<(), MetadataError> {
    call(socket, "DELETE", &format!("/pods/{uuid}"), b"", || {
        format!("unregistering pod {uuid}")
    })
}

fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: &[u8],
    what: impl Fn() -> String,
) -> Result<(), MetadataError> {
    let io_err = |source| MetadataError::Io {
        path: PathBuf::from(socket),
        source,
    };
    let mut stream = connect(socket)?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).map_err(io_err)?;
    stream.write_all(body).map_err(io_err)?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).map_err(io_err)?;
    let text = String::from_utf8_lossy(&response);
    let (head, message) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status == 200 {
        return Ok(());
    }
    Err(MetadataError::Refused {
        what: what(),
        status,
        message: message.trim().to_string(),
    })
}
