//! The Django seed (`shared/peers/django_seed`), started by its own
//! `run.sh` from a writable copy, with a virtual environment kept between
//! runs, on a PostgreSQL database of the caller's; stopped by its
//! `stop.sh` when dropped. Used by `saas-bench http --seed` and by
//! saas-server's Django import test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::error::Res;

/// The parts of a `postgres://user[:password]@host:port/db` URL that
/// Django's settings take.
#[derive(Debug, Clone)]
pub struct PgParts {
    /// Role.
    pub user: String,
    /// Password (empty under trust authentication).
    pub password: String,
    /// Host.
    pub host: String,
    /// Port.
    pub port: String,
    /// Database.
    pub database: String,
}

impl PgParts {
    /// Splits `url`.
    pub fn parse(url: &str) -> PgParts {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (auth, hostport) = authority
            .rsplit_once('@')
            .unwrap_or(("postgres", authority));
        let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "5432"));
        PgParts {
            user: user.to_owned(),
            password: password.to_owned(),
            host: host.to_owned(),
            port: port.to_owned(),
            database: path.split('?').next().unwrap_or_default().to_owned(),
        }
    }
}

/// Stdout and stderr of a finished program, for error messages.
fn output_text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.stdin(Stdio::null()).output()?;
    if !out.status.success() {
        return Err(format!("{cmd:?}: {}", output_text(&out)).into());
    }
    Ok(())
}

/// The seed's virtual environment at `venv`, with its requirements,
/// made (or brought up to date) when its stamp is older than
/// `requirements.txt`. Made here, not by run.sh: what pip installs names
/// the interpreter by the path it was run as, which must outlive any copy
/// of the seed. run.sh then finds it complete and installs nothing.
pub fn cached_venv(seed: &Path, venv: &Path) -> Res<PathBuf> {
    let python = venv.join("bin/python");
    let stamp = venv.join(".requirements.stamp");
    let requirements = seed.join("requirements.txt");
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    if modified(&stamp).is_some_and(|s| modified(&requirements).is_some_and(|r| s > r)) {
        return Ok(venv.to_owned());
    }
    if !python.exists() {
        run(Command::new("python3").args(["-m", "venv"]).arg(venv))?;
    }
    run(Command::new(&python)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(&requirements))?;
    std::fs::write(&stamp, "")?;
    Ok(venv.to_owned())
}

/// The Django build, served by gunicorn from a copy of the seed.
pub struct DjangoSeed {
    copy: tempfile::TempDir,
    /// Where gunicorn listens.
    pub addr: SocketAddr,
}

impl DjangoSeed {
    /// Copies `seed` (never written to), links `venv` into the copy and
    /// runs its `run.sh`: `workers` gunicorn workers on `port`, on the
    /// database `db` (which must exist), with `env` added (Django's
    /// settings: `CELERY_TASK_ALWAYS_EAGER`, `JWT_ACCESS_MINUTES`, ...).
    pub fn start(
        seed: &Path,
        venv: &Path,
        port: u16,
        workers: usize,
        db: &PgParts,
        env: &[(&str, &str)],
    ) -> Res<DjangoSeed> {
        if !seed.join("run.sh").is_file() {
            return Err(format!("no Django build at {} (no run.sh)", seed.display()).into());
        }
        let copy = tempfile::Builder::new().prefix("django-seed-").tempdir()?;
        run(Command::new("cp")
            .arg("-a")
            .arg(seed.join("."))
            .arg(copy.path()))?;
        run(Command::new("chmod").arg("-R").arg("u+w").arg(copy.path()))?;
        std::os::unix::fs::symlink(venv, copy.path().join(".venv"))?;
        let secret = format!("saas-bench-{}", uuid::Uuid::new_v4().simple());
        let out = Command::new(copy.path().join("run.sh"))
            .current_dir(copy.path())
            .env("PORT", port.to_string())
            .env("WORKERS", workers.to_string())
            .env("BIND_HOST", "127.0.0.1")
            .env("POSTGRES_DB", &db.database)
            .env("POSTGRES_USER", &db.user)
            .env("POSTGRES_PASSWORD", &db.password)
            .env("POSTGRES_HOST", &db.host)
            .env("POSTGRES_PORT", &db.port)
            .env("DJANGO_SECRET_KEY", secret)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()?;
        // From here on, dropping stops what run.sh started.
        let django = DjangoSeed {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            copy,
        };
        if !out.status.success() {
            let log = std::fs::read_to_string(django.copy.path().join("run/gunicorn.log"))
                .unwrap_or_default();
            return Err(format!("run.sh failed:\n{}\n{log}", output_text(&out)).into());
        }
        Ok(django)
    }

    /// The writable copy it runs from.
    pub fn dir(&self) -> &Path {
        self.copy.path()
    }
}

impl Drop for DjangoSeed {
    fn drop(&mut self) {
        // `--services`: also Redis and PostgreSQL, but only if its run.sh
        // started them.
        let _ = Command::new(self.copy.path().join("stop.sh"))
            .arg("--services")
            .current_dir(self.copy.path())
            .stdin(Stdio::null())
            .output();
    }
}

#[cfg(test)]
mod tests {
    use super::PgParts;

    #[test]
    fn urls_split_into_django_settings() {
        let p = PgParts::parse("postgres://bob:pw@db.example:6543/app?sslmode=disable");
        assert_eq!(
            (p.user, p.password, p.host, p.port, p.database),
            (
                "bob".into(),
                "pw".into(),
                "db.example".into(),
                "6543".into(),
                "app".into()
            )
        );
        let p = PgParts::parse("postgres://postgres@127.0.0.1/x");
        assert_eq!(
            (p.user, p.password, p.host, p.port, p.database),
            (
                "postgres".into(),
                String::new(),
                "127.0.0.1".into(),
                "5432".into(),
                "x".into()
            )
        );
    }
}
