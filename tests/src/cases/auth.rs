//! Login, tokens and host resolution.

use saas_core::commands::UserPatch;
use saas_core::error::{Entity, Error};
use saas_core::tenancy::{Hostname, TenantStatus};
use saas_core::users::Role;

use crate::Fixture;
use crate::assert_err;
use crate::harness::{PASSWORD, SECRET, World, assert_invalid, domain_for, saas};

/// A wrong password, an unknown user and an inactive user all get the same
/// `Unauthenticated`; usernames match ignoring case.
pub async fn login_refuses_wrong_password_unknown_and_inactive_users(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    assert_err!(
        saas.login(&w.tenant, "admin", "wrongpassword1").await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.login(&w.tenant, "nobody", PASSWORD).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.login(&w.tenant, "not a username", PASSWORD).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.login(&w.tenant, "admin", &"x".repeat(10_000)).await,
        Error::Unauthenticated
    );
    saas.login(&w.tenant, "ADMIN", PASSWORD)
        .await
        .expect("usernames ignore case");
    let member = w.seed_user(Role::Member, "Member1").await;
    saas.login(&w.tenant, "member1", PASSWORD)
        .await
        .expect("a seeded member logs in");
    w.owner_session()
        .await
        .update_user(
            member.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_err!(
        saas.login(&w.tenant, "member1", PASSWORD).await,
        Error::Unauthenticated
    );
    // The earlier successful login was recorded.
    let stored = w.store().await.user(member.id).await.unwrap().unwrap();
    assert!(
        stored.last_login.is_some(),
        "the successful login was recorded"
    );
    assert_err!(
        saas.authenticate(&w.tenant, "garbage").await,
        Error::Unauthenticated
    );
}

/// A refresh token works once; reusing a rotated one revokes the whole
/// family, so the newer refresh token fails too.
pub async fn refresh_rotates_and_reuse_revokes_the_family(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let first = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    let second = saas.refresh(&w.tenant, &first.refresh).await.unwrap();
    assert_ne!(second.refresh, first.refresh);
    let session = saas.authenticate(&w.tenant, &second.access).await.unwrap();
    assert_eq!(session.me().id, w.owner.id);
    let third = saas.refresh(&w.tenant, &second.refresh).await.unwrap();
    // Reuse of a rotated token: refused, and the family is revoked.
    assert_err!(
        saas.refresh(&w.tenant, &first.refresh).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&w.tenant, &third.refresh).await,
        Error::Unauthenticated
    );
    // Another login starts a new family that is unaffected.
    let other = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    let rotated = saas.refresh(&w.tenant, &other.refresh).await.unwrap();
    saas.refresh(&w.tenant, &rotated.refresh).await.unwrap();
    // Kinds are not interchangeable.
    assert_err!(
        saas.authenticate(&w.tenant, &other.refresh).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&w.tenant, &other.access).await,
        Error::Unauthenticated
    );
    // A token signed with another secret is refused.
    let foreign = saas_core::Saas::builder(f.store())
        .secret(&[7u8; 40])
        .build()
        .unwrap();
    let forged = foreign.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    assert_err!(
        saas.authenticate(&w.tenant, &forged.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&w.tenant, &forged.refresh).await,
        Error::Unauthenticated
    );
    let _ = SECRET;
}

/// A token issued at tenant A is refused at tenant B, access and refresh,
/// even though the user ids are the same.
pub async fn tokens_are_bound_to_their_tenant(f: &dyn Fixture) {
    let saas = saas(f.store());
    let a = World::register(&saas, None).await;
    let b = World::register(&saas, None).await;
    assert_eq!(a.owner.id, b.owner.id, "both owners have the same id");
    let ta = saas.login(&a.tenant, "admin", PASSWORD).await.unwrap();
    assert_err!(
        saas.authenticate(&b.tenant, &ta.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&b.tenant, &ta.refresh).await,
        Error::Unauthenticated
    );
    // The refused refresh did not consume A's token.
    let again = saas.refresh(&a.tenant, &ta.refresh).await.unwrap();
    assert_eq!(
        saas.authenticate(&a.tenant, &again.access)
            .await
            .unwrap()
            .tenant()
            .id,
        a.tenant.id
    );
    // A's credentials do not work at B, and B's own still do.
    b.seed_user(Role::Member, "onlyina").await;
    assert_err!(
        saas.login(&a.tenant, "onlyina", PASSWORD).await,
        Error::Unauthenticated
    );
}

