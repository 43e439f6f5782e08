//! A small RESP2 client for the Redis online store: pipelined commands over a pool of TCP
//! connections, with timeouts, and no dependency beyond tokio.
//!
//! * [`RedisClient::connect`] parses `redis://[[user]:password@]host[:port][/db]` (port 6379
//!   by default) and opens one connection at once, so a bad address fails early. Every new
//!   connection sends `AUTH` and `SELECT` when the URL names a password / database.
//! * [`RedisClient::pipeline`] writes all of its commands (RESP arrays of bulk strings) in
//!   one write, then reads their replies in order. A Redis error reply is a [`Reply::Error`]
//!   in the result (callers decide what it means); only I/O, protocol and timeout failures
//!   are `Err` ([`ErrorKind::Unavailable`](crate::error::ErrorKind), naming the address).
//! * Connections are pooled: a pipeline takes an idle connection or opens a new one, up to
//!   [`RedisClient::max_connections`] open at once (further callers wait), and gives it
//!   back when it finished cleanly. A connection that failed, timed out or was cancelled
//!   mid-pipeline is dropped, never reused (its stream may be half read). A pipeline that
//!   fails on a reused connection before any reply arrived (the server closed an idle
//!   connection) is retried once on a fresh one.
//!
//! Replies are parsed incrementally from a read buffer ([`parse_reply`]), so replies split
//! across TCP reads in any way are handled, and an incomplete reply says how many bytes it
//! needs at least, so a large bulk string is not re-parsed on every read.

use std::sync::Mutex;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;

use crate::error::FStoreError;

type Result<T, E = FStoreError> = std::result::Result<T, E>;

/// One command: its name and arguments, each a byte string.
pub type Command = Vec<Vec<u8>>;

/// Builds a [`Command`] from anything byte-like: `cmd(["HGET", key, "f"])`.
pub fn cmd<I, A>(args: I) -> Command
where
    I: IntoIterator<Item = A>,
    A: AsRef<[u8]>,
{
    args.into_iter().map(|a| a.as_ref().to_vec()).collect()
}

