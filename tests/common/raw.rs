//! A raw HTTP/1.1 client over TCP, for what reqwest cannot send: reqwest (the `url` crate)
//! folds `.`, `..` and `%2e%2e` path segments away and refuses some header bytes, and a test of
//! the body limit sends less body than it announces. Each request goes on a new connection.

use serde_json::Value;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest an answer may take. No request sent this way long-polls (a reserve either carries
/// no `wait` or finds a message ready), so a slower answer is a hang.
pub const ANSWER_LIMIT: Duration = Duration::from_secs(10);

/// A request as sent on the wire: method and target exactly as given (no normalization),
/// headers as bytes. `Host`, `Connection: close` and `Content-Length` are added.
#[derive(Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(method: &str, target: impl Into<String>) -> Self {
        Request {
            method: method.to_string(),
            target: target.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn token(self, token: &str) -> Self {
        self.header("Authorization", format!("OAuth {token}"))
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Replaces placeholders in the target and (UTF-8) body by values known only at run time.
    pub fn substitute(mut self, values: &[(&str, &str)]) -> Self {
        for (placeholder, value) in values {
            self.target = self.target.replace(placeholder, value);
            if let Some(body) = &self.body
                && let Ok(text) = std::str::from_utf8(body)
                && text.contains(placeholder)
            {
                self.body = Some(text.replace(placeholder, value).into_bytes());
            }
        }
        self
    }

    pub fn is_head(&self) -> bool {
        self.method == "HEAD"
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if let Some(body) = &self.body {
            out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
            out.extend_from_slice(body);
        } else {
            out.extend_from_slice(b"\r\n");
        }
        out
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, shown(self.target.as_bytes()))?;
        for (name, value) in &self.headers {
            write!(f, " [{name}: {}]", shown(value))?;
        }
        if let Some(body) = &self.body {
            write!(f, " body {}", shown(body))?;
        }
        Ok(())
    }
}

/// Bytes as an escaped string for failure reports, long ones cut in the middle.
pub fn shown(bytes: &[u8]) -> String {
    let text = match std::str::from_utf8(bytes) {
        Ok(s) => format!("{s:?}"),
        Err(_) => format!("b\"{}\"", bytes.escape_ascii()),
    };
    let chars = text.chars().count();
    if chars <= 300 {
        return text;
    }
    let head: String = text.chars().take(200).collect();
    let tail: String = text.chars().skip(chars - 60).collect();
    format!("{head}…[{} bytes in all]…{tail}", bytes.len())
}

/// A final answer (interim 1xx answers skipped).
pub struct Reply {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let content_type = self.content_type.as_deref().unwrap_or("(none)");
        write!(f, "{} [{content_type}] {}", self.status, shown(&self.body))
    }
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The answer in `buf` once it is complete (`None` while more is needed). `eof`: nothing more
/// will come, so a body without framing ends here.
fn parse(buf: &[u8], head: bool, eof: bool) -> Result<Option<Reply>, String> {
    let mut rest = buf;
    loop {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            return Ok(None);
        };
        // Lossy: a header may echo bytes a client sent (obs-text).
        let text = String::from_utf8_lossy(&rest[..end]);
        let mut lines = text.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {status_line:?}"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let get = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        rest = &rest[end + 4..];
        if (100..200).contains(&status) {
            continue;
        }
        let body = if head || status == 204 || status == 304 {
            Vec::new()
        } else if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            match dechunk(rest)? {
                Some(body) => body,
                None => return Ok(None),
            }
        } else if let Some(len) = get("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| format!("bad Content-Length {len:?}"))?;
            if rest.len() < len {
                return Ok(None);
            }
            rest[..len].to_vec()
        } else if eof {
            rest.to_vec()
        } else {
            return Ok(None);
        };
        return Ok(Some(Reply {
            status,
            content_type: get("content-type").map(String::from),
            body,
        }));
    }
}

fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut body = Vec::new();
    loop {
        let Some(end) = find(rest, b"\r\n") else {
            return Ok(None);
        };
        let line = String::from_utf8_lossy(&rest[..end]);
        let size_text = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[end + 2..];
        if size == 0 {
            return Ok(Some(body));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Reads until one whole answer is in, the connection ends, or it fails.
pub async fn read_reply(
    reader: &mut (impl AsyncRead + Unpin),
    head: bool,
) -> Result<Reply, String> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) => {
                return parse(&buf, head, true)?.ok_or_else(|| {
                    format!(
                        "connection closed without a complete answer (got {})",
                        shown(&buf)
                    )
                });
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if let Some(reply) = parse(&buf, head, false)? {
                    return Ok(reply);
                }
            }
            Err(err) => {
                return parse(&buf, head, true)?.ok_or_else(|| {
                    format!(
                        "connection failed ({err}) without a complete answer (got {})",
                        shown(&buf)
                    )
                });
            }
        }
    }
}

/// Sends `request` on a new connection and reads the answer; a transport failure (the
/// connection dropped, say by a panicking handler) or no answer in time is an `Err`.
pub async fn send(addr: SocketAddr, request: &Request) -> Result<Reply, String> {
    let bytes = request.to_bytes();
    let exchange = async {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut reader, mut writer) = stream.split();
        // Written while the answer is read: the server may answer (413) before taking the
        // whole body. The write side stays open until the answer is in (closing it early
        // would end the request).
        let write = async {
            let _ = writer.write_all(&bytes).await;
            std::future::pending::<()>().await
        };
        tokio::select! {
            reply = read_reply(&mut reader, request.is_head()) => reply,
            () = write => unreachable!(),
        }
    };
    tokio::time::timeout(ANSWER_LIMIT, exchange)
        .await
        .map_err(|_| format!("no answer within {ANSWER_LIMIT:?}"))?
}

/// Sends a request that must succeed and returns its JSON.
pub async fn call(addr: SocketAddr, request: Request) -> Result<Value, String> {
    let reply = send(addr, &request).await?;
    if !(200..300).contains(&reply.status) {
        return Err(format!("{request:?} answered {reply:?}"));
    }
    serde_json::from_slice(&reply.body).map_err(|e| format!("{request:?}: {e}: {reply:?}"))
}
