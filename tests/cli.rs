//! The command line refuses nonsense and documents itself.

mod common;
use common::*;

#[test]
fn nonsense_arguments_are_refused() {
    let d = Dir::new();
    d.file("p.yaml", "apiVersion: plan/v1\nname: p\nsteps:\n  - id: a\n    run: \"true\"\n");
    let r = d.plan(&["run", "./p.yaml", "--jobs", "0", "--state-dir", "s"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("invalid value '0' for '--jobs <JOBS>'"), "{}", r.stderr);
    let r = d.plan(&["run", "./p.yaml", "--force", "--state-dir", "s"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--resume"), "{}", r.stderr);
    assert!(!d.path().join("s").exists(), "nothing ran");
}

#[test]
fn help_lists_exit_codes_environment_and_state() {
    let r = plan(&["--help"]);
    assert_eq!(r.code, 0);
    for text in ["Exit codes:", "128+N", "PLAN_PATH", "PLAN_VAR_<name>", "XDG_STATE_HOME", "~/.local/state/plan"] {
        assert!(r.stdout.contains(text), "`{text}` missing from --help:\n{}", r.stdout);
    }
    let r = plan(&["run", "--help"]);
    for text in ["A plan name on the plan path, or a plan file", "Where runs are kept", "How to report progress"] {
        assert!(r.stdout.contains(text), "`{text}` missing from run --help:\n{}", r.stdout);
    }
}
