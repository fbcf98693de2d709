//! A throwaway PostgreSQL server from the distribution's packages, for `gdx bench sql`.
//!
//! Data flow: `initdb` in a temp dir (as the `postgres` user when this runs as root, which
//! PostgreSQL refuses) → `pg_ctl start` on a free loopback port → the rows given loaded
//! into `hh (resident_id text primary key, name, street, status)` with COPY → `ANALYZE` →
//! connections for the benchmark → `pg_ctl stop` (also when dropped).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};
use futures::SinkExt;

use super::sql::pg_connect;

const USER: &str = "gdxbench";

/// A running server.
pub(super) struct LocalPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    addr: SocketAddr,
    as_postgres: bool,
    pub(super) version: String,
    stopped: bool,
}

/// The directory of `initdb`: on the PATH, or under /usr/lib/postgresql/<version>/bin.
fn bin_dir() -> anyhow::Result<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").is_file());
    if let Some(d) = on_path {
        return Ok(d);
    }
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .context("no PostgreSQL server installed (apt-get install postgresql)")?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("initdb").is_file())
        .collect();
    found.sort();
    found
        .pop()
        .context("no initdb found (apt-get install postgresql)")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl LocalPostgres {
    fn command(&self, program: &str) -> Command {
        command(&self.bin, self.as_postgres, program)
    }

    /// Starts a server and loads `rows` (resident_id, name, street, status).
    pub(super) async fn start(rows: &[Vec<String>]) -> anyhow::Result<Self> {
        let bin = bin_dir()?;
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("gdx-bench-pg-").tempdir()?;
        if as_postgres {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
            run(Command::new("chown").arg("postgres").arg(dir.path()))
                .context("giving the temp dir to the postgres user")?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let data = dir.path().join("data");
        let mut server = Self {
            bin: bin.clone(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            version: String::new(),
            dir,
            as_postgres,
            stopped: true,
        };
        run(server
            .command("initdb")
            .args(["-A", "trust", "-U", USER, "--no-sync", "-D"])
            .arg(&data))?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            server.dir.path().display()
        );
        run(server
            .command("pg_ctl")
            .arg("-D")
            .arg(&data)
            .args(["-w", "-l"])
            .arg(server.dir.path().join("log"))
            .args(["-o", &options, "start"]))?;
        server.stopped = false;
        let client = server.connect().await?;
        server.version = client
            .query_one("show server_version", &[])
            .await?
            .get::<_, String>(0)
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_owned();
        client
            .batch_execute(
                "create table hh (resident_id text primary key, name text, street text, status text)",
            )
            .await?;
        let mut csv = Vec::new();
        {
            let mut w = csv_writer(&mut csv);
            for r in rows {
                w(r)?;
            }
        }
        let sink = client.copy_in("copy hh from stdin (format csv)").await?;
        futures::pin_mut!(sink);
        sink.send(std::io::Cursor::new(csv)).await?;
        sink.finish().await?;
        client.batch_execute("analyze hh").await?;
        Ok(server)
    }

    pub(super) async fn connect(&self) -> anyhow::Result<tokio_postgres::Client> {
        pg_connect(self.addr, USER, None, None, "postgres").await
    }

    pub(super) fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if !self.stopped {
            self.stopped = true;
            let _ = self
                .command("pg_ctl")
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "fast", "stop"])
                .output();
        }
    }
}

impl Drop for LocalPostgres {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn command(bin: &Path, as_postgres: bool, program: &str) -> Command {
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(program));
        c
    } else {
        Command::new(bin.join(program))
    }
}

fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes rows as CSV (RFC 4180 quoting).
fn csv_writer(out: &mut Vec<u8>) -> impl FnMut(&[String]) -> anyhow::Result<()> + '_ {
    move |row| {
        let line: Vec<String> = row
            .iter()
            .map(|v| format!("\"{}\"", v.replace('"', "\"\"")))
            .collect();
        out.extend_from_slice(line.join(",").as_bytes());
        out.push(b'\n');
        Ok(())
    }
}