/// Changing a password refuses every earlier access and refresh token.
pub async fn password_change_invalidates_tokens(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    w.seed_user(Role::Member, "mem").await;
    let tokens = saas.login(&w.tenant, "mem", PASSWORD).await.unwrap();
    let session = saas.authenticate(&w.tenant, &tokens.access).await.unwrap();
    assert_invalid(
        session
            .change_password("not the password", "brandnewpass1")
            .await,
        "old_password",
    );
    assert_invalid(
        session.change_password(PASSWORD, "short").await,
        "new_password",
    );
    assert_invalid(
        session.change_password(PASSWORD, "123456789012").await,
        "new_password",
    );
    // The rejected changes left the tokens working.
    saas.authenticate(&w.tenant, &tokens.access).await.unwrap();
    session
        .change_password(PASSWORD, "brandnewpass1")
        .await
        .unwrap();
    assert_err!(
        saas.authenticate(&w.tenant, &tokens.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&w.tenant, &tokens.refresh).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.login(&w.tenant, "mem", PASSWORD).await,
        Error::Unauthenticated
    );
    let fresh = saas.login(&w.tenant, "mem", "brandnewpass1").await.unwrap();
    saas.authenticate(&w.tenant, &fresh.access).await.unwrap();
    saas.refresh(&w.tenant, &fresh.refresh).await.unwrap();
}

