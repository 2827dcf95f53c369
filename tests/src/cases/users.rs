//! Users: who may register whom, uniqueness, validation, owner protection.

use saas_core::commands::{NewUser, UserPatch};
use saas_core::error::{Entity, Error};
use saas_core::users::{Role, UserId};

use crate::Fixture;
use crate::assert_err;
use crate::harness::{World, all, assert_invalid, new_user, saas};

/// Admins register users of every role; the new users can log in.
pub async fn admin_registers_every_role(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    for (name, role) in [
        ("second_admin", Role::Admin),
        ("mgr", Role::Manager),
        ("mem", Role::Member),
        ("view", Role::Viewer),
    ] {
        let u = admin
            .register_user(new_user(name, Some(role)))
            .await
            .unwrap();
        assert_eq!(u.role, role);
        assert_eq!(u.username.as_str(), name);
        assert!(u.is_active && !u.is_owner);
        assert_eq!(u.token_version, 0);
        assert_eq!(u.last_login, None);
    }
    // No role means member.
    let default = admin.register_user(new_user("norole", None)).await.unwrap();
    assert_eq!(default.role, Role::Member);
    let users = admin.list_users(all()).await.unwrap();
    assert_eq!(users.count, 6);
    let ids: Vec<_> = users.items.iter().map(|u| u.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "users are listed by id");
    saas.login(&w.tenant, "view", crate::harness::PASSWORD)
        .await
        .unwrap();
    assert_eq!(admin.user(default.id).await.unwrap(), default);
}

/// Managers register members and viewers only.
pub async fn manager_registers_only_members_and_viewers(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (_, manager) = w.seed_session(Role::Manager, "mgr").await;
    assert_eq!(
        manager
            .register_user(new_user("m1", Some(Role::Member)))
            .await
            .unwrap()
            .role,
        Role::Member
    );
    assert_eq!(
        manager
            .register_user(new_user("v1", Some(Role::Viewer)))
            .await
            .unwrap()
            .role,
        Role::Viewer
    );
    assert_eq!(
        manager
            .register_user(new_user("m2", None))
            .await
            .unwrap()
            .role,
        Role::Member
    );
    let before = w.snapshot().await;
    for role in [Role::Manager, Role::Admin] {
        assert_err!(
            manager.register_user(new_user("upstart", Some(role))).await,
            Error::Forbidden { .. }
        );
    }
    assert_eq!(w.snapshot().await, before);
}

/// Members and viewers register nobody, but may list users.
pub async fn members_and_viewers_cannot_register_users(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (_, member) = w.seed_session(Role::Member, "mem").await;
    let (_, viewer) = w.seed_session(Role::Viewer, "view").await;
    let before = w.snapshot().await;
    for s in [&member, &viewer] {
        for role in Role::ALL {
            assert_err!(
                s.register_user(new_user("someone", Some(role))).await,
                Error::Forbidden { .. }
            );
        }
        assert_err!(
            s.register_user(new_user("someone", None)).await,
            Error::Forbidden { .. }
        );
        assert_eq!(s.list_users(all()).await.unwrap().count, 3);
    }
    assert_eq!(w.snapshot().await, before);
}

/// Usernames are unique ignoring case; the duplicate changes nothing.
pub async fn duplicate_username_ignoring_case_conflicts(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    admin
        .register_user(new_user("John.Doe", None))
        .await
        .unwrap();
    let before = w.snapshot().await;
    for dup in ["ADMIN", "admin", "john.doe", "JOHN.DOE"] {
        assert_err!(
            admin.register_user(new_user(dup, None)).await,
            Error::Conflict {
                entity: Entity::User,
                field: "username"
            }
        );
    }
    assert_eq!(w.snapshot().await, before);
    // The same username in another tenant is fine.
    let other = World::register(&saas, Some("basic")).await;
    other
        .owner_session()
        .await
        .register_user(new_user("john.doe", None))
        .await
        .unwrap();
}

/// Each invalid field of a new user is reported under its name, and nothing
/// is created. (An unknown role does not even get this far: the HTTP crate's
/// body refuses it.)
pub async fn user_validation_errors_change_nothing(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let admin = w.owner_session().await;
    let before = w.snapshot().await;
    let bad: Vec<(&str, NewUser)> = vec![
        ("username", new_user("\u{0430}dmin", None)),
        ("username", new_user("has space", None)),
        ("username", new_user(&"u".repeat(151), None)),
        ("username", new_user("", None)),
        (
            "email",
            NewUser {
                email: "nope".into(),
                ..new_user("okname", None)
            },
        ),
        (
            "password",
            NewUser {
                password: "short".into(),
                ..new_user("okname", None)
            },
        ),
        (
            "password",
            NewUser {
                password: "1234567890123".into(),
                ..new_user("okname", None)
            },
        ),
        (
            "password",
            NewUser {
                password: "OKNAME_okname".into(),
                ..new_user("okname_okname", None)
            },
        ),
        (
            "first_name",
            NewUser {
                first_name: "f".repeat(151),
                ..new_user("okname", None)
            },
        ),
        (
            "last_name",
            NewUser {
                last_name: "bad\u{7}bell".into(),
                ..new_user("okname", None)
            },
        ),
        (
            "department",
            NewUser {
                department: "d".repeat(101),
                ..new_user("okname", None)
            },
        ),
    ];
    for (field, u) in bad {
        assert_invalid(admin.register_user(u).await, field);
    }
    assert_eq!(w.snapshot().await, before);
    // A user can be registered afterwards: the failures reserved nothing.
    admin.register_user(new_user("okname", None)).await.unwrap();
}

