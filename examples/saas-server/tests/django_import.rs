//! The move from the Django seed, end to end: the real Django build
//! (`../shared/peers/django_seed`, or `DJANGO_SEED_DIR`) is started from a
//! copy, two companies with users of every role, projects, members and
//! tasks are made through its API, and every user's view is read back
//! from it. Then `saas-server import-django` copies its database into a
//! fresh SQLite directory and a fresh PostgreSQL database, twice (the
//! second run changes nothing), and `saas-server serve` is asked the same
//! questions: every user logs in with the password they had in Django
//! (whose hash becomes argon2id, which the next login verifies) and sees
//! what Django showed them: users, projects, tasks, their own tasks,
//! project statistics and dashboard counts. A last import after the logins
//! still changes nothing (the new hashes stay).
//!
//! Needs PostgreSQL (skipped when it is not there, failing under
//! `SAAS_REQUIRE_POSTGRES=1`), and Python 3 with `venv` and PyPI for the
//! Django packages (skipped when Python is missing, failing under
//! `SAAS_REQUIRE_DJANGO=1`). The virtual environment is kept in the
//! target directory, so only the first run installs the packages.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use reqwest::Method;
use saas_bench::django::{DjangoSeed, PgParts, cached_venv};
use saas_core::store::Store;
use serde_json::{Map, Value, json};

const SERVER: &str = env!("CARGO_BIN_EXE_saas-server");

/// Where the Django build is, unless `DJANGO_SEED_DIR` says otherwise:
/// `shared/` beside the repository.
fn seed_dir() -> PathBuf {
    std::env::var_os("DJANGO_SEED_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/peers/django_seed"),
        PathBuf::from,
    )
}

/// Whether a missing Python or Django build fails the test instead of
/// skipping it (CI).
fn django_required() -> bool {
    std::env::var("SAAS_REQUIRE_DJANGO").is_ok_and(|v| v == "1")
}

/// Says why the test cannot run: a skip, or a failure under
/// `SAAS_REQUIRE_DJANGO=1`.
fn skip(why: &str) {
    assert!(
        !django_required(),
        "cannot run the Django import test: {why} (SAAS_REQUIRE_DJANGO=1)"
    );
    eprintln!("skipped: {why}; set SAAS_REQUIRE_DJANGO=1 to fail instead");
}

fn random_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// The Django build (`saas_bench::django`: run by its `run.sh` from a
/// copy, stopped by its `stop.sh` when dropped) on a port and a database
/// of its own.
struct Django {
    _seed: DjangoSeed,
    api: Api,
    db: String,
}

impl Django {
    /// Starts the seed with the cached virtual environment; `None`
    /// (skipped) when Python or the seed is missing.
    async fn start() -> Option<Django> {
        let seed = seed_dir();
        if !seed.join("run.sh").is_file() {
            skip(&format!("no Django build at {}", seed.display()));
            return None;
        }
        let python = Command::new("python3")
            .args(["-c", "import venv, ensurepip"])
            .output();
        if !python.as_ref().is_ok_and(|o| o.status.success()) {
            skip("python3 with venv is not installed (Debian: apt-get install python3-venv)");
            return None;
        }
        // Kept in the target directory between runs (`saas-bench http
        // --seed` looks for it there too).
        let venv = cached_venv(
            &seed,
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("django-seed-venv"),
        )
        .expect("the seed's virtual environment");
        let db = random_name("django_src_");
        testkit::pg::ensure_database(&db).await;
        let port = testkit::program::free_port();
        let seed = DjangoSeed::start(
            &seed,
            &venv,
            port,
            2,
            &PgParts::parse(&testkit::pg::url_for(&db)),
            &[
                // No broker needed: welcome emails run in-process, in memory.
                ("CELERY_TASK_ALWAYS_EAGER", "1"),
                ("EMAIL_BACKEND_NAME", "locmem"),
            ],
        )
        .expect("the Django build starts");
        Some(Django {
            _seed: seed,
            api: Api::new(port),
            db,
        })
    }

    /// The Django database's URL, as `import-django --from` takes it.
    fn url(&self) -> String {
        testkit::pg::url_for(&self.db)
    }
}

