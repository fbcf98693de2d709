//! A real `gdx exchange` over a real lake (built once per test binary by `gdx demo`), and a
//! minimal HTTP/1.1 client over loopback.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The lake every test of this binary shares: the synthetic district through `gdx demo`.
pub fn lake() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| super::demo_district("exchange-lake", 400, 40, 11).join("lake"))
}

pub fn lake_arg() -> &'static str {
    lake().to_str().unwrap()
}

/// Adds a principal to the shared lake through the CLI; returns its key.
pub fn principal(id: &str, department: &str, role: &str) -> String {
    principal_in(lake(), id, department, role)
}

/// Adds a principal to `lake` through the CLI; returns its key.
pub fn principal_in(lake: &Path, id: &str, department: &str, role: &str) -> String {
    let o = super::gdx(&[
        "principal",
        "add",
        id,
        "--department",
        department,
        "--role",
        role,
        "--lake",
        lake.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let key = super::stdout(&o).trim().to_owned();
    assert!(key.starts_with("gdx_") && !key.contains('\n'), "{key}");
    key
}

/// A unique principal id for this test process.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// A running `gdx exchange`; stopped (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The pgwire address, when started with `--pg`.
    pub pg: Option<String>,
    pub audit_dir: PathBuf,
    pub replica: String,
    /// The lake it serves.
    pub lake: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts an exchange on the shared lake, with its own replica name and audit dir.
    pub fn start(extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let audit_dir = tmp.path().join("audit");
        let replica = unique("r");
        let mut s = Self::start_at(&audit_dir, &replica, extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts an exchange on another lake, with its own replica name and audit dir.
    pub fn start_on(lake: &Path, extra: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let audit_dir = tmp.path().join("audit");
        let mut s = Self::start_with(lake, &audit_dir, &unique("r"), extra);
        s._tmp = Some(tmp);
        s
    }

    /// Starts an exchange with the given audit dir and replica (a restart).
    pub fn start_at(audit_dir: &Path, replica: &str, extra: &[&str]) -> Self {
        Self::start_with(lake(), audit_dir, replica, extra)
    }

    fn start_with(lake: &Path, audit_dir: &Path, replica: &str, extra: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gdx"))
            .args([
                "exchange",
                "--lake",
                lake.to_str().unwrap(),
                "--listen",
                "127.0.0.1:0",
                "--replica",
                replica,
                "--audit-dir",
                audit_dir.to_str().unwrap(),
                "--refresh-ms",
                "300",
            ])
            .args(extra)
            .env_remove("GDX_CATALOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn gdx exchange");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("exchange: http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        let pg = extra.contains(&"--pg").then(|| {
            let mut line = String::new();
            out.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("pgwire: ")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .to_owned()
        });
        Self {
            child,
            addr,
            pg,
            audit_dir: audit_dir.to_owned(),
            replica: replica.to_owned(),
            lake: lake.to_owned(),
            _tmp: None,
        }
    }

    /// A new principal (id `<prefix>-<unique>`), once this server knows its key.
    pub fn principal(&self, prefix: &str, department: &str, role: &str) -> String {
        self.principal_named(&unique(prefix), department, role)
    }

    /// A new principal with this id, once this server knows its key (it reads principal
    /// changes made elsewhere at its refresh).
    pub fn principal_named(&self, id: &str, department: &str, role: &str) -> String {
        let key = principal_in(&self.lake, id, department, role);
        let auth = format!("Bearer {key}");
        assert!(
            eventually(10, || self
                .call("GET", "/v1/purposes", &[("authorization", &auth)], b"")
                .status
                != 401),
            "the server never learned principal {id}"
        );
        key
    }

    /// The audit records of this server (`GET /v1/audit?limit=1000&<query>`), as a new
    /// auditor reads them.
    pub fn audit(&self, query: &str) -> Vec<serde_json::Value> {
        let key = self.principal("aud", "bdc", "auditor");
        let r = self.call(
            "GET",
            &format!("/v1/audit?limit=1000&{query}"),
            &[("authorization", &format!("Bearer {key}"))],
            b"",
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["records"].as_array().unwrap().clone()
    }

    /// A citizen's "who used my data" (`GET /v1/audit/subjects/{id}`), as a new auditor
    /// reads it.
    pub fn citizen_view(&self, id: &str) -> Resp {
        let key = self.principal("aud", "bdc", "auditor");
        self.call(
            "GET",
            &format!("/v1/audit/subjects/{id}"),
            &[("authorization", &format!("Bearer {key}"))],
            b"",
        )
    }

    pub fn log_path(&self) -> PathBuf {
        self.audit_dir.join(format!("{}.log", self.replica))
    }

    /// A call with a key and, for data calls, a purpose and case id.
    pub fn get(&self, path: &str, key: &str) -> Resp {
        self.call(
            "GET",
            path,
            &[
                ("authorization", &format!("Bearer {key}")),
                ("x-purpose", "social_assistance"),
                ("x-case-id", "CASE-1"),
            ],
            b"",
        )
    }

    pub fn post(&self, path: &str, key: &str, body: &str) -> Resp {
        self.call(
            "POST",
            path,
            &[
                ("authorization", &format!("Bearer {key}")),
                ("content-type", "application/json"),
            ],
            body.as_bytes(),
        )
    }

    pub fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        http(&self.addr, method, path, headers, body)
    }
}

/// A running `gdx serve`: the process, the rest of its standard output, the embedded
/// broker's address and the exchange's.
pub struct Served {
    pub child: Child,
    pub out: BufReader<std::process::ChildStdout>,
    pub broker: String,
    pub addr: String,
}

impl Drop for Served {
    /// Stops the process if the test has not (a `gdx serve` left running holds a core and
    /// slows every test after it).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gdx serve` on `lake` (embedded broker) with `extra` flags, once it printed both addresses.
pub fn serve(lake: &Path, extra: &[&str]) -> Served {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gdx"))
        .args([
            "serve",
            "--lake",
            lake.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env_remove("GDX_CATALOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gdx serve");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let (mut broker, mut addr, mut line) = (String::new(), String::new(), String::new());
    while addr.is_empty() {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve ended early");
        if let Some(b) = line.trim().strip_prefix("broker: ") {
            broker = b.to_owned();
        }
        if let Some(a) = line.trim().strip_prefix("exchange: http://") {
            addr = a.to_owned();
        }
    }
    Served {
        child,
        out,
        broker,
        addr,
    }
}

/// An HTTP answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text()))
    }

    /// The error envelope's code.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    }
}

/// One HTTP/1.1 request with `Connection: close`; chunked answers are decoded.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Resp {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&b[..eol])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        out.extend_from_slice(&b[start..start + size]);
        b = &b[start + size + 2..];
    }
    out
}

/// Polls `cond` every 100 ms for up to `secs`.
pub fn eventually(secs: u64, mut cond: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    cond()
}