/// A RESP2 reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`: the command failed (the connection is fine).
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3 abc`; None for the null bulk string (`$-1`).
    Bulk(Option<Vec<u8>>),
    /// `*2 …`; None for the null array (`*-1`).
    Array(Option<Vec<Reply>>),
}

impl Reply {
    /// The error message when this is an error reply.
    pub fn as_error(&self) -> Option<&str> {
        match self {
            Reply::Error(e) => Some(e),
            _ => None,
        }
    }

    /// The bytes of a bulk or simple string; None for nil and other replies.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Reply::Bulk(Some(b)) => Some(b),
            Reply::Simple(s) => Some(s.as_bytes()),
            _ => None,
        }
    }

    /// The value of an integer reply.
    pub fn as_integer(&self) -> Option<i64> {
        match self {
            Reply::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// Short description for error messages (never the whole payload).
    pub fn describe(&self) -> String {
        match self {
            Reply::Simple(s) => format!("+{}", truncate(s)),
            Reply::Error(e) => format!("error {}", truncate(e)),
            Reply::Integer(i) => format!("integer {i}"),
            Reply::Bulk(None) => "nil".into(),
            Reply::Bulk(Some(b)) => format!("a {}-byte string", b.len()),
            Reply::Array(None) => "nil array".into(),
            Reply::Array(Some(a)) => format!("an array of {}", a.len()),
        }
    }
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(200) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Appends the RESP encoding of `command` (an array of bulk strings) to `out`.
pub fn encode_command(command: &[Vec<u8>], out: &mut Vec<u8>) {
    out.push(b'*');
    out.extend_from_slice(command.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n");
    for arg in command {
        out.push(b'$');
        out.extend_from_slice(arg.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
}

/// The outcome of parsing the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A whole reply, and how many bytes it took.
    Complete(Reply, usize),
    /// The buffer holds only part of a reply; parsing can succeed once the buffer holds at
    /// least this many bytes (a lower bound).
    Incomplete(usize),
}

/// Nesting deeper than this is treated as garbage (Redis replies nest a few levels).
const MAX_DEPTH: usize = 64;

/// Parses the reply at the start of `buf`. Err for bytes that are not RESP2.
pub fn parse_reply(buf: &[u8]) -> Result<Parsed, String> {
    Ok(match parse_at(buf, 0, 0)? {
        Step::Done(reply, end) => Parsed::Complete(reply, end),
        Step::Need(n) => Parsed::Incomplete(n),
    })
}

enum Step {
    Done(Reply, usize),
    Need(usize),
}

/// The line starting at `start` (without its CRLF) and the position after the CRLF.
fn line(buf: &[u8], start: usize) -> Result<Option<(&[u8], usize)>, String> {
    let rest = &buf[start..];
    match rest.iter().position(|&b| b == b'\n') {
        None => Ok(None),
        Some(i) => {
            if i == 0 || rest[i - 1] != b'\r' {
                return Err("line not terminated by CRLF".into());
            }
            Ok(Some((&rest[..i - 1], start + i + 1)))
        }
    }
}

fn parse_int(bytes: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or_else(|| format!("bad integer {:?}", String::from_utf8_lossy(bytes)))
}

fn parse_at(buf: &[u8], pos: usize, depth: usize) -> Result<Step, String> {
    if depth > MAX_DEPTH {
        return Err("replies nested too deeply".into());
    }
    if pos >= buf.len() {
        return Ok(Step::Need(pos + 1));
    }
    let Some((text, after)) = line(buf, pos + 1)? else {
        return Ok(Step::Need(buf.len() + 1));
    };
    match buf[pos] {
        b'+' => Ok(Step::Done(
            Reply::Simple(String::from_utf8_lossy(text).into_owned()),
            after,
        )),
        b'-' => Ok(Step::Done(
            Reply::Error(String::from_utf8_lossy(text).into_owned()),
            after,
        )),
        b':' => Ok(Step::Done(Reply::Integer(parse_int(text)?), after)),
        b'$' => {
            let len = parse_int(text)?;
            if len == -1 {
                return Ok(Step::Done(Reply::Bulk(None), after));
            }
            let len = usize::try_from(len).map_err(|_| format!("bad bulk length {len}"))?;
            let end = after
                .checked_add(len)
                .and_then(|e| e.checked_add(2))
                .ok_or("bulk length overflows")?;
            if buf.len() < end {
                return Ok(Step::Need(end));
            }
            if &buf[end - 2..end] != b"\r\n" {
                return Err("bulk string not terminated by CRLF".into());
            }
            Ok(Step::Done(
                Reply::Bulk(Some(buf[after..end - 2].to_vec())),
                end,
            ))
        }
        b'*' => {
            let n = parse_int(text)?;
            if n == -1 {
                return Ok(Step::Done(Reply::Array(None), after));
            }
            let n = usize::try_from(n).map_err(|_| format!("bad array length {n}"))?;
            let mut items = Vec::with_capacity(n.min(1024));
            let mut at = after;
            for _ in 0..n {
                match parse_at(buf, at, depth + 1)? {
                    Step::Done(item, next) => {
                        items.push(item);
                        at = next;
                    }
                    need @ Step::Need(_) => return Ok(need),
                }
            }
            Ok(Step::Done(Reply::Array(Some(items)), at))
        }
        other => Err(format!("unexpected reply type byte 0x{other:02x}")),
    }
}

/// Where and how to connect, parsed from a `redis://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisAddress {
    /// `host:port`, as given to `TcpStream::connect` and shown in messages.
    pub addr: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub db: Option<u32>,
}

impl RedisAddress {
    /// Parses `redis://[[user]:password@]host[:port][/db]`.
    pub fn parse(url: &str) -> Result<RedisAddress> {
        let bad = |why: &str| {
            FStoreError::invalid(format!(
                "bad Redis URL {:?}: {why} (expected redis://[:password@]host:port[/db])",
                redact(url)
            ))
        };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if parsed.scheme() != "redis" {
            return Err(bad("the scheme must be redis:// (TLS is not supported)"));
        }
        let host = parsed
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| bad("no host"))?;
        let port = parsed.port().unwrap_or(6379);
        let password = parsed.password().map(percent_decode);
        let username = if parsed.username().is_empty() {
            None
        } else {
            Some(percent_decode(parsed.username()))
        };
        if username.is_some() && password.is_none() {
            return Err(bad(
                "a user name needs a password (redis://user:password@host)",
            ));
        }
        let path = parsed.path().trim_matches('/');
        let db = if path.is_empty() {
            None
        } else {
            Some(
                path.parse::<u32>()
                    .map_err(|_| bad("the path must be a database number"))?,
            )
        };
        Ok(RedisAddress {
            addr: format!("{host}:{port}"),
            username,
            password,
            db,
        })
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(v) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How a connection failed.
#[derive(Debug)]
enum ConnError {
    Io(std::io::Error),
    Protocol(String),
}

impl std::fmt::Display for ConnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ConnError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                f.write_str("connection closed by the server")
            }
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Protocol(m) => write!(f, "protocol error: {m}"),
        }
    }
}

