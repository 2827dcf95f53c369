//! One company's source rows into what a backend stores, with a report of
//! every row changed or left out on the way.

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::{
    ImportProblem, ImportProject, ImportTask, ImportUser, SourceTenant, SourceUser, TenantImport,
};
use crate::auth::Passwords;
use crate::projects::{
    NewProjectRecord, NewTaskRecord, Priority, ProjectId, ProjectStatus, TaskId, TaskStatus,
};
use crate::users::{Email, NewUserRecord, Role, UserId, Username};

/// The instant a Django due date (a calendar date, `TIME_ZONE = "UTC"`)
/// becomes: the last microsecond of that day. Django counts a task overdue
/// when its date is before today; ours when its instant is past, which is
/// then the same: from the next day on.
pub fn due_at_end_of_day(date: NaiveDate) -> DateTime<Utc> {
    let last = NaiveTime::from_hms_micro_opt(23, 59, 59, 999_999).unwrap_or(NaiveTime::MIN);
    date.and_time(last).and_utc()
}

/// `tenant`'s rows (named `schema` in reports) as a consistent
/// [`TenantImport`], and the rows it had to change or leave out:
/// - a username our rules refuse (or equal to an earlier one but for case)
///   is replaced by `user<id>`; an email we refuse by `user<id>@imported.invalid`;
/// - a missing profile or unknown role becomes `member`; unknown statuses
///   and priorities the defaults;
/// - a password hash no login can verify is kept, and the user reported as
///   needing a reset;
/// - a project whose owner is missing is left out with its tasks and
///   memberships; a membership naming a missing project or user is left
///   out; a task of a missing project is left out;
/// - a task assigned to a missing user is imported unassigned; one whose
///   creator is missing gets its project's owner as creator.
///
/// The first active admin (lowest id) becomes the tenant's owner.
pub fn convert_tenant(schema: &str, tenant: &SourceTenant) -> (TenantImport, Vec<ImportProblem>) {
    let mut problems = Vec::new();
    let mut report = |table: &'static str, id: i64, problem: String, action: String| {
        problems.push(ImportProblem::new(schema, table, id, problem, action));
    };

    let mut users: Vec<&SourceUser> = tenant.users.iter().collect();
    users.sort_by_key(|u| u.id);
    // Every valid source username, so a replacement name never takes one.
    let source_keys: HashSet<String> = users
        .iter()
        .filter_map(|u| Username::parse(&u.username).ok())
        .map(|u| u.key())
        .collect();
    let mut taken: HashSet<String> = HashSet::new();
    let owner = users
        .iter()
        .find(|u| u.is_active && u.role.as_deref() == Some("admin"))
        .map(|u| u.id);
    let mut imported_users = Vec::with_capacity(users.len());
    for u in users {
        let username = match Username::parse(&u.username) {
            Ok(name) if taken.insert(name.key()) => name,
            found => {
                let why = match found {
                    Ok(_) => "differs from an earlier user's only by case".to_owned(),
                    Err(e) => format!("is refused: {e}"),
                };
                let name = replacement_username(u.id, &source_keys, &taken);
                taken.insert(name.key());
                report(
                    "auth_user",
                    u.id,
                    format!("username {:?} {why}", u.username),
                    format!(
                        "imported as {:?}; the user logs in with that name",
                        name.as_str()
                    ),
                );
                name
            }
        };
        let email = match Email::parse(&u.email) {
            Ok(email) => email,
            Err(_) => {
                let stand_in = Email::parse(&format!("user{}@imported.invalid", u.id))
                    .unwrap_or_else(|_| unreachable_email());
                report(
                    "auth_user",
                    u.id,
                    format!("email {:?} is not an address we accept", u.email),
                    format!(
                        "imported as {:?}; an admin should set the real one",
                        stand_in.as_str()
                    ),
                );
                stand_in
            }
        };
        let role = match u.role.as_deref().map(str::parse::<Role>) {
            Some(Ok(role)) => role,
            other => {
                let problem = match (other, &u.role) {
                    (Some(_), Some(r)) => format!("unknown role {r:?}"),
                    _ => "the user has no profile (core_userprofile)".to_owned(),
                };
                report(
                    "auth_user",
                    u.id,
                    problem,
                    "imported as a member".to_owned(),
                );
                Role::Member
            }
        };
        if !Passwords::is_verifiable(&u.password) {
            let kind = u.password.split('$').next().unwrap_or_default();
            let problem = if u.password.starts_with('!') || u.password.is_empty() {
                "the user has no usable password".to_owned()
            } else {
                format!("password hash of kind {kind:?} cannot be verified")
            };
            report(
                "auth_user",
                u.id,
                problem,
                "imported; needs a password reset (an admin sets a new password)".to_owned(),
            );
        }
        imported_users.push(ImportUser {
            id: UserId(u.id),
            record: NewUserRecord {
                username,
                email,
                password_hash: u.password.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                role,
                department: u.department.clone(),
                is_owner: Some(u.id) == owner,
                date_joined: u.date_joined,
            },
            is_active: u.is_active,
            last_login: u.last_login,
        });
    }
    let user_ids: HashSet<i64> = imported_users.iter().map(|u| u.id.0).collect();

    let mut projects: Vec<_> = tenant.projects.iter().collect();
    projects.sort_by_key(|p| p.id);
    let mut owners: HashMap<i64, i64> = HashMap::new();
    let mut imported_projects = Vec::with_capacity(projects.len());
    for p in projects {
        if !user_ids.contains(&p.owner_id) {
            report(
                "core_project",
                p.id,
                format!("its owner, user {}, does not exist", p.owner_id),
                "left out, with its tasks and memberships".to_owned(),
            );
            continue;
        }
        let status = p.status.parse().unwrap_or_else(|_| {
            report(
                "core_project",
                p.id,
                format!("unknown status {:?}", p.status),
                "imported as active".to_owned(),
            );
            ProjectStatus::Active
        });
        owners.insert(p.id, p.owner_id);
        imported_projects.push(ImportProject {
            id: ProjectId(p.id),
            record: NewProjectRecord {
                name: p.name.clone(),
                description: p.description.clone(),
                status,
                start_date: p.start_date,
                end_date: p.end_date,
                owner: UserId(p.owner_id),
                created_at: p.created_at,
            },
            updated_at: p.updated_at,
        });
    }

    let mut members = BTreeSet::new();
    for &(project, user) in &tenant.members {
        if !owners.contains_key(&project) {
            report(
                "core_project_members",
                project,
                format!("membership of user {user} in project {project}, which is not imported"),
                "left out".to_owned(),
            );
        } else if !user_ids.contains(&user) {
            report(
                "core_project_members",
                project,
                format!("membership of user {user}, who does not exist"),
                "left out".to_owned(),
            );
        } else {
            members.insert((ProjectId(project), UserId(user)));
        }
    }

    let mut tasks: Vec<_> = tenant.tasks.iter().collect();
    tasks.sort_by_key(|t| t.id);
    let mut imported_tasks = Vec::with_capacity(tasks.len());
    for t in tasks {
        let Some(&owner) = owners.get(&t.project_id) else {
            report(
                "core_task",
                t.id,
                format!("its project {} is not imported", t.project_id),
                "left out".to_owned(),
            );
            continue;
        };
        let assigned_to = match t.assigned_to {
            Some(a) if !user_ids.contains(&a) => {
                report(
                    "core_task",
                    t.id,
                    format!("its assignee, user {a}, does not exist"),
                    "imported unassigned".to_owned(),
                );
                None
            }
            other => other.map(UserId),
        };
        let created_by = match t.created_by {
            Some(c) if user_ids.contains(&c) => c,
            other => {
                let problem = match other {
                    Some(c) => format!("its creator, user {c}, does not exist"),
                    None => "its creator was deleted".to_owned(),
                };
                report(
                    "core_task",
                    t.id,
                    problem,
                    format!("imported with the project's owner, user {owner}, as creator"),
                );
                owner
            }
        };
        let status = t.status.parse().unwrap_or_else(|_| {
            report(
                "core_task",
                t.id,
                format!("unknown status {:?}", t.status),
                "imported as todo".to_owned(),
            );
            TaskStatus::Todo
        });
        let priority = t.priority.parse().unwrap_or_else(|_| {
            report(
                "core_task",
                t.id,
                format!("unknown priority {:?}", t.priority),
                "imported as medium".to_owned(),
            );
            Priority::Medium
        });
        imported_tasks.push(ImportTask {
            id: TaskId(t.id),
            record: NewTaskRecord {
                project_id: ProjectId(t.project_id),
                title: t.title.clone(),
                description: t.description.clone(),
                status,
                priority,
                assigned_to,
                created_by: UserId(created_by),
                due_date: t.due_date.map(due_at_end_of_day),
                completed_at: t.completed_at,
                created_at: t.created_at,
            },
            updated_at: t.updated_at,
        });
    }

    let import = TenantImport {
        users: imported_users,
        projects: imported_projects,
        members: members.into_iter().collect(),
        tasks: imported_tasks,
    };
    (import, problems)
}

