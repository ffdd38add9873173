//! A client of systemd-journald over its native protocol, for the apps'
//! output: one datagram per line, tagged with the app's name as
//! `SYSLOG_IDENTIFIER` (so `journalctl -t <app>` selects it, as rkt
//! documented) and the pod as `CONTAINER_NAME=rkt-<uuid>`.
//!
//! The journald is the pod's own (ns stage1, `podjournal`), whose socket
//! `run` connects on the host side before the pod's namespaces and root
//! exist, so the supervisor keeps reaching it after it pivots into the
//! stage1 rootfs.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

/// Where the host's journald takes native-protocol datagrams (that it
/// answers there is how stage1 tells that the host runs journald).
pub const HOST_SOCKET: &str = "/run/systemd/journal/socket";

/// How long one line may wait for a busy journald before the journal is
/// given up (the output still reaches stdout/stderr): a stuck journald
/// must not stop the pod's apps.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// syslog priorities journald shows for stdout and stderr lines.
pub const PRIORITY_INFO: u8 = 6;
pub const PRIORITY_ERR: u8 = 3;

#[derive(Debug, Error)]
pub enum JournalError {
    #[error("cannot send the app's output to journald: {0}")]
    Send(#[source] io::Error),
}

/// A connected journald socket and the fields every entry of the pod has.
#[derive(Debug)]
pub struct Journal {
    socket: UnixDatagram,
    pod_fields: Vec<u8>,
}

impl Journal {
    /// Connects to journald at `path`; `None` when no journald listens
    /// there (the host does not run it).
    pub fn connect(path: &Path, pod_uuid: &str) -> Option<Self> {
        let socket = UnixDatagram::unbound().ok()?;
        socket.connect(path).ok()?;
        socket.set_write_timeout(Some(SEND_TIMEOUT)).ok()?;
        let mut pod_fields = Vec::new();
        field(
            &mut pod_fields,
            "CONTAINER_NAME",
            format!("rkt-{pod_uuid}").as_bytes(),
        );
        field(&mut pod_fields, "RKT_POD_UUID", pod_uuid.as_bytes());
        Some(Journal { socket, pod_fields })
    }

    /// Sends one line (without its newline) of app `app`.
    pub fn send_line(&self, app: &str, priority: u8, line: &[u8]) -> Result<(), JournalError> {
        let mut entry = Vec::with_capacity(self.pod_fields.len() + line.len() + 96);
        field(&mut entry, "MESSAGE", line);
        field(&mut entry, "PRIORITY", &[b'0' + priority.min(7)]);
        field(&mut entry, "SYSLOG_IDENTIFIER", app.as_bytes());
        field(&mut entry, "RKT_APP_NAME", app.as_bytes());
        entry.extend_from_slice(&self.pod_fields);
        loop {
            match self.socket.send(&entry) {
                Ok(_) => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(JournalError::Send(e)),
            }
        }
    }
}

/// Appends one field in the native protocol: `KEY=value\n`, or the
/// length-prefixed form when the value holds a newline.
fn field(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    out.extend_from_slice(key.as_bytes());
    if value.contains(&b'\n') {
        out.push(b'\n');
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    } else {
        out.push(b'=');
    }
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_use_the_binary_form_only_for_values_with_newlines() {
        let mut out = Vec::new();
        field(&mut out, "A", b"plain");
        field(&mut out, "B", b"x\ny");
        let mut want = b"A=plain\nB\n".to_vec();
        want.extend_from_slice(&3u64.to_le_bytes());
        want.extend_from_slice(b"x\ny\n");
        assert_eq!(out, want);
    }

    #[test]
    fn a_line_reaches_the_socket_as_one_entry_with_the_pod_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("socket");
        let server = UnixDatagram::bind(&path).unwrap();
        let journal = Journal::connect(&path, "0123-abcd").unwrap();
        journal.send_line("web", PRIORITY_ERR, b"it broke").unwrap();
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let text = String::from_utf8(buf[..n].to_vec()).unwrap();
        assert_eq!(
            text,
            "MESSAGE=it broke\nPRIORITY=3\nSYSLOG_IDENTIFIER=web\nRKT_APP_NAME=web\n\
             CONTAINER_NAME=rkt-0123-abcd\nRKT_POD_UUID=0123-abcd\n"
        );
    }

    #[test]
    fn no_journald_means_no_journal() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Journal::connect(&dir.path().join("absent"), "u").is_none());
    }
}
