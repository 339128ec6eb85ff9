//! A throw-away PostgreSQL cluster for the tests: `initdb` into a temp dir, `pg_ctl start` on a
//! free loopback port with its unix socket in that dir, one per test binary (`OnceLock`) and one
//! fresh database per test. PostgreSQL refuses to run as root, so as root the cluster runs as
//! the unprivileged `redrive-pg` user (`.ci/run` creates it; `REDRIVE_PG_USER` names another).
//! A watchdog stops the cluster and removes the dir once this test process is gone, however it
//! ends. Outside CI a missing PostgreSQL skips loudly; under `CI=true` it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

/// The superuser's password: password authentication is on for TCP, as on a real server.
pub(crate) const ADMIN_PASSWORD: &str = "pg-admin-Zq81";

pub(crate) struct Cluster {
    pub(crate) port: u16,
}

/// One database of the cluster, for one test.
pub(crate) struct Db {
    pub(crate) name: String,
    pub(crate) port: u16,
}

impl Db {
    /// The DSN of the superuser with its password.
    pub(crate) fn dsn(&self) -> String {
        format!(
            "postgres://admin:{ADMIN_PASSWORD}@127.0.0.1:{}/{}",
            self.port, self.name
        )
    }

    /// `postgres://host:port/db`, as redrive shows it.
    pub(crate) fn location(&self) -> String {
        format!("postgres://127.0.0.1:{}/{}", self.port, self.name)
    }

    /// Runs `sql` and returns every row's columns as text (`psql -At` style).
    pub(crate) fn query(&self, sql: &str) -> Vec<Vec<Option<String>>> {
        let dsn = self.dsn();
        let sql = sql.to_owned();
        on_own_runtime(async move {
            let (client, conn) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            tokio::spawn(conn);
            let rows = client.simple_query(&sql).await.expect("query");
            rows.into_iter()
                .filter_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => {
                        Some((0..r.len()).map(|i| r.get(i).map(str::to_owned)).collect())
                    }
                    _ => None,
                })
                .collect()
        })
    }

    /// The one value of a one-row, one-column query.
    pub(crate) fn scalar(&self, sql: &str) -> String {
        self.query(sql)
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_default()
    }
}

/// Runs `fut` on a runtime of its own in a thread of its own: callable from sync tests and from
/// inside a tokio test alike.
fn on_own_runtime<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
            .block_on(fut)
    })
    .join()
    .expect("the admin thread")
}

/// A fresh database named after the test, or `None` (skipped loudly) without PostgreSQL.
pub(crate) fn database(test: &str) -> Option<Db> {
    static N: AtomicU32 = AtomicU32::new(0);
    let cluster = cluster()?;
    let name = format!("t{}_{test}", N.fetch_add(1, Ordering::Relaxed));
    let admin = Db {
        name: "postgres".into(),
        port: cluster.port,
    };
    admin.query(&format!("CREATE DATABASE \"{name}\""));
    Some(Db {
        name,
        port: cluster.port,
    })
}

/// The cluster of this test binary, started on first use.
pub(crate) fn cluster() -> Option<&'static Cluster> {
    static CLUSTER: OnceLock<Option<Cluster>> = OnceLock::new();
    CLUSTER.get_or_init(start).as_ref()
}

fn skip(why: &str) -> Option<Cluster> {
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "PostgreSQL is needed in CI: {why}; .ci/run must install it"
    );
    #[expect(clippy::print_stderr, reason = "a skipped check must be seen")]
    {
        eprintln!("SKIPPED: the PostgreSQL tests: {why}; run .ci/run to install it");
    }
    None
}

/// `initdb`'s folder: `REDRIVE_PG_BIN`, then `PATH`, then the newest Debian version.
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("REDRIVE_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if dir.join("initdb").is_file() {
                return Some(dir);
            }
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((v, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the cluster's user.
fn as_user(user: Option<&str>, program: &Path) -> Command {
    match user {
        Some(user) => {
            let mut c = Command::new("runuser");
            c.args(["-u", user, "--"]).arg(program);
            c
        }
        None => Command::new(program),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn start() -> Option<Cluster> {
    let Some(bin) = bin_dir() else {
        return skip("`initdb` is not installed (Debian: `apt-get install postgresql`)");
    };
    let user =
        is_root().then(|| std::env::var("REDRIVE_PG_USER").unwrap_or_else(|_| "redrive-pg".into()));
    if let Some(user) = &user
        && !Command::new("id")
            .arg(user)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    {
        return skip(&format!(
            "running as root, and the unprivileged user `{user}` that runs the cluster is missing (`useradd --system {user}`)"
        ));
    }
    let dir = std::env::temp_dir().join(format!("redrive-pg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("the cluster dir");
    std::fs::write(dir.join("pw"), ADMIN_PASSWORD).expect("the password file");
    if let Some(user) = &user {
        let chown = Command::new("chown")
            .args(["-R", user])
            .arg(&dir)
            .status()
            .expect("chown");
        assert!(chown.success(), "chown the cluster dir to {user}");
    }
    let data = dir.join("data");
    let init = as_user(user.as_deref(), &bin.join("initdb"))
        .arg("-D")
        .arg(&data)
        .args([
            "-U",
            "admin",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--no-sync",
        ])
        .arg(format!("--pwfile={}", dir.join("pw").display()))
        .stdout(Stdio::null())
        .output()
        .expect("run initdb");
    assert!(
        init.status.success(),
        "initdb failed: {}",
        String::from_utf8_lossy(&init.stderr)
    );
    watchdog(&dir, &data, &bin, user.as_deref());
    // A port found free can be taken before the server binds it: a few tries.
    for _ in 0..5 {
        let port = free_port();
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={} -c max_connections=200",
            dir.display()
        );
        let started = as_user(user.as_deref(), &bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .arg("-l")
            .arg(dir.join("log"))
            .args(["-o", &options, "-w", "-t", "30", "start"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_ctl");
        if started.success() {
            return Some(Cluster { port });
        }
    }
    let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
    panic!("the test cluster did not start:\n{log}");
}

/// Stops the cluster and removes its dir once this process has gone (checked every second, for
/// at most a day).
fn watchdog(dir: &Path, data: &Path, bin: &Path, user: Option<&str>) {
    let pg_ctl = bin.join("pg_ctl");
    let stop = match user {
        Some(u) => format!(
            "runuser -u {u} -- {} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        ),
        None => format!(
            "{} -D {} -m immediate stop",
            pg_ctl.display(),
            data.display()
        ),
    };
    assert!(
        crate::support::when_gone(&format!("{stop}; rm -rf {}", dir.display())),
        "the cluster's watchdog did not start"
    );
}
