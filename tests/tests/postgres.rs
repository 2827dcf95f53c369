//! The conformance suite and property test against the PostgreSQL backend
//! at `SAAS_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Skipped with a note when unreachable, unless `SAAS_REQUIRE_POSTGRES=1`.
//! Run: `cargo test -p tests --test postgres`.

tests::conformance_tests!(postgres, tests::pg::Postgres);
