//! The conformance suite and property test against the SQLite backend
//! (a fresh temporary directory per case). Run: `cargo test -p tests --test sqlite`.

tests::conformance_tests!(sqlite, tests::sqlite::Sqlite);
