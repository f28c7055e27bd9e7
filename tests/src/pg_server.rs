//! A throwaway PostgreSQL server for tests: [`PgServer`].
//!
//! PostgreSQL 15's binaries (Debian's `postgresql` package, `/usr/lib/postgresql/15/bin`, or
//! the directory in `CANO_PG_BIN`) run a server in a fresh temporary directory on a free
//! port of 127.0.0.1, with its unix socket in that directory too, so test binaries running
//! at the same time each have their own server. PostgreSQL refuses to run as root, and CI
//! runs as root: then the directory is given to the `postgres` user and `initdb`/`pg_ctl`
//! run through `runuser -u postgres --`.
//!
//! The server stops when the [`PgServer`] is dropped, also during a panic. A server shared
//! by a whole test binary ([`PgServer::shared`]) lives in a static, which is never dropped:
//! for it (and as a backstop for every server) a reaper shell waits on a pipe that only this
//! process holds open; when the process exits, however it exits, the pipe closes and the
//! reaper stops the server and removes its directory.

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// Where the binaries are unless `CANO_PG_BIN` says otherwise.
pub const DEFAULT_PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// A running PostgreSQL server owned by this process.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
    /// Held open while this process lives; the reaper stops the server when it closes.
    reaper: Option<(Child, ChildStdin)>,
    stopped: bool,
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

static SERIAL: AtomicU32 = AtomicU32::new(0);

impl PgServer {
    /// Starts a server of its own (for a test that restarts or stops it).
    ///
    /// # Errors
    ///
    /// What went wrong, with the server's log when it failed to start.
    pub fn start() -> Result<PgServer, String> {
        let bin = std::env::var_os("CANO_PG_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_PG_BIN));
        if !bin.join("initdb").exists() {
            return Err(format!(
                "PostgreSQL binaries not found in {} (install Debian's `postgresql`, or set CANO_PG_BIN)",
                bin.display()
            ));
        }
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "cano-pg-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut server = PgServer {
            bin,
            dir,
            port: 0,
            as_postgres,
            reaper: None,
            stopped: false,
        };
        if as_postgres {
            server.run(
                "chown",
                &[
                    "-R".into(),
                    "postgres:postgres".into(),
                    server.dir.display().to_string(),
                ],
                false,
            )?;
        }
        server.arm_reaper()?;
        server.run(
            "initdb",
            &[
                "-D".into(),
                server.data().display().to_string(),
                "-A".into(),
                "trust".into(),
                "-U".into(),
                "postgres".into(),
                "-E".into(),
                "UTF8".into(),
                "--locale=C".into(),
                "--no-sync".into(),
            ],
            true,
        )?;
        // A free port can be taken by another process before the server binds it: retry.
        let mut last = String::new();
        for _ in 0..5 {
            server.port = free_port().map_err(|e| format!("no free port: {e}"))?;
            match server.pg_ctl_start() {
                Ok(()) => return Ok(server),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The server shared by every test of this binary, started on first use.
    ///
    /// # Panics
    ///
    /// When the server cannot start (a test cannot run without it): the message says why.
    pub fn shared() -> &'static PgServer {
        static SHARED: OnceLock<PgServer> = OnceLock::new();
        SHARED.get_or_init(|| {
            PgServer::start().unwrap_or_else(|e| panic!("PostgreSQL test server: {e}"))
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    /// Runs a command, as the `postgres` user when this process is root and `tool` is one of
    /// PostgreSQL's (`pg_tool`).
    fn run(&self, tool: &str, args: &[String], pg_tool: bool) -> Result<(), String> {
        let program = if pg_tool {
            self.bin.join(tool)
        } else {
            PathBuf::from(tool)
        };
        let mut command = if pg_tool && self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&program);
            c
        } else {
            Command::new(&program)
        };
        let output = command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run {}: {e}", program.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{tool} failed ({}): {}{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(self.log()).unwrap_or_default()
            ))
        }
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB",
            self.port,
            self.dir.display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data().display().to_string(),
                "-l".into(),
                self.log().display().to_string(),
                "-w".into(),
                "-t".into(),
                "30".into(),
                "-o".into(),
                options,
                "start".into(),
            ],
            true,
        )
    }

    /// The reaper: a shell that blocks reading a pipe only this process writes to, then
    /// stops the server and removes the directory.
    fn arm_reaper(&mut self) -> Result<(), String> {
        let pg_ctl = self.bin.join("pg_ctl");
        let stop = format!(
            "{}{} -D {} -m immediate stop >/dev/null 2>&1",
            if self.as_postgres {
                "runuser -u postgres -- "
            } else {
                ""
            },
            pg_ctl.display(),
            self.data().display()
        );
        let script = format!("read _ignored; {stop}; rm -rf {}", self.dir.display());
        // In a session of its own (when `setsid` exists), so a signal to this process's group
        // (a test runner's timeout) does not take the reaper down with it.
        let mut command = if Path::new("/usr/bin/setsid").exists() {
            let mut c = Command::new("/usr/bin/setsid");
            c.arg("sh");
            c
        } else {
            Command::new("sh")
        };
        let mut child = command
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("start the reaper: {e}"))?;
        let stdin = child.stdin.take().ok_or("the reaper has no stdin")?;
        self.reaper = Some((child, stdin));
        Ok(())
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory holding the data, the socket and the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A connection string for database `db` (as the superuser `postgres`, no password).
    pub fn url(&self, db: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={db} connect_timeout=5",
            self.port
        )
    }

    /// A fresh schema name for one test: every call differs, in this process and from other
    /// processes' servers (which have their own databases anyway).
    pub fn fresh_schema(&self, prefix: &str) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        format!("{prefix}_{}", NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Restarts the server (fast shutdown, then start): clients' connections drop.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn restart(&self) -> Result<(), String> {
        self.stop_server("fast")?;
        self.pg_ctl_start()
    }

    /// Stops the server (`mode`: `smart`, `fast` or `immediate`) without removing it.
    ///
    /// # Errors
    ///
    /// When `pg_ctl` fails.
    pub fn stop_server(&self, mode: &str) -> Result<(), String> {
        self.run(
            "pg_ctl",
            &[
                "-D".into(),
                self.data().display().to_string(),
                "-m".into(),
                mode.into(),
                "-w".into(),
                "stop".into(),
            ],
            true,
        )
    }

    /// Starts a server stopped by [`stop_server`](Self::stop_server) again, on the same port.
    ///
    /// # Errors
    ///
    /// As [`start`](Self::start).
    pub fn start_again(&self) -> Result<(), String> {
        self.pg_ctl_start()
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        // Closing the pipe makes the reaper stop the server and clean up; wait for it, so
        // the server is gone when the guard is.
        if let Some((mut child, mut stdin)) = self.reaper.take() {
            let _ = stdin.write_all(b"\n");
            drop(stdin);
            let _ = child.wait();
        }
    }
}
