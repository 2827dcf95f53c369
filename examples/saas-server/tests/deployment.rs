//! The deployment files work as written: `docker-compose.yml` (parsed as
//! YAML, merge keys applied) passes every setting of `.env`, builds the
//! database URL from its parts, runs jobs in the worker service only and
//! checks the health of both services with the binary itself; the
//! Dockerfile builds `--locked` with the workspace's cargo settings behind
//! a dependency-caching layer; `.dockerignore` keeps secrets and build
//! output out; the declared licenses are there. `.ci/run` also runs
//! `docker-compose config` when Debian's docker-compose can be installed.
//! And `saas-server healthcheck` really tells a serving server from none.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_yaml_ng::Value;

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn compose() -> Value {
    let mut doc: Value = serde_yaml_ng::from_str(&read("docker-compose.yml")).expect("YAML");
    doc.apply_merge().expect("merge keys");
    doc
}

fn strings(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn compose_services_get_env_db_parts_health_checks_and_one_worker() {
    let doc = compose();
    let services = &doc["services"];
    for name in ["server", "worker"] {
        let s = &services[name];
        assert_eq!(
            s["env_file"].as_str(),
            Some(".env"),
            "{name}: every setting of .env"
        );
        let env = &s["environment"];
        assert_eq!(
            env["DATABASE_URL"].as_str(),
            Some(""),
            "{name}: the URL is built from parts"
        );
        assert_eq!(env["DATABASE_HOST"].as_str(), Some("postgres"), "{name}");
        for part in [
            "DATABASE_PORT",
            "DATABASE_NAME",
            "DATABASE_USER",
            "DATABASE_PASSWORD",
        ] {
            assert!(
                env[part].as_str().is_some_and(|v| !v.is_empty()),
                "{name}: {part}"
            );
        }
        let check = strings(&s["healthcheck"]["test"]);
        assert_eq!(
            check.first().map(String::as_str),
            Some("CMD"),
            "{name}: {check:?}"
        );
        assert_eq!(
            check.get(1).map(String::as_str),
            Some("saas-server"),
            "{name}: the binary checks itself"
        );
        assert_eq!(
            check.get(2).map(String::as_str),
            Some("healthcheck"),
            "{name}"
        );
        assert_eq!(
            s["depends_on"]["postgres"]["condition"].as_str(),
            Some("service_healthy"),
            "{name}"
        );
    }
    assert_eq!(
        strings(&services["worker"]["healthcheck"]["test"])
            .get(3)
            .map(String::as_str),
        Some("--worker")
    );
    assert_eq!(strings(&services["worker"]["command"]), vec!["worker"]);
    let server = &services["server"];
    let command = strings(&server["command"]);
    assert!(
        command.contains(&"--no-worker".to_owned()),
        "the worker service runs the jobs: {command:?}"
    );
    assert_eq!(server["environment"]["RUN_WORKER"].as_str(), Some("false"));
    assert_eq!(
        services["postgres"]["environment"]["POSTGRES_PASSWORD"],
        server["environment"]["DATABASE_PASSWORD"],
        "one password for the database and its clients"
    );
}

#[test]
fn the_dockerfile_builds_locked_with_cached_dependencies() {
    let file = read("Dockerfile");
    let line = |needle: &str| {
        file.lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("the Dockerfile has no {needle:?}"))
    };
    let cargo_config = line("COPY .cargo .cargo");
    let manifests = line("COPY saas-core/Cargo.toml");
    let deps = line("cargo build --release --locked");
    let sources = line("COPY saas-core saas-core");
    assert!(
        cargo_config < deps && manifests < deps,
        "settings and manifests before the dependency build"
    );
    assert!(
        deps < sources,
        "dependencies are built before the sources are copied"
    );
    assert_eq!(
        file.matches("cargo build --release --locked").count(),
        2,
        "both builds are --locked"
    );
    assert_eq!(
        file.matches("cargo build").count(),
        2,
        "and there are no others"
    );
    assert!(file.contains("HEALTHCHECK") && file.contains("\"healthcheck\""));
    for member in [
        "saas-core",
        "saas-store-sqlite",
        "saas-store-postgres",
        "saas-http",
        "examples/saas-server",
        "examples/saas-bench",
        "examples/embed",
        "tests",
    ] {
        assert!(
            file.contains(&format!("COPY {member}/Cargo.toml")),
            "{member}'s manifest"
        );
    }

    let ignore = read(".dockerignore");
    for kept_out in [".git", "/target", ".env", "/data"] {
        assert!(
            ignore.lines().any(|l| l.trim() == kept_out),
            ".dockerignore misses {kept_out}"
        );
    }
    assert!(ignore.lines().any(|l| l.trim() == "!.env.example"));
}

#[test]
fn the_declared_licenses_are_there() {
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("license = \"MIT OR Apache-2.0\""));
    assert!(read("LICENSE-MIT").contains("Permission is hereby granted, free of charge"));
    let apache = read("LICENSE-APACHE");
    assert!(apache.contains("Apache License") && apache.contains("Version 2.0, January 2004"));
}

fn command(dir: &Path, bind: &str) -> Command {
    let mut cmd = Command::new(SERVER);
    cmd.current_dir(dir)
        .env_remove("DATABASE_URL")
        .env_remove("DATABASE_HOST")
        .env_remove("DEBUG")
        .env("SECRET_KEY", testkit::program::fresh_signing_key())
        .env("RUST_LOG", "warn")
        .env("BIND", bind)
        .env("ALLOWED_HOSTS", ".example.com")
        .env("DATA_DIR", dir.join("data"))
        .stdin(Stdio::null());
    cmd
}

#[test]
fn healthcheck_tells_a_serving_server_from_none() {
    let dir = tempfile::tempdir().expect("dir");
    let bind = format!("127.0.0.1:{}", testkit::program::free_port());
    let out = command(dir.path(), &bind)
        .args(["healthcheck", "--timeout", "2"])
        .output()
        .expect("run");
    assert!(!out.status.success(), "nothing listens yet");
    assert!(String::from_utf8_lossy(&out.stderr).contains("unhealthy"));

    let mut server = command(dir.path(), &bind)
        .args(["serve", "--no-worker"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    let start = Instant::now();
    let healthy = loop {
        let out = command(dir.path(), &bind)
            .arg("healthcheck")
            .output()
            .expect("run");
        if out.status.success() {
            break String::from_utf8_lossy(&out.stdout).into_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(healthy.contains("200"), "{healthy}");

    // A worker's health is its heartbeat.
    let out = command(dir.path(), &bind)
        .args(["healthcheck", "--worker"])
        .env("TMPDIR", dir.path())
        .output()
        .expect("run");
    assert!(!out.status.success(), "no worker has run here");
    let mut worker = command(dir.path(), &bind)
        .args(["worker", "--no-scheduler"])
        .env("TMPDIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("worker");
    let start = Instant::now();
    loop {
        let out = command(dir.path(), &bind)
            .args(["healthcheck", "--worker"])
            .env("TMPDIR", dir.path())
            .output()
            .expect("run");
        if out.status.success() {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-TERM", &worker.id().to_string()])
        .status();
    let status = worker.wait().expect("worker exits");
    assert!(status.success(), "{status:?}");
    let out = command(dir.path(), &bind)
        .args(["healthcheck", "--worker"])
        .env("TMPDIR", dir.path())
        .output()
        .expect("run");
    assert!(
        !out.status.success(),
        "a stopped worker leaves no heartbeat"
    );
}
