//! The embedding example runs to the end and prints what it did: the
//! registration, the plan limit refusing the fourth project, and the
//! dashboard's counts.

use std::process::Command;

#[test]
fn embedding_example_runs_and_reports_the_dashboard() {
    let out = Command::new(env!("CARGO_BIN_EXE_embed"))
        .output()
        .expect("the embed example starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "embed failed: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "registered tenant Acme Corp (acme) on plan free",
        "added john as manager",
        "added jane as member",
        "refused: plan free allows 3 projects",
        "jane has 1 task(s)",
        "dashboard: 3 projects, 3 tasks (1 done), users 3/Some(5)",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}
