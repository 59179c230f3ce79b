//! The shipped Aspects plans, without tutor: release selection, rendering,
//! compatibility messages. (The end-to-end runs are in `aspects_e2e.rs`.)

mod common;
use common::*;

/// `plan show aspects-upgrade` with the facts given, as on a machine without tutor.
fn show(extra: &[&str]) -> Run {
    let base = ["show", "aspects-upgrade", "--var", "tutor_root=/srv/tutor"];
    plan(&[&base[..], extra].concat())
}

#[test]
fn release_plans_between_installed_and_target_are_included_in_order() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        ("2.4.0", "2.5.0", "20.0.5", &["aspects-2-5-0"]),
        ("2.5.1", "2.5.3", "20.0.5", &[]),
        ("1.3.0", "3.0.3", "21.0.9", &["aspects-2-0-0", "aspects-2-5-0", "aspects-3-0-0"]),
        ("3.0.3", "4.0.0", "22.0.3", &["aspects-4-0-0"]),
    ];
    for (from, to, tutor, want) in cases {
        let r = show(&[
            "--var",
            &format!("installed={from}"),
            "--var",
            &format!("target={to}"),
            "--var",
            &format!("tutor_version={tutor}"),
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(included_plans(&r.stdout), *want, "{from} -> {to}:\n{}", r.stdout);
    }
}

#[test]
fn the_2_5_full_refresh_runs_after_init_and_release_checks_before_install() {
    let r = show(&["--var", "installed=1.3.0", "--var", "target=3.0.3", "--var", "tutor_version=21.0.9"]);
    let order: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| {
            l.trim_start()
                .split_once(". ")
                .filter(|(n, _)| n.parse::<u32>().is_ok())
                .map(|(_, rest)| rest.split(' ').next().unwrap_or(""))
        })
        .collect();
    let at = |id: &str| order.iter().position(|s| *s == id).unwrap_or_else(|| panic!("{id} missing from {order:?}"));
    assert!(
        at("check-redwood") < at("install")
            && at("check-ulmo") < at("install")
            && at("confirm-2-0-rehearsed") < at("install")
    );
    assert!(at("init") < at("dbt-full-refresh-2-5") && at("dbt-full-refresh-2-5") < at("remove-deprecated-models"));
    assert!(r.stdout.contains("run: tutor local do dbt --only_changed False -c 'run --full-refresh --select dim_problem_responses+ fact_video_segments+"), "{}", r.stdout);
}

#[test]
fn compatibility_messages_name_the_open_edx_release() {
    let cases = [
        (
            "4.0.0",
            "21.0.9",
            "Aspects 4.x needs Open edX Verawood or later (Tutor 22+); this machine runs Tutor 21.0.9 (Ulmo)",
        ),
        ("3.0.3", "20.0.5", "Aspects 3.x needs Open edX Ulmo (Tutor 21); this machine runs Tutor 20.0.5 (Teak)"),
        (
            "2.5.0",
            "17.0.6",
            "Aspects 2.x needs Open edX Redwood to Teak (Tutor 18 to 20); this machine runs Tutor 17.0.6 (Quince)",
        ),
        (
            "1.3.0",
            "21.0.9",
            "Aspects 1.x needs Open edX Nutmeg to Redwood (Tutor 14 to 18); this machine runs Tutor 21.0.9 (Ulmo)",
        ),
    ];
    for (target, tutor, msg) in cases {
        let r = show(&[
            "--var",
            "installed=",
            "--var",
            &format!("target={target}"),
            "--var",
            &format!("tutor_version={tutor}"),
        ]);
        // `show` tells the truth: the run would stop at the check, so it exits 1.
        assert_eq!(r.code, 1, "{}", r.stderr);
        assert!(r.stdout.contains(&format!("assert: false: {msg}")), "{target} on {tutor}:\n{}", r.stdout);
        let last = r.stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with(&format!("would stop at check-compatibility: {msg}")), "{}", r.stdout);
    }
    let ok = show(&["--var", "installed=3.0.0", "--var", "target=3.0.3", "--var", "tutor_version=21.0.9"]);
    assert!(ok.stdout.contains("1. check-compatibility [assert]\n       The target's major version must match this machine's Tutor (Open edX release)\n       assert: true"), "{}", ok.stdout);
}

#[test]
fn a_dry_run_that_would_stop_at_the_compatibility_check_exits_1() {
    let r = plan(&[
        "run",
        "aspects-upgrade",
        "--dry-run",
        "--state-dir",
        "target/never-used",
        "--var",
        "tutor_root=/srv/tutor",
        "--var",
        "installed=",
        "--var",
        "target=4.0.0",
        "--var",
        "tutor_version=21.0.9",
    ]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("\nwould stop at check-compatibility: Aspects 4.x needs Open edX Verawood or later (Tutor 22+); this machine runs Tutor 21.0.9 (Ulmo)"), "{}", r.stdout);
    assert!(r.stdout.ends_with("dry run: nothing was run; the run would fail there\n"), "{}", r.stdout);
}

