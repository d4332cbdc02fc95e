//! A tiny SMTP server that captures every message, for tests.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::Notify;

/// One captured message.
#[derive(Debug, Clone)]
pub struct Captured {
    pub to: Vec<String>,
    pub data: String,
}

impl Captured {
    /// The value after `<label>: ` on a line of the message, if any.
    pub fn line_value(&self, label: &str) -> Option<String> {
        let prefix = format!("{label}: ");
        self.data.lines().find_map(|line| line.strip_prefix(&prefix).map(|v| v.trim().to_owned()))
    }
}

#[derive(Clone)]
pub struct SmtpSink {
    pub port: u16,
    messages: Arc<Mutex<Vec<Captured>>>,
    arrived: Arc<Notify>,
    /// While set, every `MAIL FROM` is answered with a transient failure (an outage).
    failing: Arc<AtomicBool>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sink = Self {
            port: listener.local_addr().unwrap().port(),
            messages: Arc::default(),
            arrived: Arc::default(),
            failing: Arc::default(),
        };
        let server = sink.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    let _ = server.session(socket).await;
                });
            }
        });
        sink
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    pub fn messages(&self) -> Vec<Captured> {
        self.messages.lock().unwrap().clone()
    }

    pub fn messages_to(&self, to: &str) -> Vec<Captured> {
        self.messages().into_iter().filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(to))).collect()
    }

    /// Waits (up to a generous bound, as a hang guard) for the `nth` (1-based)
    /// message to `to` whose data contains `needle`.
    pub async fn wait_for(&self, to: &str, needle: &str, nth: usize) -> Captured {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let notified = self.arrived.notified();
            let found: Vec<Captured> = self.messages_to(to).into_iter().filter(|m| m.data.contains(needle)).collect();
            if found.len() >= nth {
                return found[nth - 1].clone();
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no mail #{nth} to {to} containing {needle:?}; got {:#?}", self.messages());
            }
        }
    }

    async fn session(&self, socket: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = socket.into_split();
        let mut lines = BufReader::new(read).lines();
        write.write_all(b"220 sink ESMTP\r\n").await?;
        let mut to = Vec::new();
        while let Some(line) = lines.next_line().await? {
            let upper = line.to_ascii_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                write.write_all(b"250-sink\r\n250 8BITMIME\r\n").await?;
            } else if upper.starts_with("MAIL FROM") {
                if self.failing.load(Ordering::SeqCst) {
                    write.write_all(b"451 4.3.0 try again later\r\n").await?;
                } else {
                    to.clear();
                    write.write_all(b"250 OK\r\n").await?;
                }
            } else if upper.starts_with("RCPT TO") {
                let address = line[line.find('<').map(|i| i + 1).unwrap_or(8)..].trim_end_matches('>').to_owned();
                to.push(address);
                write.write_all(b"250 OK\r\n").await?;
            } else if upper == "DATA" {
                write.write_all(b"354 end with .\r\n").await?;
                let mut data = String::new();
                while let Some(line) = lines.next_line().await? {
                    if line == "." {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                    data.push('\n');
                }
                self.messages.lock().unwrap().push(Captured { to: std::mem::take(&mut to), data });
                self.arrived.notify_waiters();
                write.write_all(b"250 OK queued\r\n").await?;
            } else if upper == "QUIT" {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            } else {
                // RSET, NOOP and anything else.
                write.write_all(b"250 OK\r\n").await?;
            }
        }
        Ok(())
    }
}
