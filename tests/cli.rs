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
    for text in [
        "A plan name on the plan path, or a plan file",
        "Where runs are kept",
        "How to report: lines for people, or JSON",
    ] {
        assert!(r.stdout.contains(text), "`{text}` missing from run --help:\n{}", r.stdout);
    }
}

#[test]
fn completions_for_every_shell_and_a_man_page() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let r = plan(&["completions", shell]);
        assert_eq!(r.code, 0, "{shell}: {}", r.stderr);
        assert!(r.stdout.contains("plan") && r.stdout.len() > 500, "{shell}: {}", r.stdout);
    }
    // A real bash takes the script.
    let script = plan(&["completions", "bash"]).stdout;
    let d = Dir::new();
    let f = d.file("plan.bash", &script);
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("source {}; complete -p plan", f.display())])
        .output()
        .expect("bash");
    assert!(String::from_utf8_lossy(&out.stdout).contains("_plan"), "{}", String::from_utf8_lossy(&out.stderr));
    let man = plan(&["man"]);
    assert_eq!(man.code, 0);
    assert!(man.stdout.contains(".TH plan 1") && man.stdout.contains("Exit codes"), "{}", man.stdout);
}

/// `pip install .` from a checkout builds `plan` (maturin, `bindings = "bin"`)
/// into a fresh venv, where it runs and knows the shipped plans.
#[test]
#[ignore = "builds the wheel with maturin from PyPI (a release build); CI runs it with --include-ignored"]
fn pip_installs_plan_into_a_fresh_venv() {
    let venv = target_dir().join("py/pip-install-test");
    let _ = std::fs::remove_dir_all(&venv);
    let made = std::process::Command::new("python3").args(["-m", "venv"]).arg(&venv).status().expect("python3");
    assert!(made.success());
    let install = std::process::Command::new(venv.join("bin/pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .arg(root())
        .env("CARGO_TARGET_DIR", target_dir().join("wheel-build"))
        .output()
        .expect("pip");
    assert!(install.status.success(), "{}", String::from_utf8_lossy(&install.stderr));
    let version = std::process::Command::new(venv.join("bin/plan")).arg("--version").output().expect("plan");
    assert_eq!(String::from_utf8_lossy(&version.stdout), format!("plan {}\n", env!("CARGO_PKG_VERSION")));
    let list = std::process::Command::new(venv.join("bin/plan")).arg("list").output().expect("plan");
    assert!(String::from_utf8_lossy(&list.stdout).contains("aspects-upgrade"));
}

#[test]
fn quiet_prints_only_failures_and_the_last_line() {
    let d = Dir::new();
    d.file("q.yaml", "apiVersion: plan/v1\nname: q\nsteps:\n  - id: a\n    run: echo hi\n  - id: b\n    needs: [a]\n    run: \"false\"\n");
    let r = d.plan(&["run", "./q.yaml", "-q", "--state-dir", "s"]);
    assert_eq!(r.code, 1);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", r.stdout);
    assert_eq!(lines[0], "[b] failed in 0.0s: exited with status 1");
    assert!(lines[1].starts_with("run ") && lines[1].contains(" failed in "), "{}", r.stdout);
    // The output still reaches the log.
    assert!(d.plan(&["logs", "a", "--state-dir", "s"]).stdout == "hi\n");
}

#[test]
fn colour_follows_the_flag_and_the_environment() {
    let lint = |args: &[&str], env: &[(&str, &str)]| {
        let all = [&["lint"][..], args, &["tests/fixtures/lint/unknown-dependency.yaml"][..]].concat();
        plan_env(&root(), &all, env).stdout.lines().next().unwrap_or_default().to_owned()
    };
    let red = "\u{1b}[1;31merror[unknown-dependency]\u{1b}[0m";
    assert!(lint(&["--color", "always"], &[]).contains(red));
    // Not a terminal: no colour by default; CLICOLOR_FORCE forces it; NO_COLOR and --color never win over it.
    assert!(!lint(&[], &[]).contains('\u{1b}'));
    assert!(lint(&[], &[("CLICOLOR_FORCE", "1")]).contains(red));
    assert!(!lint(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]).contains('\u{1b}'));
    assert!(!lint(&[], &[("NO_COLOR", "1")]).contains('\u{1b}'));
    let d = Dir::new();
    d.file("p.yaml", "apiVersion: plan/v1\nname: p\nsteps:\n  - id: a\n    run: \"true\"\n");
    let r = d.plan(&["run", "./p.yaml", "--color", "always", "--state-dir", "s"]);
    assert!(r.stdout.contains("[a] \u{1b}[32msucceeded\u{1b}[0m in "), "{}", r.stdout);
}