/// One TCP connection with its read buffer.
struct Connection {
    stream: TcpStream,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// False once the stream is in an unknown state (extra bytes after the replies).
    reusable: bool,
}

const READ_CHUNK: usize = 64 * 1024;

impl Connection {
    fn new(stream: TcpStream) -> Connection {
        Connection {
            stream,
            rbuf: Vec::with_capacity(READ_CHUNK),
            rpos: 0,
            wbuf: Vec::new(),
            reusable: true,
        }
    }

    /// Sends `cmds` and reads their replies; on failure also says how many replies were
    /// read before it.
    async fn roundtrip(&mut self, cmds: &[Command]) -> Result<Vec<Reply>, (ConnError, usize)> {
        self.wbuf.clear();
        for c in cmds {
            encode_command(c, &mut self.wbuf);
        }
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| (ConnError::Io(e), 0))?;
        if self.wbuf.capacity() > 4 * READ_CHUNK {
            self.wbuf = Vec::new();
        }
        let mut replies = Vec::with_capacity(cmds.len());
        while replies.len() < cmds.len() {
            let reply = self.read_reply().await.map_err(|e| (e, replies.len()))?;
            replies.push(reply);
        }
        if self.rpos < self.rbuf.len() {
            // Bytes nobody asked for: the stream is out of step with our commands.
            self.reusable = false;
        }
        self.rbuf.clear();
        self.rpos = 0;
        if self.rbuf.capacity() > 4 * READ_CHUNK {
            self.rbuf = Vec::with_capacity(READ_CHUNK);
        }
        Ok(replies)
    }

    async fn read_reply(&mut self) -> Result<Reply, ConnError> {
        loop {
            let need = match parse_reply(&self.rbuf[self.rpos..]).map_err(ConnError::Protocol)? {
                Parsed::Complete(reply, used) => {
                    self.rpos += used;
                    return Ok(reply);
                }
                Parsed::Incomplete(need) => need,
            };
            // Drop consumed bytes before growing the buffer.
            if self.rpos > 0 {
                self.rbuf.drain(..self.rpos);
                self.rpos = 0;
            }
            while self.rbuf.len() < need {
                let want = (need - self.rbuf.len()).max(READ_CHUNK);
                self.rbuf.reserve(want);
                let n = self
                    .stream
                    .read_buf(&mut self.rbuf)
                    .await
                    .map_err(ConnError::Io)?;
                if n == 0 {
                    return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
                }
            }
        }
    }
}

/// A pooled RESP2 client for one Redis server.
#[derive(Debug)]
pub struct RedisClient {
    address: RedisAddress,
    idle: Mutex<Vec<Connection>>,
    slots: Semaphore,
    max_connections: usize,
    connect_timeout: Duration,
    pipeline_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// Default cap on open connections per client.
pub const DEFAULT_MAX_CONNECTIONS: usize = 32;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_PIPELINE_TIMEOUT: Duration = Duration::from_secs(30);

impl RedisClient {
    /// Parses `url` and opens a first connection (kept in the pool).
    pub async fn connect(url: &str) -> Result<RedisClient> {
        let client = RedisClient::new(RedisAddress::parse(url)?);
        let conn = client.open().await?;
        client.idle.lock().expect("pool lock").push(conn);
        Ok(client)
    }

    /// A client that opens connections on demand (nothing is opened yet).
    pub fn new(address: RedisAddress) -> RedisClient {
        RedisClient {
            address,
            idle: Mutex::new(Vec::new()),
            slots: Semaphore::new(DEFAULT_MAX_CONNECTIONS),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            pipeline_timeout: DEFAULT_PIPELINE_TIMEOUT,
        }
    }

    /// Caps the number of connections open at once (at least 1).
    pub fn with_max_connections(mut self, n: usize) -> RedisClient {
        let n = n.max(1);
        self.slots = Semaphore::new(n);
        self.max_connections = n;
        self
    }

    pub fn with_timeouts(mut self, connect: Duration, pipeline: Duration) -> RedisClient {
        self.connect_timeout = connect;
        self.pipeline_timeout = pipeline;
        self
    }

    /// `host:port` of the server.
    pub fn addr(&self) -> &str {
        &self.address.addr
    }

    pub fn max_connections(&self) -> usize {
        self.max_connections
    }

