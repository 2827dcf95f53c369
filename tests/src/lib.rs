//! The test kit of `saas`: one place for what tests of every crate need.
//!
//! - Fixtures, chosen by environment and fresh per test: [`sqlite`] (a new
//!   temporary directory), [`pg`] (the database at `SAAS_TEST_DATABASE_URL`,
//!   fresh tenants or a database of the test's own, cleaned up after a
//!   passing case; `SAAS_REQUIRE_POSTGRES=1` turns "unavailable, skipping"
//!   into a failure) and [`memory`] (a complete in-memory
//!   [`Store`](saas_core::store::Store), the jobs tests' storage). Each is
//!   a [`Backend`] making [`Fixture`]s ([`backend`]).
//! - [`server`]: the real router on a random port over a fresh store, and
//!   an HTTP client that speaks to it. [`browser`]: headless Chromium over
//!   WebDriver, with screenshots. [`program`]: the example programs run as
//!   their binaries. [`clock`]: a clock set by hand.
//!   [`records`]: records for tests below the service layer.
//! - The Store conformance suite: every case in [`cases`] is an
//!   `async fn(&dyn Fixture)` that asserts on error *variants*, in the
//!   manner of object_store's `integration.rs`, over the helpers of
//!   [`harness`]; [`conformance_tests!`] generates it for one backend.
//!   [`property`] runs random operation sequences against a backend and an
//!   independent [`model`] at once.
//! - The JobQueue conformance suite, [`queue_conformance`], generated for
//!   one queue by [`job_queue_conformance!`]; [`jobs`]: fresh job kinds
//!   and claim requests for a queue's own tests.
//!
//! ```ignore
//! tests::conformance_tests!(sqlite, tests::sqlite::Sqlite);
//! ```
//!
//! expands to one `#[tokio::test(flavor = "multi_thread")]` per case, named
//! `sqlite::<case>`, and to `sqlite::property_random_operations`.
//!
//! Other crates take the kit as a renamed dev-dependency,
//! `testkit = { package = "tests", path = "../tests" }`, and use it only
//! from integration tests (`tests/*.rs`): their own unit tests are compiled
//! into the very library the kit links.

pub mod apps;
pub mod backend;
pub mod browser;
pub mod cases;
pub mod clock;
pub mod harness;
pub mod jobs;
pub mod memory;
pub mod model;
pub mod pg;
pub mod program;
pub mod property;
pub mod queue_conformance;
pub mod records;
pub mod rolling;
pub mod server;
pub mod sqlite;

pub use backend::{Backend, Fixture};