/// `user<id>`, or `user<id>_<n>` if a source user already has that name.
fn replacement_username(id: i64, source: &HashSet<String>, taken: &HashSet<String>) -> Username {
    let base = format!("user{id}");
    let free = |name: &String| !source.contains(name) && !taken.contains(name);
    let name = std::iter::once(base.clone())
        .chain((2..).map(|n| format!("{base}_{n}")))
        .find(free)
        .unwrap_or(base);
    // ASCII letters, digits and `_`, at most 30 characters: always valid.
    Username::parse(&name).unwrap_or_else(|_| unreachable_username())
}

#[allow(clippy::panic)]
fn unreachable_username() -> Username {
    panic!("user<id> is a valid username")
}

#[allow(clippy::panic)]
fn unreachable_email() -> Email {
    panic!("user<id>@imported.invalid is a valid email")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::{SourceProject, SourceTask};

    fn at(day: u32) -> DateTime<Utc> {
        NaiveDate::from_ymd_opt(2025, 1, day)
            .unwrap()
            .and_hms_opt(9, 0, 0)
            .unwrap()
            .and_utc()
    }

    fn user(id: i64, username: &str, role: Option<&str>) -> SourceUser {
        SourceUser {
            id,
            username: username.into(),
            email: format!("{username}@example.com"),
            password: "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww="
                .into(),
            first_name: String::new(),
            last_name: String::new(),
            is_active: true,
            last_login: None,
            date_joined: at(1),
            role: role.map(Into::into),
            department: String::new(),
        }
    }

    fn project(id: i64, owner: i64) -> SourceProject {
        SourceProject {
            id,
            name: format!("p{id}"),
            description: String::new(),
            status: "active".into(),
            start_date: NaiveDate::from_ymd_opt(2025, 1, 1),
            end_date: None,
            owner_id: owner,
            created_at: at(2),
            updated_at: at(3),
        }
    }

    fn task(id: i64, project: i64, assigned: Option<i64>, creator: Option<i64>) -> SourceTask {
        SourceTask {
            id,
            project_id: project,
            title: format!("t{id}"),
            description: String::new(),
            status: "todo".into(),
            priority: "high".into(),
            assigned_to: assigned,
            created_by: creator,
            due_date: NaiveDate::from_ymd_opt(2025, 1, 31),
            completed_at: None,
            created_at: at(4),
            updated_at: at(5),
        }
    }

    #[test]
    fn consistent_rows_pass_unchanged_and_unreported() {
        let src = SourceTenant {
            users: vec![
                user(2, "bob", Some("member")),
                user(1, "alice", Some("admin")),
            ],
            projects: vec![project(10, 1)],
            members: vec![(10, 2)],
            tasks: vec![task(100, 10, Some(2), Some(1))],
        };
        let (import, problems) = convert_tenant("acme", &src);
        assert_eq!(problems, vec![]);
        assert_eq!(import.users[0].id, UserId(1), "sorted by id");
        assert!(import.users[0].record.is_owner);
        assert!(!import.users[1].record.is_owner);
        assert_eq!(import.members, vec![(ProjectId(10), UserId(2))]);
        let t = &import.tasks[0].record;
        assert_eq!(t.assigned_to, Some(UserId(2)));
        assert_eq!(t.priority, Priority::High);
        assert_eq!(
            t.due_date.unwrap().to_rfc3339(),
            "2025-01-31T23:59:59.999999+00:00"
        );
        assert_eq!(import.tasks[0].updated_at, at(5));
    }

    #[test]
    fn inconsistent_rows_are_reported_with_what_was_done() {
        let mut no_profile = user(3, "carol", None);
        no_profile.password = "!unusable".into();
        let mut bad_email = user(5, "dave", Some("viewer"));
        bad_email.email = String::new();
        let src = SourceTenant {
            users: vec![
                user(1, "alice", Some("admin")),
                user(2, "Alice", Some("member")),
                no_profile,
                user(4, "jürgen", Some("boss")),
                bad_email,
            ],
            projects: vec![project(10, 1), project(11, 99)],
            members: vec![(10, 2), (10, 42), (11, 2)],
            tasks: vec![
                task(100, 10, Some(77), None),
                task(101, 11, None, Some(1)),
                task(102, 10, Some(4), Some(4)),
            ],
        };
        let (import, problems) = convert_tenant("acme", &src);
        let got: Vec<(&str, i64, &str)> = problems
            .iter()
            .map(|p| (p.table, p.id, p.action.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "auth_user",
                    2,
                    "imported as \"user2\"; the user logs in with that name"
                ),
                ("auth_user", 3, "imported as a member"),
                (
                    "auth_user",
                    3,
                    "imported; needs a password reset (an admin sets a new password)"
                ),
                (
                    "auth_user",
                    4,
                    "imported as \"user4\"; the user logs in with that name"
                ),
                (
                    "auth_user",
                    4,
                    "imported as \"user4@imported.invalid\"; an admin should set the real one"
                ),
                ("auth_user", 4, "imported as a member"),
                (
                    "auth_user",
                    5,
                    "imported as \"user5@imported.invalid\"; an admin should set the real one"
                ),
                (
                    "core_project",
                    11,
                    "left out, with its tasks and memberships"
                ),
                ("core_project_members", 10, "left out"),
                ("core_project_members", 11, "left out"),
                ("core_task", 100, "imported unassigned"),
                (
                    "core_task",
                    100,
                    "imported with the project's owner, user 1, as creator"
                ),
                ("core_task", 101, "left out"),
            ]
        );
        assert_eq!(import.users.len(), 5, "every user is imported");
        assert_eq!(import.projects.len(), 1);
        assert_eq!(import.members, vec![(ProjectId(10), UserId(2))]);
        let ids: Vec<i64> = import.tasks.iter().map(|t| t.id.0).collect();
        assert_eq!(ids, vec![100, 102]);
        assert_eq!(import.tasks[0].record.assigned_to, None);
        assert_eq!(import.tasks[0].record.created_by, UserId(1));
        assert_eq!(import.users[3].record.username.as_str(), "user4");
        assert_eq!(import.inventory().counts().tasks, 2);
    }

    #[test]
    fn a_replacement_name_never_takes_a_source_users_name() {
        let src = SourceTenant {
            users: vec![
                user(1, "user2", Some("admin")),
                user(2, "bad name", Some("member")),
            ],
            ..SourceTenant::default()
        };
        let (import, _) = convert_tenant("acme", &src);
        assert_eq!(import.users[1].record.username.as_str(), "user2_2");
    }
}