    /// Opens, authenticates and selects the database of a new connection.
    async fn open(&self) -> Result<Connection> {
        let addr = &self.address.addr;
        let opening = async {
            let stream = TcpStream::connect(addr.as_str()).await.map_err(|e| {
                FStoreError::unavailable(format!("cannot reach Redis at {addr}: {e}"))
            })?;
            stream.set_nodelay(true).map_err(|e| {
                FStoreError::unavailable(format!("cannot reach Redis at {addr}: {e}"))
            })?;
            let mut conn = Connection::new(stream);
            let mut hello = Vec::new();
            if let Some(password) = &self.address.password {
                match &self.address.username {
                    Some(user) => hello.push(cmd(["AUTH", user, password])),
                    None => hello.push(cmd(["AUTH", password])),
                }
            }
            if let Some(db) = self.address.db {
                hello.push(cmd(["SELECT".to_string(), db.to_string()]));
            }
            if !hello.is_empty() {
                let replies = conn.roundtrip(&hello).await.map_err(|(e, _)| {
                    FStoreError::unavailable(format!("cannot reach Redis at {addr}: {e}"))
                })?;
                for (c, r) in hello.iter().zip(&replies) {
                    if let Some(e) = r.as_error() {
                        let what = String::from_utf8_lossy(&c[0]).into_owned();
                        return Err(FStoreError::unavailable(format!(
                            "Redis at {addr} refused {what}: {e}"
                        )));
                    }
                }
            }
            Ok(conn)
        };
        match tokio::time::timeout(self.connect_timeout, opening).await {
            Ok(r) => r,
            Err(_) => Err(FStoreError::unavailable(format!(
                "cannot reach Redis at {addr}: no connection within {} s",
                self.connect_timeout.as_secs_f64()
            ))),
        }
    }

    /// Runs one command.
    pub async fn command(&self, command: Command) -> Result<Reply> {
        let mut replies = self.pipeline(std::slice::from_ref(&command)).await?;
        Ok(replies.pop().expect("one reply per command"))
    }

    /// Sends `cmds` in one write and returns their replies, in order. Error replies are
    /// [`Reply::Error`] values; Err means the server could not be talked to.
    pub async fn pipeline(&self, cmds: &[Command]) -> Result<Vec<Reply>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let addr = &self.address.addr;
        let _slot =
            self.slots.acquire().await.map_err(|_| {
                FStoreError::unavailable(format!("Redis client for {addr} is closed"))
            })?;
        let pooled = self.idle.lock().expect("pool lock").pop();
        let reused = pooled.is_some();
        let conn = match pooled {
            Some(c) => c,
            None => self.open().await?,
        };
        match self.run(conn, cmds).await {
            Ok(replies) => Ok(replies),
            Err(Failure::Conn(ConnError::Io(e), 0))
                if reused
                    && matches!(
                        e.kind(),
                        std::io::ErrorKind::UnexpectedEof
                            | std::io::ErrorKind::ConnectionReset
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::BrokenPipe
                    ) =>
            {
                // The server closed the idle connection (timeout, restart): nothing of this
                // pipeline ran. Try once more on a new connection.
                let conn = self.open().await?;
                self.run(conn, cmds)
                    .await
                    .map_err(|f| f.into_error(addr, self.pipeline_timeout))
            }
            Err(f) => Err(f.into_error(addr, self.pipeline_timeout)),
        }
    }

    async fn run(&self, mut conn: Connection, cmds: &[Command]) -> Result<Vec<Reply>, Failure> {
        match tokio::time::timeout(self.pipeline_timeout, conn.roundtrip(cmds)).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err((e, done))) => Err(Failure::Conn(e, done)),
            Ok(Ok(replies)) => {
                if conn.reusable {
                    let mut idle = self.idle.lock().expect("pool lock");
                    if idle.len() < self.max_connections {
                        idle.push(conn);
                    }
                }
                Ok(replies)
            }
        }
    }
}

enum Failure {
    Timeout,
    Conn(ConnError, usize),
}

