//! The real `saas-server` binary as a child process, so that what it holds
//! (its resident memory) is measured alone, without the load generator's.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::Res;
use crate::measure::status_mib;

/// `saas-server` beside this program (`target/<profile>/saas-server`),
/// unless `given` names one.
pub fn server_binary(given: Option<&Path>) -> Res<PathBuf> {
    let path = match given {
        Some(p) => p.to_owned(),
        None => std::env::current_exe()?.with_file_name("saas-server"),
    };
    if !path.is_file() {
        return Err(format!(
            "no saas-server at {} (build it: cargo build --release -p saas-server, or pass --server)",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> Res<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `saas-server serve` running as a child; killed when dropped.
pub struct ServerProcess {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl ServerProcess {
    /// Starts `bin serve` on a free port with `env` added to this
    /// process's environment (the throttles turned off: the setup registers
    /// and logs in many times from one address), output to `log`; returns
    /// once `/healthz` answers.
    pub async fn start(bin: &Path, env: &[(String, String)], log: &Path) -> Res<ServerProcess> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let out = std::fs::File::create(log)?;
        let child = Command::new(bin)
            .arg("serve")
            .arg("--bind")
            .arg(addr.to_string())
            .env("REGISTRATION_RATE_LIMIT", "off")
            .env("LOGIN_RATE_LIMIT", "off")
            .env("LOGIN_ADDRESS_RATE_LIMIT", "off")
            .env("RUST_LOG", "warn")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()?;
        let mut server = ServerProcess {
            child,
            addr,
            log: log.to_owned(),
        };
        server.ready().await?;
        Ok(server)
    }

    async fn ready(&mut self) -> Res<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = crate::api::call(
                self.addr,
                hyper::Method::GET,
                "localhost",
                "/healthz",
                None,
                None,
            )
            .await;
            if matches!(health, Ok((200, _))) {
                return Ok(());
            }
            let exited = self.child.try_wait()?;
            if exited.is_some() || Instant::now() > deadline {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                return Err(
                    format!("saas-server did not answer /healthz ({exited:?}):\n{log}").into(),
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A `VmRSS`/`VmHWM`-style field of the child's /proc status, in MiB.
    pub fn status_mib(&self, field: &str) -> f64 {
        status_mib(&self.pid().to_string(), field)
    }

    /// Stops the child with SIGTERM (it finishes what is in flight) and
    /// waits for it; SIGKILL after 30 s.
    pub fn stop(mut self) -> Res<()> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