/// A client of one server (Django's or ours: they speak the same API).
struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    fn new(port: u16) -> Api {
        Api::at(SocketAddr::from(([127, 0, 0, 1], port)))
    }

    fn at(addr: SocketAddr) -> Api {
        Api {
            base: format!("http://{addr}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    /// One request to `path` at `host`; the status and the JSON body.
    async fn call(
        &self,
        method: Method,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut rb = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header(reqwest::header::HOST, host);
        if let Some(t) = token {
            rb = rb.bearer_auth(t);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        let r = rb.send().await.expect("request sent");
        let status = r.status().as_u16();
        let bytes = r.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// A call that must answer `status`; its body.
    async fn expect(
        &self,
        status: u16,
        method: Method,
        host: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Value {
        let (got, body) = self.call(method.clone(), host, path, token, body).await;
        assert_eq!(
            got, status,
            "{method} {path} at {host} on {}: {body}",
            self.base
        );
        body
    }

    async fn get(&self, host: &str, token: &str, path: &str) -> Value {
        self.expect(200, Method::GET, host, path, Some(token), None)
            .await
    }

    async fn post(&self, host: &str, token: &str, path: &str, body: Value) -> Value {
        let status = if path.ends_with("/api/projects/")
            || path.ends_with("/api/tasks/")
            || path.ends_with("/register/")
        {
            201
        } else {
            200
        };
        self.expect(status, Method::POST, host, path, Some(token), Some(body))
            .await
    }

    /// Logs `user` in; the access token.
    async fn login(&self, user: &Person) -> String {
        let body = self
            .expect(
                200,
                Method::POST,
                &user.host,
                "/api/token/",
                None,
                Some(json!({"username": user.username, "password": user.password})),
            )
            .await;
        body["access"].as_str().expect("access token").to_owned()
    }

    /// Every result of a paginated list (one page of up to 100).
    async fn list(&self, host: &str, token: &str, path: &str) -> Vec<Value> {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = self
            .get(host, token, &format!("{path}{sep}page_size=100"))
            .await;
        assert!(page["next"].is_null(), "{path}: more than a page: {page}");
        page["results"].as_array().expect("results").clone()
    }
}

/// A user of the Django deployment and the password they chose there.
#[derive(Debug, Clone)]
struct Person {
    host: String,
    username: String,
    password: String,
}

const ACME: &str = "acme.localhost";
const GLOBEX: &str = "globex.localhost";

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn day(offset: i64) -> String {
    (today() + chrono::Duration::days(offset)).to_string()
}

/// Makes the source data through Django's API; every user of both
/// companies.
async fn populate(django: &Api) -> Vec<Person> {
    let person = |host: &str, username: &str| Person {
        host: host.to_owned(),
        username: username.to_owned(),
        password: format!("{username}'s Django pässword"),
    };
    let admin = person(ACME, "admin");
    let boss = person(GLOBEX, "Boss");
    for (company, schema, who, plan) in [
        ("Acme Corp", "acme", &admin, "basic"),
        ("Globex", "globex", &boss, "free"),
    ] {
        django
            .expect(
                201,
                Method::POST,
                "localhost",
                "/api/register/",
                None,
                Some(json!({
                    "company_name": company,
                    "schema_name": schema,
                    "domain_url": who.host,
                    "admin_username": who.username,
                    "admin_email": format!("{}@{schema}.example.com", who.username),
                    "admin_password": who.password,
                    "subscription_plan": plan,
                })),
            )
            .await;
    }
    let a = django.login(&admin).await;
    let b = django.login(&boss).await;

    let mut people = vec![admin.clone(), boss.clone()];
    let mut ids = std::collections::HashMap::new();
    for (host, token, username, role, department, first) in [
        (ACME, &a, "manny", "manager", "Operations", "Manny"),
        (ACME, &a, "alice", "member", "Design", "Alice"),
        (ACME, &a, "bob.smith", "member", "", "Bob"),
        (ACME, &a, "vera", "viewer", "Sales", "Véra"),
        (GLOBEX, &b, "gina", "member", "", ""),
    ] {
        let p = person(host, username);
        let user = django
            .post(
                host,
                token,
                "/api/users/register/",
                json!({
                    "username": username, "email": format!("{username}@example.com"),
                    "password": p.password, "role": role, "department": department,
                    "first_name": first, "last_name": "Example",
                }),
            )
            .await;
        ids.insert(username, user["id"].as_i64().expect("id"));
        people.push(p);
    }
    let token_of = async |username: &str| {
        django
            .login(
                people
                    .iter()
                    .find(|p| p.username == username)
                    .expect("user"),
            )
            .await
    };
    let manny = token_of("manny").await;
    let alice = token_of("alice").await;

    let project = async |host: &str, token: &str, body: Value| -> i64 {
        django.post(host, token, "/api/projects/", body).await["id"]
            .as_i64()
            .expect("project id")
    };
    let website = project(
        ACME,
        &a,
        json!({"name": "Website", "description": "The new site", "start_date": day(-30), "end_date": day(60)}),
    )
    .await;
    let mobile = project(
        ACME,
        &alice,
        json!({"name": "Mobile app", "status": "planning"}),
    )
    .await;
    let infra = project(
        ACME,
        &manny,
        json!({"name": "Infrastructure", "status": "on_hold", "start_date": day(-5)}),
    )
    .await;
    let ops = project(GLOBEX, &b, json!({"name": "Ops"})).await;
    for (host, token, project, user) in [
        (ACME, &a, website, ids["alice"]),
        (ACME, &a, website, ids["vera"]),
        (ACME, &alice, mobile, ids["bob.smith"]),
        (GLOBEX, &b, ops, ids["gina"]),
    ] {
        django
            .post(
                host,
                token,
                &format!("/api/projects/{project}/add_member/"),
                json!({"user_id": user}),
            )
            .await;
    }

    let task = async |host: &str, token: &str, body: Value| -> i64 {
        django.post(host, token, "/api/tasks/", body).await["id"]
            .as_i64()
            .expect("task id")
    };
    let some = |id: &str| ids.get(id).copied().map_or(Value::Null, Value::from);
    task(ACME, &a, json!({"project": website, "title": "Landing page", "priority": "high", "assigned_to_id": some("alice"), "due_date": day(-3)})).await;
    task(ACME, &a, json!({"project": website, "title": "Copy review", "status": "in_progress", "assigned_to_id": some("vera"), "due_date": day(2)})).await;
    task(ACME, &alice, json!({"project": website, "title": "Analytics", "description": "Which pages?", "status": "review", "priority": "low"})).await;
    let launch = task(ACME, &a, json!({"project": website, "title": "Launch", "priority": "urgent", "assigned_to_id": 1, "due_date": day(-1)})).await;
    django
        .post(
            ACME,
            &a,
            &format!("/api/tasks/{launch}/mark_complete/"),
            json!({}),
        )
        .await;
    task(ACME, &alice, json!({"project": mobile, "title": "Login screen", "priority": "high", "assigned_to_id": some("bob.smith"), "due_date": day(5)})).await;
    let push = task(
        ACME,
        &alice,
        json!({"project": mobile, "title": "Push notifications", "assigned_to_id": some("alice")}),
    )
    .await;
    django
        .expect(
            200,
            Method::PATCH,
            ACME,
            &format!("/api/tasks/{push}/"),
            Some(&alice),
            Some(json!({"status": "done"})),
        )
        .await;
    task(ACME, &manny, json!({"project": infra, "title": "Backups", "status": "in_progress", "priority": "urgent", "assigned_to_id": some("manny"), "due_date": day(-10)})).await;
    task(GLOBEX, &b, json!({"project": ops, "title": "Inventory", "assigned_to_id": some("gina"), "due_date": day(1)})).await;
    task(
        GLOBEX,
        &b,
        json!({"project": ops, "title": "Hiring", "priority": "low"}),
    )
    .await;
    people
}

/// An instant as either server writes it, for comparing.
fn instant(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => json!(
            DateTime::parse_from_rfc3339(s)
                .unwrap_or_else(|e| panic!("{s:?}: {e}"))
                .with_timezone(&Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
        ),
        None => Value::Null,
    }
}

/// A due date: Django's calendar date, or the UTC date of our instant.
fn due_day(v: &Value) -> Value {
    match v.as_str() {
        Some(s) => json!(&s[..10]),
        None => Value::Null,
    }
}

fn pick(v: &Value, keys: &[&str]) -> Map<String, Value> {
    keys.iter()
        .map(|k| ((*k).to_owned(), v[*k].clone()))
        .collect()
}

fn ids_of(users: &Value) -> Value {
    let mut ids: Vec<i64> = users
        .as_array()
        .map(|a| a.iter().filter_map(|u| u["id"].as_i64()).collect())
        .unwrap_or_default();
    ids.sort_unstable();
    json!(ids)
}

fn user_view(u: &Value) -> Value {
    let mut m = pick(
        u,
        &[
            "id",
            "username",
            "email",
            "first_name",
            "last_name",
            "role",
            "department",
            "is_active",
        ],
    );
    m.insert("date_joined".into(), instant(&u["date_joined"]));
    Value::Object(m)
}

fn project_view(p: &Value) -> Value {
    let mut m = pick(
        p,
        &[
            "id",
            "name",
            "description",
            "status",
            "start_date",
            "end_date",
        ],
    );
    m.insert("owner".into(), p["owner"]["id"].clone());
    m.insert("members".into(), ids_of(&p["members"]));
    m.insert("created_at".into(), instant(&p["created_at"]));
    m.insert("updated_at".into(), instant(&p["updated_at"]));
    Value::Object(m)
}

fn task_view(t: &Value) -> Value {
    let mut m = pick(
        t,
        &[
            "id",
            "project",
            "title",
            "description",
            "status",
            "priority",
            "is_overdue",
        ],
    );
    m.insert("assigned_to".into(), t["assigned_to"]["id"].clone());
    m.insert("created_by".into(), t["created_by"]["id"].clone());
    m.insert("due_date".into(), due_day(&t["due_date"]));
    m.insert("completed_at".into(), instant(&t["completed_at"]));
    m.insert("created_at".into(), instant(&t["created_at"]));
    m.insert("updated_at".into(), instant(&t["updated_at"]));
    Value::Object(m)
}

/// A percentage to one decimal (Django rounds to two, we to one).
fn rate(v: &Value) -> Value {
    json!((v.as_f64().unwrap_or(f64::NAN) * 10.0).round() / 10.0)
}

/// The statistics both servers give, in one shape.
fn statistics_view(s: &Value, members_key: &str) -> Value {
    let mut m = pick(
        s,
        &[
            "project_id",
            "total_tasks",
            "completed_tasks",
            "overdue_tasks",
            "tasks_by_status",
            "tasks_by_priority",
        ],
    );
    m.insert("completion_rate".into(), rate(&s["completion_rate"]));
    m.insert("members".into(), s[members_key].clone());
    Value::Object(m)
}

fn task_ids(tasks: &Value) -> Value {
    json!(
        tasks
            .as_array()
            .map(|a| a.iter().map(|t| t["id"].clone()).collect::<Vec<_>>())
            .unwrap_or_default()
    )
}

/// Django's dashboard in the shape both give.
fn django_dashboard(d: &Value) -> Value {
    let mine = &d["my_tasks"];
    let open =
        mine["total_tasks"].as_u64().unwrap_or(0) - mine["completed_tasks"].as_u64().unwrap_or(0);
    json!({
        "total_projects": d["projects"]["total_projects"],
        "projects_by_status": d["projects"]["projects_by_status"],
        "total_tasks": d["tasks"]["total_tasks"],
        "completed_tasks": d["tasks"]["completed_tasks"],
        "overdue_tasks": d["tasks"]["overdue_tasks"],
        "tasks_by_status": d["tasks"]["tasks_by_status"],
        "tasks_by_priority": d["tasks"]["tasks_by_priority"],
        "my_tasks": mine["total_tasks"],
        "my_open_tasks": open,
        "my_overdue_tasks": mine["overdue_tasks"],
        "recent_tasks": task_ids(&d["recent_tasks"]),
        "plan": d["company"]["subscription_plan"],
        "users": d["company"]["usage"]["users"],
        "projects": d["company"]["usage"]["projects"],
    })
}

/// Ours in the same shape.
fn saas_dashboard(d: &Value) -> Value {
    let mut m = pick(
        d,
        &[
            "total_projects",
            "projects_by_status",
            "total_tasks",
            "completed_tasks",
            "overdue_tasks",
            "tasks_by_status",
            "tasks_by_priority",
            "my_tasks",
            "my_open_tasks",
            "my_overdue_tasks",
            "plan",
        ],
    );
    m.insert("recent_tasks".into(), task_ids(&d["recent_tasks"]));
    m.insert("users".into(), d["users"]["used"].clone());
    m.insert("projects".into(), d["projects"]["used"].clone());
    Value::Object(m)
}

/// Which server a view is read from.
#[derive(Clone, Copy, PartialEq)]
enum Flavor {
    Django,
    Saas,
}

/// Everything `token`'s user sees, in one shape whichever server answers.
async fn view(api: &Api, flavor: Flavor, host: &str, token: &str) -> Value {
    let me = user_view(&api.get(host, token, "/api/users/me/").await);
    let users: Vec<Value> = api
        .list(host, token, "/api/users/")
        .await
        .iter()
        .map(user_view)
        .collect();
    // Django lists projects in no defined order (the task-count
    // annotation makes it ignore the model's ordering): compare by id.
    let mut projects = api.list(host, token, "/api/projects/").await;
    projects.sort_by_key(|p| p["id"].as_i64());
    let mut statistics = Map::new();
    for p in &projects {
        let id = p["id"].as_i64().expect("project id");
        let s = api
            .get(host, token, &format!("/api/projects/{id}/statistics/"))
            .await;
        let members_key = match flavor {
            Flavor::Django => "members_count",
            Flavor::Saas => "member_count",
        };
        statistics.insert(id.to_string(), statistics_view(&s, members_key));
    }
    let tasks = api.list(host, token, "/api/tasks/").await;
    // The same tasks; Django lists them newest first, we by due date.
    let mut mine = api.list(host, token, "/api/tasks/my_tasks/").await;
    mine.sort_by_key(|t| t["id"].as_i64());
    let assigned = api.list(host, token, "/api/tasks/?assigned_to=me").await;
    let urgent = api
        .list(
            host,
            token,
            "/api/tasks/?priority=urgent&status=in_progress",
        )
        .await;
    let dashboard = api.get(host, token, "/api/dashboard/").await;
    json!({
        "me": me,
        "users": users,
        "projects": projects.iter().map(project_view).collect::<Vec<_>>(),
        "statistics": statistics,
        "tasks": tasks.iter().map(task_view).collect::<Vec<_>>(),
        "my_tasks": mine.iter().map(task_view).collect::<Vec<_>>(),
        "assigned_to_me": assigned.iter().map(task_view).collect::<Vec<_>>(),
        "urgent_in_progress": urgent.iter().map(task_view).collect::<Vec<_>>(),
        "dashboard": match flavor {
            Flavor::Django => django_dashboard(&dashboard),
            Flavor::Saas => saas_dashboard(&dashboard),
        },
    })
}

fn id_in(ids: &[Value], v: &Value) -> bool {
    ids.contains(v)
}

/// What we show for what Django showed in `django`: the same, but for a
/// manager, who sees the projects they own or belong to (and their tasks,
/// statistics and counts), as our role model has it (README, "Moving from
/// the Django seed"), where the Django build shows managers every project.
fn as_saas_shows(django: &Value) -> Value {
    let mut v = django.clone();
    if v["me"]["role"] != json!("manager") {
        return v;
    }
    let me = v["me"]["id"].clone();
    let involved: Vec<Value> = v["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .filter(|p| p["owner"] == me || p["members"].as_array().is_some_and(|m| m.contains(&me)))
        .map(|p| p["id"].clone())
        .collect();
    let keep_projects = |list: &mut Value, key: &str| {
        if let Some(a) = list.as_array_mut() {
            a.retain(|item| id_in(&involved, &item[key]));
        }
    };
    keep_projects(&mut v["projects"], "id");
    for list in ["tasks", "my_tasks", "assigned_to_me", "urgent_in_progress"] {
        keep_projects(&mut v[list], "project");
    }
    if let Some(stats) = v["statistics"].as_object_mut() {
        stats.retain(|id, _| involved.contains(&json!(id.parse::<i64>().ok())));
    }
    // The dashboard's counts over what remains.
    let count = |list: &Value, key: &str, values: &[&str]| -> Value {
        let items = list.as_array().expect("list");
        Value::Object(
            values
                .iter()
                .map(|value| {
                    let n = items.iter().filter(|i| i[key] == json!(value)).count();
                    ((*value).to_owned(), json!(n))
                })
                .collect(),
        )
    };
    let tasks = v["tasks"].clone();
    let all = tasks.as_array().expect("tasks");
    let by_status = count(&tasks, "status", &["todo", "in_progress", "review", "done"]);
    let counts = [
        ("total_projects", json!(involved.len())),
        (
            "projects_by_status",
            count(
                &v["projects"],
                "status",
                &["planning", "active", "on_hold", "completed", "archived"],
            ),
        ),
        ("total_tasks", json!(all.len())),
        ("completed_tasks", by_status["done"].clone()),
        ("tasks_by_status", by_status),
        (
            "tasks_by_priority",
            count(&tasks, "priority", &["low", "medium", "high", "urgent"]),
        ),
        (
            "overdue_tasks",
            json!(
                all.iter()
                    .filter(|t| t["is_overdue"] == json!(true))
                    .count()
            ),
        ),
        (
            "recent_tasks",
            json!(
                all.iter()
                    .take(5)
                    .map(|t| t["id"].clone())
                    .collect::<Vec<_>>()
            ),
        ),
    ];
    for (key, value) in counts {
        v["dashboard"][key] = value;
    }
    v
}

/// Where an import goes: a fresh SQLite directory or PostgreSQL database.
enum Target {
    Sqlite(tempfile::TempDir),
    Postgres { dir: tempfile::TempDir, db: String },
}

impl Target {
    fn dir(&self) -> &Path {
        match self {
            Target::Sqlite(dir) | Target::Postgres { dir, .. } => dir.path(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Target::Sqlite(_) => "sqlite",
            Target::Postgres { .. } => "postgres",
        }
    }

    /// `saas-server` on this target, nothing from the caller's environment
    /// changing what is tested.
    fn command(&self) -> Command {
        let mut cmd = testkit::program::command(SERVER, self.dir());
        cmd.env_remove("API_ERROR_FORMAT")
            .env("DATA_DIR", self.dir().join("data"))
            .env("LOGIN_ADDRESS_RATE_LIMIT", "off")
            .stdin(Stdio::null());
        if let Target::Postgres { db, .. } = self {
            cmd.env("DATABASE_URL", testkit::pg::url_for(db));
        }
        cmd
    }

    /// `saas-server import-django --from … --json`; the report.
    fn import(&self, from: &str) -> Value {
        let out = self
            .command()
            .args(["import-django", "--from", from, "--json"])
            .output()
            .expect("run saas-server import-django");
        assert!(
            out.status.success(),
            "import into {} failed:\n{}",
            self.name(),
            testkit::program::output_text(&out)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", testkit::program::output_text(&out)))
    }

    /// `saas-server serve --no-worker` on a free port; it and its address.
    fn serve(&self) -> (Child, SocketAddr) {
        let mut cmd = self.command();
        cmd.args(["serve", "--no-worker", "--bind", "127.0.0.1:0"]);
        testkit::program::serve(cmd, "saas-server", self.dir())
    }

    /// The password hash stored for `user`.
    async fn stored_hash(&self, user: &Person) -> String {
        let store: std::sync::Arc<dyn Store> = match self {
            Target::Sqlite(dir) => std::sync::Arc::new(
                saas_store_sqlite::SqliteStore::open(dir.path().join("data")).expect("open"),
            ),
            Target::Postgres { db, .. } => std::sync::Arc::new(
                saas_store_postgres::PgStore::connect_url(&testkit::pg::url_for(db))
                    .await
                    .expect("connect"),
            ),
        };
        let hostname = saas_core::tenancy::Hostname::parse(&user.host).expect("hostname");
        let tenant = store
            .tenant_by_domain(&hostname)
            .await
            .expect("tenant")
            .expect("imported tenant");
        let ts = store.open(&tenant).await.expect("open tenant");
        let (_, hash) = ts
            .credentials(&user.username.to_ascii_lowercase())
            .await
            .expect("credentials")
            .expect("imported user");
        hash
    }
}

/// Each company's outcome in an import report, by schema.
fn outcomes(report: &Value) -> Vec<(String, String, String)> {
    report["tenants"]
        .as_array()
        .expect("tenants")
        .iter()
        .map(|t| {
            (
                t["schema"].as_str().unwrap_or_default().to_owned(),
                t["outcome"].as_str().unwrap_or_default().to_owned(),
                t["checksum"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Imports into `target`, twice, then serves it and checks every person.
async fn move_to(target: &Target, django: &Django, people: &[Person], seen: &[Value]) {
    let first = target.import(&django.url());
    let public_skipped = json!([{
        "tenant": "public", "table": "tenants_company", "id": 1, "action": "skipped",
        "problem": "the public schema holds django-tenants' shared tables, not a company's data",
    }]);
    assert_eq!(
        first["problems"],
        public_skipped,
        "{}: clean data imports without problems",
        target.name()
    );
    let firsts = outcomes(&first);
    let said: Vec<(&str, &str)> = firsts
        .iter()
        .map(|(s, o, _)| (s.as_str(), o.as_str()))
        .collect();
    assert_eq!(
        said,
        [
            ("public", "public"),
            ("acme", "imported"),
            ("globex", "imported")
        ],
        "{first}"
    );
    for t in first["tenants"].as_array().expect("tenants") {
        assert_eq!(t["stored"], t["source"], "{}: {t}", target.name());
    }
    let already = |report: &Value| {
        assert_eq!(report["problems"], public_skipped, "{report}");
        let again = outcomes(report);
        assert_eq!(again.len(), firsts.len(), "{report}");
        for ((schema, outcome, sum), (_, first_outcome, first_sum)) in again.iter().zip(&firsts) {
            let expected = match first_outcome.as_str() {
                "imported" => "already_imported",
                other => other,
            };
            assert_eq!(outcome, expected, "{schema}: {report}");
            assert_eq!(sum, first_sum, "{schema}: {report}");
        }
    };
    already(&target.import(&django.url()));

    let (mut server, addr) = target.serve();
    let ours = Api::at(addr);
    let mut differences = Vec::new();
    for (person, django_view) in people.iter().zip(seen) {
        let who = format!(
            "{} at {} on {}",
            person.username,
            person.host,
            target.name()
        );
        let imported = target.stored_hash(person).await;
        assert!(imported.starts_with("pbkdf2_sha256$"), "{who}: {imported}");
        // A wrong password is refused against a Django hash (once: each
        // costs Django's million PBKDF2 rounds).
        if person.username == "admin" {
            let wrong = ours
                .call(
                    Method::POST,
                    &person.host,
                    "/api/token/",
                    None,
                    Some(json!({"username": person.username, "password": "not the password"})),
                )
                .await;
            assert_eq!(wrong.0, 401, "{who}: {wrong:?}");
        }
        ours.login(person).await;
        let rehashed = target.stored_hash(person).await;
        assert!(rehashed.starts_with("$argon2id$"), "{who}: {rehashed}");
        // The second login verifies the argon2id hash.
        let token = ours.login(person).await;
        assert_eq!(target.stored_hash(person).await, rehashed, "{who}");
        let ours_view = view(&ours, Flavor::Saas, &person.host, &token).await;
        let expected = as_saas_shows(django_view);
        for (part, theirs) in expected.as_object().expect("a view") {
            if &ours_view[part] != theirs {
                differences.push(format!(
                    "{who} sees other {part} than in Django:\n  ours:   {}\n  Django: {theirs}",
                    ours_view[part]
                ));
            }
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    assert!(differences.is_empty(), "{}", differences.join("\n"));

    // Importing again after the logins changes nothing, new hashes included.
    already(&target.import(&django.url()));
    for person in people {
        assert!(
            target.stored_hash(person).await.starts_with("$argon2id$"),
            "{}",
            person.username
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_django_deployment_moves_over_with_its_passwords() {
    if !testkit::pg::available().await {
        return;
    }
    let Some(django) = Django::start().await else {
        return;
    };
    let people = populate(&django.api).await;
    let mut seen = Vec::new();
    for person in &people {
        let token = django.api.login(person).await;
        seen.push(view(&django.api, Flavor::Django, &person.host, &token).await);
    }
    // The data is what the test means it to be: users of every role see
    // different things, some tasks are overdue, done, unassigned.
    assert_eq!(seen[0]["dashboard"]["total_tasks"], json!(7), "{}", seen[0]);
    assert_eq!(
        seen[0]["dashboard"]["overdue_tasks"],
        json!(2),
        "{}",
        seen[0]
    );

    let sqlite = Target::Sqlite(tempfile::tempdir().expect("temp dir"));
    move_to(&sqlite, &django, &people, &seen).await;

    let db = random_name("django_import_");
    testkit::pg::ensure_database(&db).await;
    let postgres = Target::Postgres {
        dir: tempfile::tempdir().expect("temp dir"),
        db: db.clone(),
    };
    move_to(&postgres, &django, &people, &seen).await;

    let source = django.db.clone();
    drop(django);
    testkit::pg::drop_database(&db).await;
    testkit::pg::drop_database(&source).await;
}