impl Failure {
    fn into_error(self, addr: &str, timeout: Duration) -> FStoreError {
        match self {
            Failure::Timeout => FStoreError::unavailable(format!(
                "Redis at {addr} did not answer within {} s",
                timeout.as_secs_f64()
            )),
            Failure::Conn(e, _) => FStoreError::unavailable(format!("Redis at {addr}: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(bytes: &[u8]) -> (Reply, usize) {
        match parse_reply(bytes).expect("valid") {
            Parsed::Complete(r, n) => (r, n),
            Parsed::Incomplete(n) => panic!("incomplete, needs {n}"),
        }
    }

    #[test]
    fn parses_every_reply_type() {
        assert_eq!(complete(b"+OK\r\n"), (Reply::Simple("OK".into()), 5));
        assert_eq!(
            complete(b"-ERR wrong type\r\n"),
            (Reply::Error("ERR wrong type".into()), 17)
        );
        assert_eq!(complete(b":-42\r\n"), (Reply::Integer(-42), 6));
        assert_eq!(complete(b"$-1\r\n"), (Reply::Bulk(None), 5));
        assert_eq!(complete(b"$0\r\n\r\n"), (Reply::Bulk(Some(vec![])), 6));
        assert_eq!(
            complete(b"$5\r\na\r\nb\0\r\n"),
            (Reply::Bulk(Some(b"a\r\nb\0".to_vec())), 11)
        );
        assert_eq!(complete(b"*-1\r\n"), (Reply::Array(None), 5));
        assert_eq!(complete(b"*0\r\n"), (Reply::Array(Some(vec![])), 4));
        let (r, n) = complete(b"*3\r\n$1\r\na\r\n$-1\r\n*2\r\n:1\r\n+x\r\n+next\r\n");
        assert_eq!(n, 28);
        assert_eq!(
            r,
            Reply::Array(Some(vec![
                Reply::Bulk(Some(b"a".to_vec())),
                Reply::Bulk(None),
                Reply::Array(Some(vec![Reply::Integer(1), Reply::Simple("x".into())])),
            ]))
        );
    }

    #[test]
    fn every_prefix_is_incomplete_with_a_sound_bound() {
        let stream: &[u8] =
            b"*2\r\n$5\r\nhello\r\n*2\r\n$-1\r\n:7\r\n-ERR x\r\n$11\r\nhello world\r\n";
        let (_, first) = complete(stream);
        for cut in 0..first {
            match parse_reply(&stream[..cut]).expect("valid prefix") {
                Parsed::Incomplete(need) => {
                    assert!(need > cut, "cut {cut}: bound {need} must exceed the buffer");
                    assert!(
                        need <= first,
                        "cut {cut}: bound {need} beyond the reply end"
                    );
                }
                Parsed::Complete(..) => panic!("cut {cut}: a prefix parsed as complete"),
            }
        }
        // The replies of a pipeline, one after another.
        let mut at = 0;
        let mut replies = Vec::new();
        while at < stream.len() {
            let (r, n) = complete(&stream[at..]);
            replies.push(r);
            at += n;
        }
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[1], Reply::Error("ERR x".into()));
        assert_eq!(replies[2], Reply::Bulk(Some(b"hello world".to_vec())));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_reply(b"?what\r\n").is_err());
        assert!(parse_reply(b":12a\r\n").is_err());
        assert!(parse_reply(b"$3\r\nabcde\r\n").is_err());
        assert!(parse_reply(b"+OK\n").is_err());
        assert!(parse_reply(b"$-2\r\n").is_err());
        let deep = "*1\r\n".repeat(MAX_DEPTH + 2);
        assert!(parse_reply(deep.as_bytes()).is_err());
    }

    #[test]
    fn encodes_commands_as_bulk_arrays() {
        let mut out = Vec::new();
        encode_command(&cmd(["SET", "k", ""]), &mut out);
        encode_command(&cmd([b"GET".as_slice(), b"a\r\nb"]), &mut out);
        assert_eq!(
            out,
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n*2\r\n$3\r\nGET\r\n$4\r\na\r\nb\r\n"
        );
    }

    #[test]
    fn parses_urls() {
        let a = RedisAddress::parse("redis://127.0.0.1:6380").unwrap();
        assert_eq!(a.addr, "127.0.0.1:6380");
        assert_eq!((a.username, a.password, a.db), (None, None, None));
        let a = RedisAddress::parse("redis://:s%40cret@cache/3").unwrap();
        assert_eq!(a.addr, "cache:6379");
        assert_eq!(a.password.as_deref(), Some("s@cret"));
        assert_eq!(a.db, Some(3));
        let a = RedisAddress::parse("redis://app:pw@[::1]:7000/").unwrap();
        assert_eq!(a.addr, "[::1]:7000");
        assert_eq!(a.username.as_deref(), Some("app"));
        assert_eq!(a.db, None);
        for bad in [
            "http://h:1",
            "rediss://h:1",
            "redis://h:1/x",
            "redis://user@h",
            "nope",
        ] {
            let e = RedisAddress::parse(bad).unwrap_err();
            assert_eq!(e.kind, crate::error::ErrorKind::InvalidArgument, "{bad}");
        }
        let e = RedisAddress::parse("redis://:hunter2@h:1/x").unwrap_err();
        assert!(!e.message.contains("hunter2"), "{}", e.message);
    }
}