/// No admin, not even the owner, can demote or deactivate the owner.
pub async fn owner_cannot_be_demoted_or_deactivated(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (_, other_admin) = w.seed_session(Role::Admin, "admin2").await;
    let owner_session = w.owner_session().await;
    let before = w.snapshot().await;
    for s in [&other_admin, &owner_session] {
        for role in [Role::Manager, Role::Member, Role::Viewer] {
            assert_err!(
                s.update_user(
                    w.owner.id,
                    UserPatch {
                        role: Some(role),
                        ..UserPatch::default()
                    }
                )
                .await,
                Error::Forbidden { .. }
            );
        }
        assert_err!(
            s.update_user(
                w.owner.id,
                UserPatch {
                    is_active: Some(false),
                    ..UserPatch::default()
                }
            )
            .await,
            Error::Forbidden { .. }
        );
    }
    assert_eq!(w.snapshot().await, before);
    // Harmless changes to the owner are allowed to another admin.
    let renamed = other_admin
        .update_user(
            w.owner.id,
            UserPatch {
                first_name: Some("Ada".into()),
                role: Some(Role::Admin),
                is_active: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.first_name, "Ada");
    assert!(renamed.is_owner && renamed.is_active);
    assert_eq!(renamed.role, Role::Admin);
    // The other admin, not being the owner, can be demoted by the owner.
    let admin2 = w.snapshot().await.users[1].clone();
    let demoted = owner_session
        .update_user(
            admin2.id,
            UserPatch {
                role: Some(Role::Member),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(demoted.role, Role::Member);
}

/// Anyone edits their own details; only admins edit others, roles and the
/// active flag; invalid values change nothing.
pub async fn user_update_rules(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let (member, member_s) = w.seed_session(Role::Member, "mem").await;
    let (viewer, viewer_s) = w.seed_session(Role::Viewer, "view").await;
    let (_, manager_s) = w.seed_session(Role::Manager, "mgr").await;
    let admin = w.owner_session().await;

    let me = member_s
        .update_user(
            member.id,
            UserPatch {
                email: Some("New@Example.COM".into()),
                first_name: Some("  Grace ".into()),
                last_name: Some("Hopper".into()),
                department: Some("Navy".into()),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(me.email.as_str(), "New@example.com");
    assert_eq!(me.first_name, "Grace");
    assert_eq!(me.last_name, "Hopper");
    assert_eq!(me.department, "Navy");
    assert_eq!(me.token_version, member.token_version);

    let before = w.snapshot().await;
    for s in [&member_s, &manager_s] {
        assert_err!(
            s.update_user(
                viewer.id,
                UserPatch {
                    first_name: Some("X".into()),
                    ..UserPatch::default()
                }
            )
            .await,
            Error::Forbidden { .. }
        );
    }
    assert_err!(
        member_s
            .update_user(
                member.id,
                UserPatch {
                    role: Some(Role::Admin),
                    ..UserPatch::default()
                }
            )
            .await,
        Error::Forbidden { .. }
    );
    assert_err!(
        viewer_s
            .update_user(
                viewer.id,
                UserPatch {
                    is_active: Some(false),
                    ..UserPatch::default()
                }
            )
            .await,
        Error::Forbidden { .. }
    );
    assert_invalid(
        admin
            .update_user(
                viewer.id,
                UserPatch {
                    email: Some("not an email".into()),
                    ..UserPatch::default()
                },
            )
            .await,
        "email",
    );
    assert_invalid(
        admin
            .update_user(
                viewer.id,
                UserPatch {
                    first_name: Some("x".repeat(151)),
                    role: Some(Role::Manager),
                    ..UserPatch::default()
                },
            )
            .await,
        "first_name",
    );
    assert_err!(
        admin
            .update_user(UserId(987_654), UserPatch::default())
            .await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_err!(
        viewer_s.user(UserId(987_654)).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    assert_eq!(
        w.snapshot().await,
        before,
        "rejected updates changed nothing"
    );

    let promoted = admin
        .update_user(
            viewer.id,
            UserPatch {
                role: Some(Role::Manager),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(promoted.role, Role::Manager);
    assert_eq!(promoted.token_version, viewer.token_version);
    // The new role applies to new sessions.
    let s = w.session(viewer.id).await;
    s.create_project(crate::harness::new_project("now allowed"))
        .await
        .unwrap();
}
