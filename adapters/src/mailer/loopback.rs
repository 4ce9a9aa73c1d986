//! A loopback SMTP server for tests: speaks enough SMTP for `lettre` (EHLO, AUTH PLAIN and
//! LOGIN, MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT; no TLS) and hands each
//! message it accepts to the test, in order. Point a [`MailerConfig`](super::MailerConfig) at it
//! with `starttls: false`.

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Most messages held for the test before the server stops accepting more.
const MAX_WAITING: usize = 64;
/// Longest message accepted, in bytes.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Longest command or data line accepted, in bytes.
const MAX_LINE_BYTES: usize = 4 * 1024;

/// One message the server accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in order.
    pub to: Vec<String>,
    /// The message as sent: headers and body, lines ending in CRLF, dots unstuffed.
    pub data: String,
    /// The user name it signed in with, if it did.
    pub auth: Option<String>,
}

/// A running loopback SMTP server; stops when dropped.
#[derive(Debug)]
pub struct LoopbackSmtp {
    port: u16,
    received: mpsc::Receiver<ReceivedMail>,
    server: tokio::task::JoinHandle<()>,
}

impl LoopbackSmtp {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let port = listener.local_addr().expect("local address").port();
        let (sender, received) = mpsc::channel(MAX_WAITING);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, sender.clone()));
            }
        });
        Self {
            port,
            received,
            server,
        }
    }

    /// The port it listens on (host `127.0.0.1`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The next message it accepted, waiting for it.
    pub async fn next(&mut self) -> ReceivedMail {
        self.received.recv().await.expect("the server runs")
    }

    /// A message already accepted, if any, without waiting.
    pub fn try_next(&mut self) -> Option<ReceivedMail> {
        self.received.try_recv().ok()
    }
}

impl Drop for LoopbackSmtp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// What one connection has said so far.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
    auth: Option<String>,
}

async fn session(stream: TcpStream, sender: mpsc::Sender<ReceivedMail>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut envelope = Envelope::default();
    if write
        .write_all(b"220 localhost ESMTP loopback\r\n")
        .await
        .is_err()
    {
        return;
    }
    while let Some(line) = read_line(&mut lines).await {
        let verb = line
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => {
                "250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n".to_owned()
            }
            "AUTH" => match authenticate(&line, &mut lines, &mut write).await {
                Some(user) => {
                    envelope.auth = Some(user);
                    "235 2.7.0 authenticated\r\n".to_owned()
                }
                None => "535 5.7.8 bad credentials\r\n".to_owned(),
            },
            "MAIL" => {
                envelope.from = Some(address(&line));
                envelope.to.clear();
                "250 2.1.0 ok\r\n".to_owned()
            }
            "RCPT" => {
                envelope.to.push(address(&line));
                "250 2.1.5 ok\r\n".to_owned()
            }
            "DATA" => match receive(&mut lines, &mut write, &mut envelope, &sender).await {
                true => "250 2.0.0 queued\r\n".to_owned(),
                false => return,
            },
            "RSET" => {
                envelope.from = None;
                envelope.to.clear();
                "250 2.0.0 ok\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 ok\r\n".to_owned(),
            "QUIT" => {
                let _ = write.write_all(b"221 2.0.0 bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 not implemented\r\n".to_owned(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads the message after `DATA` and hands it over; false when the connection failed.
async fn receive(
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    envelope: &mut Envelope,
    sender: &mpsc::Sender<ReceivedMail>,
) -> bool {
    if write
        .write_all(b"354 end with <CRLF>.<CRLF>\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut data = String::new();
    loop {
        let Some(line) = read_line(lines).await else {
            return false;
        };
        if line == "." {
            break;
        }
        let line = line.strip_prefix('.').unwrap_or(&line);
        if data.len() + line.len() > MAX_MESSAGE_BYTES {
            return false;
        }
        data.push_str(line);
        data.push_str("\r\n");
    }
    let mail = ReceivedMail {
        from: envelope.from.take().unwrap_or_default(),
        to: std::mem::take(&mut envelope.to),
        data,
        auth: envelope.auth.clone(),
    };
    sender.send(mail).await.is_ok()
}

/// The user name of an `AUTH PLAIN` or `AUTH LOGIN` exchange (any password is accepted).
async fn authenticate(
    line: &str,
    lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    write: &mut tokio::net::tcp::OwnedWriteHalf,
) -> Option<String> {
    let mut words = line.split(' ').skip(1);
    let mechanism = words.next()?.to_ascii_uppercase();
    let decode = |text: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    };
    match mechanism.as_str() {
        "PLAIN" => {
            let initial = match words.next() {
                Some(initial) => initial.to_owned(),
                None => {
                    write.write_all(b"334 \r\n").await.ok()?;
                    read_line(lines).await?
                }
            };
            decode(&initial)?.split('\0').nth(1).map(str::to_owned)
        }
        "LOGIN" => {
            write.write_all(b"334 VXNlcm5hbWU6\r\n").await.ok()?;
            let user = decode(&read_line(lines).await?)?;
            write.write_all(b"334 UGFzc3dvcmQ6\r\n").await.ok()?;
            read_line(lines).await?;
            Some(user)
        }
        _ => None,
    }
}

/// The address in `MAIL FROM:<a>` or `RCPT TO:<a>`.
fn address(line: &str) -> String {
    line.split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map(|(address, _)| address.to_owned())
        .unwrap_or_default()
}

/// One line without its CRLF; `None` at the end of the connection or past [`MAX_LINE_BYTES`].
async fn read_line(lines: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    let limit = u64::try_from(MAX_LINE_BYTES).unwrap_or(u64::MAX);
    let read = (&mut *lines).take(limit).read_line(&mut line).await.ok()?;
    if read == 0 || !line.ends_with('\n') {
        return None;
    }
    Some(line.trim_end_matches(['\r', '\n']).to_owned())
}