/// Deactivating a user refuses their tokens and logins; reactivating lets
/// them log in again, but the old tokens stay dead.
pub async fn deactivation_invalidates_tokens(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let member = w.seed_user(Role::Member, "leaving").await;
    let tokens = saas.login(&w.tenant, "leaving", PASSWORD).await.unwrap();
    // Authenticated once, so the service holds the user in its cache: the
    // deactivation below must reach the next request all the same.
    saas.authenticate(&w.tenant, &tokens.access).await.unwrap();
    let admin = w.owner_session().await;
    let updated = admin
        .update_user(
            member.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(!updated.is_active);
    assert!(updated.token_version > member.token_version);
    assert_err!(
        saas.authenticate(&w.tenant, &tokens.access).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.refresh(&w.tenant, &tokens.refresh).await,
        Error::Unauthenticated
    );
    assert_err!(
        saas.session(&w.tenant, member.id).await,
        Error::NotFound {
            entity: Entity::User
        }
    );
    let back = admin
        .update_user(
            member.id,
            UserPatch {
                is_active: Some(true),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert!(back.is_active);
    assert_err!(
        saas.authenticate(&w.tenant, &tokens.access).await,
        Error::Unauthenticated
    );
    let fresh = saas.login(&w.tenant, "leaving", PASSWORD).await.unwrap();
    saas.authenticate(&w.tenant, &fresh.access).await.unwrap();
}

/// A role change applies to the user's very next request, although the
/// request before it was authenticated (and the user cached) as the old role.
pub async fn role_change_applies_to_the_next_request(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let user = w.seed_user(Role::Member, "rising").await;
    let tokens = saas.login(&w.tenant, "rising", PASSWORD).await.unwrap();
    let before = saas.authenticate(&w.tenant, &tokens.access).await.unwrap();
    assert_eq!(before.me().role, Role::Member);
    w.owner_session()
        .await
        .update_user(
            user.id,
            UserPatch {
                role: Some(Role::Manager),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    let after = saas.authenticate(&w.tenant, &tokens.access).await.unwrap();
    assert_eq!(after.me().role, Role::Manager);
}

/// Another process's service (its own user cache) refuses a user that this
/// one deactivated once its cache TTL has passed.
pub async fn other_processes_see_deactivation_within_the_user_cache_ttl(f: &dyn Fixture) {
    let ttl = std::time::Duration::from_millis(200);
    let here = saas(f.store());
    let there = saas_core::service::Saas::builder(f.store())
        .secret(SECRET)
        .user_cache_ttl(ttl)
        .build()
        .unwrap();
    let w = World::register(&here, None).await;
    let member = w.seed_user(Role::Member, "elsewhere").await;
    let tokens = here.login(&w.tenant, "elsewhere", PASSWORD).await.unwrap();
    there.authenticate(&w.tenant, &tokens.access).await.unwrap();
    w.owner_session()
        .await
        .update_user(
            member.id,
            UserPatch {
                is_active: Some(false),
                ..UserPatch::default()
            },
        )
        .await
        .unwrap();
    assert_err!(
        here.authenticate(&w.tenant, &tokens.access).await,
        Error::Unauthenticated
    );
    tokio::time::sleep(ttl + std::time::Duration::from_millis(50)).await;
    assert_err!(
        there.authenticate(&w.tenant, &tokens.access).await,
        Error::Unauthenticated
    );
}

/// A suspended tenant resolves as not found, refuses logins and tokens, and
/// keeps its data for reactivation.
pub async fn suspended_tenant_refuses_login_and_resolution(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let host = domain_for(w.tenant.slug.as_str());
    let tokens = saas.login(&w.tenant, "admin", PASSWORD).await.unwrap();
    w.owner_session()
        .await
        .create_project(crate::harness::new_project("kept"))
        .await
        .unwrap();
    // Resolve once so a cached answer would be visible.
    saas.resolve_host(&host).await.unwrap();
    let op = saas.operator_unchecked();
    let suspended = op.suspend(w.tenant.id).await.unwrap();
    assert_eq!(suspended.status, TenantStatus::Suspended);
    let not_found = |r: Result<_, Error>| {
        assert!(
            matches!(
                r,
                Err(Error::NotFound {
                    entity: Entity::Tenant
                })
            ),
            "expected NotFound(tenant), got {r:?}"
        )
    };
    not_found(saas.resolve_host(&host).await.map(|_| ()));
    not_found(saas.resolve_slug(w.tenant.slug.as_str()).await.map(|_| ()));
    not_found(saas.open_tenant(w.tenant.id).await.map(|_| ()));
    not_found(saas.login(&suspended, "admin", PASSWORD).await.map(|_| ()));
    not_found(saas.session(&suspended, w.owner.id).await.map(|_| ()));
    match saas.authenticate(&suspended, &tokens.access).await {
        Err(Error::NotFound { .. } | Error::Unauthenticated) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    match saas.refresh(&suspended, &tokens.refresh).await {
        Err(Error::NotFound { .. } | Error::Unauthenticated) => {}
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The operator still sees it, with its data.
    let overview = op.overview(w.tenant.id).await.unwrap();
    assert_eq!(overview.tenant.status, TenantStatus::Suspended);
    assert_eq!(overview.projects.used, 1);

    let active = op.reactivate(w.tenant.id).await.unwrap();
    assert_eq!(active.status, TenantStatus::Active);
    assert_eq!(saas.resolve_host(&host).await.unwrap().id, w.tenant.id);
    let tokens = saas.login(&active, "admin", PASSWORD).await.unwrap();
    let s = saas.authenticate(&active, &tokens.access).await.unwrap();
    assert_eq!(
        s.list_projects(crate::harness::all()).await.unwrap().count,
        1
    );
}

/// A registered domain resolves with a port, in any case and with a
/// trailing dot; unknown and malformed hosts are not found.
pub async fn resolve_host_by_domain_port_and_case(f: &dyn Fixture) {
    let saas = saas(f.store());
    let w = World::register(&saas, None).await;
    let host = domain_for(w.tenant.slug.as_str());
    for h in [
        host.clone(),
        format!("{host}:8000"),
        host.to_ascii_uppercase(),
        format!("{host}."),
    ] {
        assert_eq!(saas.resolve_host(&h).await.unwrap().id, w.tenant.id, "{h}");
    }
    for h in [
        format!("unknown-{host}"),
        "nowhere.invalid".to_owned(),
        String::new(),
        "a b".to_owned(),
        "[::1]:80".to_owned(),
        format!("{host}/x"),
    ] {
        assert_err!(
            saas.resolve_host(&h).await,
            Error::NotFound {
                entity: Entity::Tenant
            }
        );
    }
    for s in ["unknownslug_x", "Robert\"; DROP", "public", ""] {
        assert_err!(
            saas.resolve_slug(s).await,
            Error::NotFound {
                entity: Entity::Tenant
            }
        );
    }
}

/// With a base domain, `<slug>.<base>` resolves to the tenant; deeper
/// names, unknown and reserved labels do not.
pub async fn resolve_host_by_base_domain_label(f: &dyn Fixture) {
    let saas = saas_core::Saas::builder(f.store())
        .secret(SECRET)
        .base_domain(Hostname::parse("apps.conformance.test").unwrap())
        .build()
        .unwrap();
    let w = World::register(&saas, None).await;
    let slug = w.tenant.slug.as_str().to_owned();
    assert_eq!(
        saas.resolve_host(&format!("{slug}.apps.conformance.test:8080"))
            .await
            .unwrap()
            .id,
        w.tenant.id
    );
    for h in [
        format!("x.{slug}.apps.conformance.test"),
        "zz_unknown_label.apps.conformance.test".to_owned(),
        "public.apps.conformance.test".to_owned(),
        "apps.conformance.test".to_owned(),
        format!("{slug}.elsewhere.test"),
    ] {
        assert_err!(
            saas.resolve_host(&h).await,
            Error::NotFound {
                entity: Entity::Tenant
            }
        );
    }
    // Suspension hides the label too.
    saas.operator_unchecked()
        .suspend(w.tenant.id)
        .await
        .unwrap();
    assert_err!(
        saas.resolve_host(&format!("{slug}.apps.conformance.test"))
            .await,
        Error::NotFound {
            entity: Entity::Tenant
        }
    );
}

/// A user whose stored hash is Django's `pbkdf2_sha256` (imported) logs in
/// with the password they had; the login replaces the hash with argon2id
/// without revoking the tokens it issues, and later logins use argon2id.
/// The replacement is a compare and swap: a stale `current` changes nothing.
pub async fn django_password_hashes_log_in_and_become_argon2id(f: &dyn Fixture) {
    // Python: hashlib.pbkdf2_hmac("sha256", b"correct horse battery", b"seasalt", 1000)
    const DJANGO: &str = "pbkdf2_sha256$1000$seasalt$DrdiWD40lyBuydnjvZiDrdQMx1S1mOA9O0QYex0R6ww=";
    let saas = saas(f.store());
    let w = World::register(&saas, Some("basic")).await;
    let member = w.seed_user(Role::Member, "imported1").await;
    let store = w.store().await;
    store.set_password(member.id, DJANGO).await.unwrap();
    assert_err!(
        saas.login(&w.tenant, "imported1", PASSWORD).await,
        Error::Unauthenticated
    );
    let (_, still) = store.credentials("imported1").await.unwrap().unwrap();
    assert_eq!(still, DJANGO, "a failed login keeps the Django hash");
    let version = store.user(member.id).await.unwrap().unwrap().token_version;

    let first = saas
        .login(&w.tenant, "imported1", "correct horse battery")
        .await
        .expect("the Django password logs in");
    let (user, hash) = store.credentials("imported1").await.unwrap().unwrap();
    assert!(hash.starts_with("$argon2id$"), "rehashed: {hash}");
    assert_eq!(user.token_version, version, "a rehash revokes nothing");
    saas.authenticate(&w.tenant, &first.access)
        .await
        .expect("the first login's token works after the rehash");
    saas.login(&w.tenant, "imported1", "correct horse battery")
        .await
        .expect("the same password against argon2id");
    assert_err!(
        saas.login(&w.tenant, "imported1", "correct horse batterY")
            .await,
        Error::Unauthenticated
    );

    assert!(
        !store
            .replace_password_hash(member.id, DJANGO, "$argon2id$stale")
            .await
            .unwrap(),
        "a stale current hash replaces nothing"
    );
    let (_, after) = store.credentials("imported1").await.unwrap().unwrap();
    assert_eq!(after, hash);
}
