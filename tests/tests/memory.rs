//! The conformance suite and property test against the in-memory backend
//! (a fresh `MemoryStore` per case): the kit's own store must meet the same
//! contract as the real backends before other tests may lean on it.
//! Run: `cargo test -p tests --test memory`.

tests::conformance_tests!(memory, tests::memory::Memory);
