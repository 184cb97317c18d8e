//! A real SMTP server in the test process (mailin-embedded on 127.0.0.1), so the portal's
//! lettre transport speaks SMTP over a socket exactly as it would in production.

use std::io;
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mailin_embedded::{Handler, Response, Server, SslConfig, response};

#[derive(Debug, Clone)]
pub struct Received {
    /// Envelope recipients (RCPT TO), which is where the mail really goes.
    pub to: Vec<String>,
    pub raw: String,
}

impl Received {
    /// The message with quoted-printable soft breaks and escapes undone.
    pub fn decoded(&self) -> String {
        decode_qp(&self.raw)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.raw.split("\r\n\r\n").next().unwrap_or("");
        let prefix = format!("{}:", name.to_ascii_lowercase());
        head.split("\r\n")
            .find(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
    }

    /// Path of the first accept link in the message: `/invite/<token>`.
    pub fn invite_path(&self) -> String {
        self.link_path("/invite/")
            .expect("the email has an invitation link")
    }

    /// Path of the first link under `prefix` (such as `/setup/`), with its token.
    pub fn link_path(&self, prefix: &str) -> Option<String> {
        let text = self.decoded();
        let start = text.find(prefix)? + prefix.len();
        let token: String = text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
            .collect();
        Some(format!("{prefix}{token}"))
    }
}

fn decode_qp(raw: &str) -> String {
    let joined = raw.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && bytes[i + 1].is_ascii_hexdigit()
            && bytes[i + 2].is_ascii_hexdigit()
        {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
            out.push(u8::from_str_radix(hex, 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[derive(Clone)]
struct Capture {
    inbox: Arc<Mutex<Vec<Received>>>,
    to: Vec<String>,
    data: Vec<u8>,
    /// How long the server takes to accept each message (answer the `.` with 250).
    delay: Duration,
}

impl Handler for Capture {
    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn data(&mut self, buf: &[u8]) -> io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        std::thread::sleep(self.delay);
        self.inbox.lock().unwrap().push(Received {
            to: std::mem::take(&mut self.to),
            raw: String::from_utf8_lossy(&std::mem::take(&mut self.data)).into_owned(),
        });
        response::OK
    }
}

pub struct SmtpServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<Received>>>,
}

impl SmtpServer {
    pub fn start() -> Self {
        Self::serve(TcpListener::bind("127.0.0.1:0").expect("bind SMTP port"))
    }

    /// A server on a port chosen earlier, e.g. one the portal already failed to reach.
    pub fn start_on(port: u16) -> Self {
        Self::serve(TcpListener::bind(("127.0.0.1", port)).expect("bind SMTP port"))
    }

    /// A server that takes `delay` to accept each message, so a batch is mid-flight for a
    /// while. A message counts as delivered once the delay is over, even if the sender is
    /// gone by then, as with a real server that got the whole message.
    pub fn start_slow(delay: Duration) -> Self {
        Self::serve_with(
            TcpListener::bind("127.0.0.1:0").expect("bind SMTP port"),
            delay,
        )
    }

    /// A server offering STARTTLS with this certificate (PEM files).
    pub fn start_with_starttls(cert: &Path, key: &Path) -> Self {
        // rustls is built with two crypto providers here (ring for reqwest, aws-lc-rs by
        // mailin's rustls defaults): one must be chosen for the process before a server
        // configuration can be made.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let tls = SslConfig::SelfSigned {
            cert_path: cert.to_str().expect("UTF-8 path").to_string(),
            key_path: key.to_str().expect("UTF-8 path").to_string(),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind SMTP port");
        Self::serve_configured(listener, Duration::ZERO, tls)
    }

    fn serve(listener: TcpListener) -> Self {
        Self::serve_with(listener, Duration::ZERO)
    }

    fn serve_with(listener: TcpListener, delay: Duration) -> Self {
        Self::serve_configured(listener, delay, SslConfig::None)
    }

    fn serve_configured(listener: TcpListener, delay: Duration, tls: SslConfig) -> Self {
        let port = listener.local_addr().unwrap().port();
        let inbox = Arc::new(Mutex::new(Vec::new()));
        let handler = Capture {
            inbox: inbox.clone(),
            to: Vec::new(),
            data: Vec::new(),
            delay,
        };
        let mut server = Server::new(handler);
        server.with_ssl(tls).expect("the certificate and key load");
        server
            .with_name("smtp.test")
            .with_num_threads(16)
            .with_tcp_listener(listener);
        // Serves until the test process ends.
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { port, inbox }
    }

    /// `--smtp-url` for this server (plain text on loopback).
    pub fn url(&self) -> String {
        url_for(self.port)
    }

    pub fn received(&self) -> Vec<Received> {
        self.inbox.lock().unwrap().clone()
    }

    /// Waits until at least `n` messages arrived, and answers all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} emails, got {}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

pub fn url_for(port: u16) -> String {
    format!("smtp://127.0.0.1:{port}?tls=none")
}

/// A loopback port nothing listens on (yet).
pub fn unused_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
