//! Just enough of a D-Bus client for the calls stage1 makes to the system
//! bus (registering the pod with systemd-machined): EXTERNAL authentication,
//! `Hello`, and method calls whose arguments are strings, byte arrays and
//! `u32`s, with the reply's error name and message when it fails.
//!
//! A full client (zbus) would bring an async runtime into every stage1
//! binary for two calls per pod.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use thiserror::Error;

/// The system bus, where machined listens.
pub const SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";

/// A bus that does not answer in this long is treated as absent: the pod
/// must not wait on it.
const TIMEOUT: Duration = Duration::from_secs(5);
impl From<io::Error> for DbusError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => DbusError::Timeout,
            _ => DbusError::Io(e),
        }
    }
}

/// Larger replies are not ours to read (our calls return a path or nothing).
const MAX_MESSAGE: usize = 1 << 20;

const METHOD_CALL: u8 = 1;
const METHOD_RETURN: u8 = 2;
const ERROR: u8 = 3;

const FIELD_PATH: u8 = 1;
const FIELD_INTERFACE: u8 = 2;
const FIELD_MEMBER: u8 = 3;
const FIELD_ERROR_NAME: u8 = 4;
const FIELD_REPLY_SERIAL: u8 = 5;
const FIELD_DESTINATION: u8 = 6;
const FIELD_SIGNATURE: u8 = 8;

#[derive(Debug, Error)]
pub enum DbusError {
    #[error("no answer on the system bus within {TIMEOUT:?}")]
    Timeout,
    #[error("cannot reach the system bus at {SYSTEM_BUS}: {0}")]
    Io(#[source] io::Error),
    #[error("the system bus refused authentication: {0:?}")]
    Auth(String),
    #[error("malformed message from the system bus: {0}")]
    Malformed(&'static str),
    /// The callee answered with a D-Bus error.
    #[error("{name}: {message}")]
    Call { name: String, message: String },
}

/// One method-call argument.
#[derive(Debug, Clone, Copy)]
pub enum Arg<'a> {
    Str(&'a str),
    Bytes(&'a [u8]),
    U32(u32),
}

impl Arg<'_> {
    fn signature(&self) -> &'static str {
        match self {
            Arg::Str(_) => "s",
            Arg::Bytes(_) => "ay",
            Arg::U32(_) => "u",
        }
    }
}

/// A method call's target.
#[derive(Debug, Clone, Copy)]
pub struct Method<'a> {
    pub destination: &'a str,
    pub path: &'a str,
    pub interface: &'a str,
    pub member: &'a str,
}

/// An authenticated connection to a bus.
pub struct Connection {
    reader: BufReader<UnixStream>,
    serial: u32,
}