/// Generates the whole conformance suite for one backend: a module named
/// `$module` with one `#[tokio::test]` per case and the property test.
/// `$backend` is an expression whose value implements [`Backend`].
#[macro_export]
macro_rules! conformance_tests {
    ($module:ident, $backend:expr) => {
        mod $module {
            $crate::__conformance_case!($module, $backend;
                // registration
                register_creates_tenant_domain_and_owner,
                register_uses_the_default_or_named_plan,
                register_rejects_each_invalid_field,
                register_duplicate_slug_conflicts_and_leaves_nothing,
                register_duplicate_domain_conflicts_and_leaves_nothing,
                // login and tokens
                login_refuses_wrong_password_unknown_and_inactive_users,
                refresh_rotates_and_reuse_revokes_the_family,
                tokens_are_bound_to_their_tenant,
                password_change_invalidates_tokens,
                deactivation_invalidates_tokens,
                role_change_applies_to_the_next_request,
                other_processes_see_deactivation_within_the_user_cache_ttl,
                suspended_tenant_refuses_login_and_resolution,
                django_password_hashes_log_in_and_become_argon2id,
                // import
                import_tenant_keeps_ids_timestamps_and_hashes,
                import_tenant_is_all_or_nothing,
                import_run_reports_resumes_and_verifies,
                // host resolution
                resolve_host_by_domain_port_and_case,
                resolve_host_by_base_domain_label,
                subdomains_under_the_base_domain_cannot_be_taken_over,
                // users
                admin_registers_every_role,
                manager_registers_only_members_and_viewers,
                members_and_viewers_cannot_register_users,
                duplicate_username_ignoring_case_conflicts,
                user_validation_errors_change_nothing,
                owner_cannot_be_demoted_or_deactivated,
                user_update_rules,
                // projects
                projects_are_created_by_admins_and_managers,
                project_validation_errors_change_nothing,
                project_visibility_follows_involvement,
                project_update_and_delete_rules,
                project_members_are_managed_by_admins_and_involved_managers,
                deleting_a_project_deletes_its_tasks_and_memberships,
                dates_outside_years_1_to_9999_are_invalid,
                // tasks
                task_creation_rules,
                task_validation_errors_change_nothing,
                task_update_and_delete_rules,
                moving_a_task_is_checked_as_creating_it_there,
                a_moved_task_keeps_only_an_assignee_of_its_new_project,
                moving_a_task_respects_the_destination_limit,
                mark_complete_sets_completed_at_and_reopening_clears_it,
                task_filters_and_search,
                task_ordering_breaks_ties_by_id_and_puts_missing_due_dates_last,
                my_tasks_lists_my_assignments_by_due_date,
                statistics_and_dashboard_count_correctly,
                pagination_counts_and_slices,
                // plans
                user_limit_of_the_free_plan,
                project_limit_of_the_free_plan,
                task_limit_per_project,
                plan_change_takes_effect_at_once_and_downgrade_deletes_nothing,
                concurrent_project_creates_respect_the_limit,
                concurrent_task_creates_respect_the_limit,
                concurrent_user_creates_respect_the_limit,
                // operator
                operator_lists_tenants_with_usage,
                operator_suspends_reactivates_and_deletes,
                operator_manages_domains,
                operator_makes_a_domain_primary,
                superusers_log_in_and_are_unique,
                // audit log
                audit_log_lists_newest_first_with_filters_and_pages,
                concurrent_audit_appends_get_distinct_ids,
                operator_actions_are_audited,
                tenant_search_filters_sorts_and_pages,
                platform_tokens_die_with_their_superuser,
                // isolation
                isolation_same_ids_are_not_found_across_tenants,
                isolation_lists_and_logins_stay_in_their_tenant,
                refresh_tokens_are_single_use_at_the_store,
                tokens_do_not_survive_tenant_recreation,
                // the storage contract
                values_round_trip_exactly,
                search_folds_ascii_case_only,
                store_due_windows_and_pruning,
                store_token_versions_and_logins,
                concurrent_registrations_conflict_cleanly,
                // races and stale handles
                concurrent_member_changes_are_idempotent,
                concurrent_task_writes_keep_counts_exact,
                self_edits_racing_an_admin_never_undo_the_admin,
                rotation_racing_a_family_revocation_leaves_no_live_token,
                deleting_a_project_during_task_creates_leaves_no_orphans,
                stale_handles_of_a_deleted_tenant_write_nothing,
                removing_another_tenants_domain_changes_nothing,
                // known bugs (see __conformance_one)
                suspension_applies_to_tenant_values_resolved_before,
                tasks_are_not_assigned_to_inactive_users,
            );
            #[test]
            fn property_random_operations() {
                $crate::property::run(&$backend);
            }
        }
    };
}

/// Expands the cases of one backend's module.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_case {
    ($module:ident, $backend:expr; $($case:ident),* $(,)?) => {
        $( $crate::__conformance_one!($module, $case, $backend); )*
    };
}

/// One case as a test. The first arms are the known bugs: those cases are
/// generated `#[ignore]`d, with the bug in the reason, for every backend
/// (`$module:ident`) or for one (its module name); run them with
/// `cargo test -p tests -- --ignored`.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_one {
    ($module:ident, $case:ident, $backend:expr) => {
        $crate::__conformance_test!($case, $backend);
    };
}

/// The test function of one case, ignored with a reason if one is given.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ($case:ident, $backend:expr $(, $reason:literal)?) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[ignore = $reason])?
        async fn $case() {
            if let Some(fixture) = $crate::Backend::fixture(&$backend).await {
                $crate::cases::$case(&*fixture).await;
                fixture.cleanup().await;
            }
        }
    };
}