#[test]
fn a_downgrade_across_majors_is_refused_and_a_major_upgrade_asks() {
    let r = show(&["--var", "installed=3.0.3", "--var", "target=2.5.3", "--var", "tutor_version=20.0.5"]);
    assert!(
        r.stdout.contains("assert: false: Aspects 3.0.3 is installed; 2.5.3 is an older major version."),
        "{}",
        r.stdout
    );
    let r = show(&["--var", "installed=2.5.3", "--var", "target=3.0.3", "--var", "tutor_version=21.0.9"]);
    assert!(
        r.stdout.contains("confirm: Upgrading Aspects from 2.5.3 to 3.0.3 crosses a major version."),
        "{}",
        r.stdout
    );
    let r = show(&["--var", "installed=3.0.0", "--var", "target=3.0.3", "--var", "tutor_version=21.0.9"]);
    assert!(r.stdout.contains("confirm-major-upgrade [skipped]"), "{}", r.stdout);
}

#[test]
fn k8s_renders_tutor_k8s_do_and_asks_for_a_backup() {
    let r = show(&[
        "--var",
        "installed=3.0.0",
        "--var",
        "target=3.0.3",
        "--var",
        "tutor_version=21.0.9",
        "--var",
        "deploy=k8s",
        "--var",
        "backup_dir=/backups",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("run: tutor k8s do init -l aspects"), "{}", r.stdout);
    assert!(
        r.stdout.contains("run: tutor k8s do dbt -c 'run-operation remove_deprecated_models' --only_changed False"),
        "{}",
        r.stdout
    );
    // No cold copy on Kubernetes: the operator confirms a backup instead.
    assert!(
        r.stdout.contains("backup-clickhouse [skipped]") && r.stdout.contains("confirm-backup [confirm]"),
        "{}",
        r.stdout
    );
}

#[test]
fn local_with_backup_dir_renders_the_cold_copy_confined_and_pinned_install() {
    let r = show(&[
        "--var",
        "installed=3.0.0",
        "--var",
        "target=3.0.3",
        "--var",
        "tutor_version=21.0.9",
        "--var",
        "backup_dir=/var/backups/aspects",
        "--var",
        "in_context_metrics=true",
    ]);
    assert!(
        r.stdout.contains("confirm-backup [skipped]") && r.stdout.contains("backup-clickhouse [shell]"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("run: pip install --upgrade tutor-contrib-aspects==3.0.3"));
    assert!(r.stdout.contains(
        "remove: /srv/tutor/env/plugins/aspects/build/aspects-superset/openedx-assets/assets (within /srv/tutor)"
    ));
    assert!(r.stdout.contains("run: tutor images build mfe --no-cache"));
    let bad = show(&["--var", "installed=3.0.0", "--var", "target=latest", "--var", "tutor_version=21.0.9"]);
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("variable `target` = `latest` (from --var) does not match its pattern"),
        "{}",
        bad.stderr
    );
}

#[test]
fn a_release_that_needs_a_replay_ships_a_release_plan() {
    let dir = root().join("tests/fixtures/aspects").display().to_string();
    let r = plan(&[
        "show",
        "aspects-upgrade",
        "--plans-dir",
        &dir,
        "--var",
        "installed=8.1.0",
        "--var",
        "target=9.0.0",
        "--var",
        "tutor_version=25.0.0",
        "--var",
        "tutor_root=/srv/tutor",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(included_plans(&r.stdout), vec!["aspects-9-0-0"]);
    assert!(r.stdout.contains("replay-tracking-logs-9-0 [run] (from aspects-9-0-0)\n       Replay tracking logs through the new transforms, deduplicating afterwards\n       needs: init"), "{}", r.stdout);
    assert!(
        r.stdout.contains("--source_config *** --destination_provider LRS --transformer_type xapi --deduplicate"),
        "{}",
        r.stdout
    );
    let lint = plan(&["lint", "--deny-warnings", "tests/fixtures/aspects"]);
    assert_eq!(lint.code, 0, "{}", lint.stdout);
}

#[test]
fn list_shows_the_shipped_plans_with_their_releases() {
    let r = plan(&["list"]);
    for (name, release) in [
        ("aspects-upgrade", "-"),
        ("aspects-2-0-0", "2.0.0"),
        ("aspects-2-5-0", "2.5.0"),
        ("aspects-3-0-0", "3.0.0"),
        ("aspects-4-0-0", "4.0.0"),
        ("aspects-replay-tracking-logs", "-"),
    ] {
        assert!(
            r.stdout.lines().any(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                w.first() == Some(&name) && w.get(1) == Some(&release)
            }),
            "{name} {release}:\n{}",
            r.stdout
        );
    }
}

#[test]
fn readme_main_command_works_without_tutor() {
    // The README's first command, minus cargo: a dry run with the facts as --var.
    let d = Dir::new();
    let r = plan_env(
        d.path(),
        &[
            "run",
            "aspects-upgrade",
            "--dry-run",
            "--var",
            "target=3.0.3",
            "--var",
            "tutor_version=21.0.9",
            "--var",
            "installed=3.0.0",
            "--var",
            "tutor_root=/srv/tutor",
        ],
        &[("PATH", "/usr/bin:/bin")],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("dry run: nothing was run"));
}