impl Connection {
    /// Connects to the system bus; `Ok(None)` when there is none.
    pub fn system() -> Result<Option<Self>, DbusError> {
        if !Path::new(SYSTEM_BUS).exists() {
            return Ok(None);
        }
        match UnixStream::connect(SYSTEM_BUS) {
            Ok(stream) => Self::over(stream).map(Some),
            // A socket left by a bus that is gone.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Authenticates as the calling user on `stream` and says `Hello`.
    pub fn over(stream: UnixStream) -> Result<Self, DbusError> {
        stream.set_read_timeout(Some(TIMEOUT))?;
        stream.set_write_timeout(Some(TIMEOUT))?;
        let uid = nix::unistd::geteuid().as_raw().to_string();
        let hex: String = uid.bytes().map(|b| format!("{b:02x}")).collect();
        (&stream).write_all(format!("\0AUTH EXTERNAL {hex}\r\n").as_bytes())?;
        let mut reader = BufReader::new(stream);
        let mut line = String::new();
        reader.read_line(&mut line)?;
        if !line.starts_with("OK ") {
            return Err(DbusError::Auth(line.trim_end().to_string()));
        }
        reader.get_ref().write_all(b"BEGIN\r\n")?;
        let mut conn = Connection { reader, serial: 0 };
        conn.call(
            Method {
                destination: "org.freedesktop.DBus",
                path: "/org/freedesktop/DBus",
                interface: "org.freedesktop.DBus",
                member: "Hello",
            },
            &[],
        )?;
        Ok(conn)
    }

    /// Calls `method` and waits for its reply; a D-Bus error reply is
    /// [`DbusError::Call`].
    pub fn call(&mut self, method: Method, args: &[Arg]) -> Result<(), DbusError> {
        self.serial += 1;
        let serial = self.serial;
        let message = encode_call(serial, method, args);
        self.reader.get_ref().write_all(&message)?;
        loop {
            let reply = read_message(&mut self.reader)?;
            if reply.reply_serial != Some(serial) {
                continue; // a signal (NameAcquired) or someone else's reply
            }
            return match reply.kind {
                METHOD_RETURN => Ok(()),
                ERROR => Err(DbusError::Call {
                    name: reply.error_name.unwrap_or_default(),
                    message: reply.first_string.unwrap_or_default(),
                }),
                _ => Err(DbusError::Malformed("reply of an unexpected type")),
            };
        }
    }
}

/// Little-endian marshalling with D-Bus alignment rules.
#[derive(Default)]
struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    fn align(&mut self, to: usize) {
        while !self.buf.len().is_multiple_of(to) {
            self.buf.push(0);
        }
    }

    fn u32(&mut self, v: u32) {
        self.align(4);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    fn string(&mut self, s: &str) {
        self.u32(s.len() as u32);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn signature(&mut self, s: &str) {
        self.buf.push(s.len() as u8);
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
    }

    fn arg(&mut self, arg: &Arg) {
        match arg {
            Arg::Str(s) => self.string(s),
            Arg::Bytes(b) => {
                self.u32(b.len() as u32);
                self.buf.extend_from_slice(b);
            }
            Arg::U32(v) => self.u32(*v),
        }
    }

    /// One header field: a struct (8-aligned) of a code and a variant.
    fn field(&mut self, code: u8, signature: &str, value: &str) {
        self.align(8);
        self.buf.push(code);
        self.signature(signature);
        match signature {
            "g" => self.signature(value),
            _ => self.string(value),
        }
    }
}

fn encode_call(serial: u32, method: Method, args: &[Arg]) -> Vec<u8> {
    let mut body = Writer::default();
    for arg in args {
        body.arg(arg);
    }
    let signature: String = args.iter().map(Arg::signature).collect();

    let mut fields = Writer::default();
    // Field offsets count from the message start: the fixed header is 16
    // bytes (12 + the array length), a multiple of 8, so alignment within
    // `fields` is alignment in the message.
    fields.field(FIELD_PATH, "o", method.path);
    fields.field(FIELD_INTERFACE, "s", method.interface);
    fields.field(FIELD_MEMBER, "s", method.member);
    fields.field(FIELD_DESTINATION, "s", method.destination);
    if !signature.is_empty() {
        fields.field(FIELD_SIGNATURE, "g", &signature);
    }

    let mut msg = Vec::with_capacity(16 + fields.buf.len() + 8 + body.buf.len());
    msg.extend_from_slice(&[b'l', METHOD_CALL, 0, 1]);
    msg.extend_from_slice(&(body.buf.len() as u32).to_le_bytes());
    msg.extend_from_slice(&serial.to_le_bytes());
    msg.extend_from_slice(&(fields.buf.len() as u32).to_le_bytes());
    msg.extend_from_slice(&fields.buf);
    while !msg.len().is_multiple_of(8) {
        msg.push(0);
    }
    msg.extend_from_slice(&body.buf);
    msg
}

/// What stage1 needs of a received message.
#[derive(Debug, Default, PartialEq)]
struct Received {
    kind: u8,
    reply_serial: Option<u32>,
    error_name: Option<String>,
    /// The body's first argument when it is a string (an error's message).
    first_string: Option<String>,
}

/// Unmarshalling of one message in either byte order.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    big_endian: bool,
}

impl<'a> Reader<'a> {
    fn align(&mut self, to: usize) {
        self.pos = self.pos.div_ceil(to) * to;
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DbusError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or(DbusError::Malformed("truncated"))?;
        let bytes = &self.buf[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self) -> Result<u8, DbusError> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32, DbusError> {
        self.align(4);
        let b: [u8; 4] = self.take(4)?.try_into().expect("4 bytes");
        Ok(match self.big_endian {
            true => u32::from_be_bytes(b),
            false => u32::from_le_bytes(b),
        })
    }

    fn string(&mut self) -> Result<String, DbusError> {
        let len = self.u32()? as usize;
        let s = self.take(len)?;
        self.take(1)?; // the NUL
        Ok(String::from_utf8_lossy(s).into_owned())
    }

    fn signature(&mut self) -> Result<String, DbusError> {
        let len = self.u8()? as usize;
        let s = self.take(len)?;
        self.take(1)?;
        Ok(String::from_utf8_lossy(s).into_owned())
    }
}

fn read_message(input: &mut impl Read) -> Result<Received, DbusError> {
    let mut fixed = [0u8; 16];
    input.read_exact(&mut fixed)?;
    let big_endian = match fixed[0] {
        b'l' => false,
        b'B' => true,
        _ => return Err(DbusError::Malformed("unknown byte order")),
    };
    let word = |i: usize| {
        let b: [u8; 4] = fixed[i..i + 4].try_into().expect("4 bytes");
        match big_endian {
            true => u32::from_be_bytes(b),
            false => u32::from_le_bytes(b),
        }
    };
    let body_len = word(4) as usize;
    let fields_len = word(12) as usize;
    let total = (16 + fields_len).div_ceil(8) * 8 + body_len;
    if total > MAX_MESSAGE {
        return Err(DbusError::Malformed("message too large"));
    }
    let mut buf = fixed.to_vec();
    buf.resize(total, 0);
    input.read_exact(&mut buf[16..])?;
    parse_message(&buf, big_endian)
}

fn parse_message(buf: &[u8], big_endian: bool) -> Result<Received, DbusError> {
    let mut r = Reader {
        buf,
        pos: 12,
        big_endian,
    };
    let fields_end = 16 + r.u32()? as usize;
    let mut received = Received {
        kind: buf[1],
        ..Default::default()
    };
    let mut body_signature = String::new();
    while r.pos < fields_end {
        r.align(8);
        let code = r.u8()?;
        let signature = r.signature()?;
        match signature.as_str() {
            "s" | "o" => {
                let value = r.string()?;
                if code == FIELD_ERROR_NAME {
                    received.error_name = Some(value);
                }
            }
            "u" => {
                let value = r.u32()?;
                if code == FIELD_REPLY_SERIAL {
                    received.reply_serial = Some(value);
                }
            }
            "g" => {
                let value = r.signature()?;
                if code == FIELD_SIGNATURE {
                    body_signature = value;
                }
            }
            _ => return Err(DbusError::Malformed("unexpected header field type")),
        }
    }
    r.align(8);
    if body_signature.starts_with('s') {
        received.first_string = Some(r.string()?);
    }
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MACHINED: Method = Method {
        destination: "org.freedesktop.machine1",
        path: "/org/freedesktop/machine1",
        interface: "org.freedesktop.machine1.Manager",
        member: "RegisterMachine",
    };

    #[test]
    fn a_call_is_laid_out_as_the_spec_says() {
        let msg = encode_call(
            7,
            MACHINED,
            &[Arg::Str("rkt-x"), Arg::Bytes(&[1, 2]), Arg::U32(42)],
        );
        assert_eq!(&msg[..4], &[b'l', METHOD_CALL, 0, 1]);
        assert_eq!(u32::from_le_bytes(msg[8..12].try_into().unwrap()), 7);
        let fields_len = u32::from_le_bytes(msg[12..16].try_into().unwrap()) as usize;
        let body_start = (16 + fields_len).div_ceil(8) * 8;
        // "rkt-x": length 5, bytes, NUL; then ay [1, 2] at offset 12; then
        // 42 aligned to 4 after 2 bytes.
        let body = &msg[body_start..];
        assert_eq!(
            u32::from_le_bytes(msg[4..8].try_into().unwrap()) as usize,
            body.len()
        );
        assert_eq!(&body[..10], b"\x05\0\0\0rkt-x\0");
        assert_eq!(&body[12..18], &[2, 0, 0, 0, 1, 2]);
        assert_eq!(&body[20..24], &42u32.to_le_bytes());
        // Our own reader finds the same header: no error, no reply serial.
        let parsed = parse_message(&msg, false).unwrap();
        assert_eq!(parsed.kind, METHOD_CALL);
        assert_eq!(parsed.first_string.as_deref(), Some("rkt-x"));
    }

    #[test]
    fn an_error_reply_gives_its_name_and_message() {
        // An error reply as dbus-daemon sends it, big-endian to check both
        // byte orders: fields REPLY_SERIAL=3, ERROR_NAME, SIGNATURE "s".
        let mut fields = Vec::new();
        fields.extend_from_slice(&[FIELD_REPLY_SERIAL, 1, b'u', 0]);
        fields.extend_from_slice(&3u32.to_be_bytes());
        let name = b"org.freedesktop.DBus.Error.ServiceUnknown";
        fields.extend_from_slice(&[FIELD_ERROR_NAME, 1, b's', 0]);
        fields.extend_from_slice(&(name.len() as u32).to_be_bytes());
        fields.extend_from_slice(name);
        fields.push(0);
        while !fields.len().is_multiple_of(8) {
            fields.push(0);
        }
        fields.extend_from_slice(&[FIELD_SIGNATURE, 1, b'g', 0, 1, b's', 0]);
        let text = b"no machined";
        let mut body = (text.len() as u32).to_be_bytes().to_vec();
        body.extend_from_slice(text);
        body.push(0);
        let mut msg = vec![b'B', ERROR, 1, 1];
        msg.extend_from_slice(&(body.len() as u32).to_be_bytes());
        msg.extend_from_slice(&9u32.to_be_bytes());
        msg.extend_from_slice(&(fields.len() as u32).to_be_bytes());
        msg.extend_from_slice(&fields);
        while !msg.len().is_multiple_of(8) {
            msg.push(0);
        }
        msg.extend_from_slice(&body);
        let got = read_message(&mut &msg[..]).unwrap();
        assert_eq!(
            got,
            Received {
                kind: ERROR,
                reply_serial: Some(3),
                error_name: Some(String::from_utf8(name.to_vec()).unwrap()),
                first_string: Some("no machined".into()),
            }
        );
    }

    #[test]
    fn truncated_and_oversized_messages_are_refused() {
        let msg = encode_call(1, MACHINED, &[Arg::Str("a")]);
        assert!(read_message(&mut &msg[..msg.len() - 1]).is_err());
        let mut huge = msg.clone();
        huge[4..8].copy_from_slice(&(MAX_MESSAGE as u32).to_le_bytes());
        assert!(matches!(
            read_message(&mut &huge[..]),
            Err(DbusError::Malformed("message too large"))
        ));
    }
}
