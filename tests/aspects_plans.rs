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
        ("1.3.0", "3.0.3", "21.0.9", &["aspects-2-0-0", "aspects-2-5-0"]),
        ("3.0.3", "4.0.0", "22.0.3", &["aspects-4-0-0"]),
        ("4.0.0", "6.1.0", "22.0.2", &["aspects-5-0-0", "aspects-5-1-0", "aspects-6-0-0"]),
        (
            "",
            "6.1.0",
            "22.0.2",
            &["aspects-2-0-0", "aspects-2-5-0", "aspects-4-0-0", "aspects-5-0-0", "aspects-5-1-0", "aspects-6-0-0"],
        ),
    ];
    for (from, to, tutor, want) in cases {
        let r = show(&[
            "--var",
            &format!("installed={from}"),
            "--var",
            &format!("target={to}"),
            "--var",
            &format!("tutor_version={tutor}"),
            // Asked only when the window crosses 5.0.0 from an installed release.
            "--var",
            "xapi_pipeline=ralph",
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
        at("check-compatibility") < at("confirm-2-0-rehearsed") && at("confirm-2-0-rehearsed") < at("confirm-backup")
    );
    assert!(at("ask-pip") < at("confirm-backup") && at("confirm-backup") < at("install"));
    assert!(at("init") < at("dbt-full-refresh-2-5") && at("dbt-full-refresh-2-5") < at("remove-deprecated-models"));
    assert!(r.stdout.contains("run: tutor local do dbt --only_changed False -c 'run --full-refresh --select dim_problem_responses+ fact_video_segments+"), "{}", r.stdout);
}

#[test]
fn compatibility_messages_name_the_open_edx_release() {
    let cases = [
        ("4.0.0", "21.0.9", "Aspects 4.0.0 needs Open edX Verawood (Tutor 22); this machine runs Tutor 21.0.9 (Ulmo)"),
        ("3.0.3", "20.0.5", "Aspects 3.0.3 needs Open edX Ulmo (Tutor 21); this machine runs Tutor 20.0.5 (Teak)"),
        (
            "2.5.0",
            "17.0.6",
            "Aspects 2.5.0 needs Open edX Redwood to Teak (Tutor 18 to 20); this machine runs Tutor 17.0.6 (Quince)",
        ),
        // The releases that required tutor-mfe>=19 need Sumac.
        (
            "2.3.1",
            "18.2.2",
            "Aspects 2.3.1 needs Open edX Sumac to Teak (Tutor 19 to 20); this machine runs Tutor 18.2.2 (Redwood)",
        ),
        (
            "1.3.0",
            "21.0.9",
            "Aspects 1.3.0 needs Open edX Olive to Redwood (Tutor 15 to 18); this machine runs Tutor 21.0.9 (Ulmo)",
        ),
        (
            "6.1.0",
            "23.0.0",
            "Aspects 6.1.0 needs Open edX Verawood (Tutor 22; assumed, Aspects documents none for 5.x and 6.x); this machine runs Tutor 23.0.0 (a release this plan does not know)",
        ),
        (
            "7.0.0",
            "22.0.2",
            "Aspects 7.0.0 needs a release this plan does not know yet (it knows Aspects up to 6.x; use a newer plan); this machine runs Tutor 22.0.2 (Verawood)",
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
    assert!(ok.stdout.contains("1. check-compatibility [assert]\n       The target must run on this machine's Tutor (Open edX release), per data.compatibility\n       assert: true"), "{}", ok.stdout);
    for (target, tutor) in
        [("2.4.0", "18.2.2"), ("2.5.3", "20.0.5"), ("1.3.0", "18.2.2"), ("6.1.0", "22.0.2"), ("4.0.0", "22.0.3")]
    {
        let r = show(&[
            "--var",
            "installed=",
            "--var",
            &format!("target={target}"),
            "--var",
            &format!("tutor_version={tutor}"),
        ]);
        assert!(r.stdout.contains("check-compatibility [assert]\n       The target must run on this machine's Tutor (Open edX release), per data.compatibility\n       assert: true"), "{target} on {tutor}: {}", r.stdout);
    }
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
    assert!(r.stdout.contains("\nwould stop at check-compatibility: Aspects 4.0.0 needs Open edX Verawood (Tutor 22); this machine runs Tutor 21.0.9 (Ulmo)"), "{}", r.stdout);
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
    assert!(r.stdout.contains("backup [skipped]") && r.stdout.contains("confirm-backup [confirm]"), "{}", r.stdout);
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
    assert!(r.stdout.contains("confirm-backup [skipped]") && r.stdout.contains("backup [shell]"), "{}", r.stdout);
    assert!(r.stdout.contains("run: pip install tutor==21.0.9 tutor-contrib-aspects==3.0.3"), "{}", r.stdout);
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
        "installed=6.1.0",
        "--var",
        "target=6.2.0",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "tutor_root=/srv/tutor",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(included_plans(&r.stdout), vec!["aspects-6-2-0"]);
    assert!(r.stdout.contains("replay-tracking-logs-6-2 [run] (from aspects-6-2-0)\n       Replay tracking logs through the new transforms, deduplicating afterwards\n       needs: init"), "{}", r.stdout);
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
        ("aspects-4-0-0", "4.0.0"),
        ("aspects-5-0-0", "5.0.0"),
        ("aspects-5-1-0", "5.1.0"),
        ("aspects-6-0-0", "6.0.0"),
        ("aspects-replay-tracking-logs", "-"),
        ("aspects-restore", "-"),
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

/// `show` of 4.0.0 -> `target` on Tutor 22.0.2 with these extra values.
fn show_from_4(target: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--var", "installed=4.0.0", "--var", "tutor_version=22.0.2"];
    let t = format!("target={target}");
    args.extend(["--var", &t]);
    for e in extra {
        args.extend(["--var", e]);
    }
    show(&args)
}

/// One step of `plan show`'s list: its header line and the indented lines under it.
fn step_block(out: &str, id: &str) -> String {
    let header = |l: &str| l.trim_start().split_once(". ").is_some_and(|(n, _)| n.parse::<u32>().is_ok());
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| header(l) && l.contains(&format!(". {id} [")))
        .unwrap_or_else(|| panic!("no step {id}:\n{out}"));
    let len = lines[at + 1..].iter().position(|l| header(l) || !l.starts_with("   ")).unwrap_or(lines.len() - at - 1);
    lines[at..=at + len].join("\n")
}

#[test]
fn crossing_5_0_from_4_x_needs_an_explicit_xapi_pipeline() {
    let r = show_from_4("5.1.0", &["pii_enabled=true"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    let last = r.stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(
            "would stop at choose-xapi-pipeline: Aspects 5.0 switches sites that never chose from Ralph to Vector"
        ),
        "{last}"
    );
    assert!(last.contains("--var xapi_pipeline=ralph keeps Ralph") && last.contains("Nothing was changed."), "{last}");

    // Keeping Ralph: the three keys (and batching, which 4.x had on) are pinned before config is saved.
    let r = show_from_4("5.1.0", &["pii_enabled=true", "xapi_pipeline=ralph"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let keep = step_block(&r.stdout, "keep-ralph");
    assert!(keep.contains("[shell] (from aspects-5-0-0)"), "{keep}");
    assert!(
        keep.contains("set -- --set ASPECTS_XAPI_SOURCE=ralph --set RUN_RALPH=True --set RUN_VECTOR=False"),
        "{keep}"
    );
    assert!(step_block(&r.stdout, "config-save").contains("needs: remove-stale-assets, keep-ralph"), "{}", r.stdout);
    assert!(step_block(&r.stdout, "confirm-vector").contains("[skipped]"));

    // Moving to Vector is confirmed, before anything changes, with the replay plan named.
    let r = show_from_4("5.1.0", &["pii_enabled=true", "xapi_pipeline=vector"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let confirm = step_block(&r.stdout, "confirm-vector");
    assert!(confirm.contains("[confirm]") && confirm.contains("plan run aspects-replay-tracking-logs"), "{confirm}");
    assert!(step_block(&r.stdout, "keep-ralph").contains("[skipped]"));
    assert!(step_block(&r.stdout, "review-defaults").contains("confirm-vector"), "{}", r.stdout);

    // A fresh install is not asked.
    let r = show(&[
        "--var",
        "installed=",
        "--var",
        "target=5.1.0",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "pii_enabled=true",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(step_block(&r.stdout, "choose-xapi-pipeline").contains("[skipped]"));

    // A leftover ASPECTS_VECTOR_RAW_XAPI_TABLE is refused, whatever the choice.
    let r = show_from_4("6.1.0", &["pii_enabled=true", "xapi_pipeline=vector", "sets_vector_raw_table=true"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("would stop at refuse-vector-raw-table: config.yml sets ASPECTS_VECTOR_RAW_XAPI_TABLE"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("Vector now reads ASPECTS_RAW_XAPI_TABLE"), "{}", r.stdout);
}

#[test]
fn pii_off_is_confirmed_before_5_1_and_the_6_0_frontend_rehearsal_too() {
    let r = show_from_4(
        "6.1.0",
        &["xapi_pipeline=ralph", "pii_enabled=false", "mfe_enabled=true", "tutor_mfe_version=22.1.0"],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let pii = step_block(&r.stdout, "confirm-pii-truncation");
    assert!(pii.contains("[confirm] (from aspects-5-1-0)"), "{pii}");
    assert!(
        pii.contains("event_sink.user_profile, event_sink.external_id and event_sink.auth_user")
            && pii.contains("Individual Learner Dashboard"),
        "{pii}"
    );
    let mfe = step_block(&r.stdout, "confirm-mfe-rehearsed");
    assert!(mfe.contains("[confirm] (from aspects-6-0-0)") && mfe.contains("this tutor-mfe (22.1.0)"), "{mfe}");
    // Both asked before anything changes: before the default review, which comes before the backup.
    let review = step_block(&r.stdout, "review-defaults");
    assert!(review.contains("confirm-pii-truncation") && review.contains("confirm-mfe-rehearsed"), "{review}");
    assert!(step_block(&r.stdout, "confirm-backup").contains("needs: review-defaults"), "{}", r.stdout);

    let r = show_from_4("6.1.0", &["xapi_pipeline=ralph", "pii_enabled=true", "mfe_enabled=false"]);
    assert!(step_block(&r.stdout, "confirm-pii-truncation").contains("[skipped]"));
    assert!(step_block(&r.stdout, "confirm-mfe-rehearsed").contains("[skipped]"));
}

#[test]
fn mfe_is_rebuilt_from_4_0_when_enabled_and_before_only_for_in_context_metrics() {
    let cases = [
        ("4.0.0", "3.0.3", "22.0.2", "mfe_enabled=true", "in_context_metrics=false", true),
        ("4.0.0", "3.0.3", "22.0.2", "mfe_enabled=false", "in_context_metrics=true", false),
        ("3.0.3", "3.0.0", "21.0.9", "mfe_enabled=true", "in_context_metrics=false", false),
        ("3.0.3", "3.0.0", "21.0.9", "mfe_enabled=true", "in_context_metrics=true", true),
    ];
    for (target, installed, tutor, mfe, icm, built) in cases {
        let r = show(&[
            "--var",
            &format!("target={target}"),
            "--var",
            &format!("installed={installed}"),
            "--var",
            &format!("tutor_version={tutor}"),
            "--var",
            mfe,
            "--var",
            icm,
            "--var",
            "tutor_mfe_version=22.1.0",
        ]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        let block = step_block(&r.stdout, "build-mfe");
        assert_eq!(block.contains("run: tutor images build mfe --no-cache"), built, "{target} {mfe} {icm}: {block}");
    }
    // tutor-mfe older than 22 cannot hold the 4.0 frontend.
    let r = show(&[
        "--var",
        "installed=3.0.3",
        "--var",
        "target=4.0.0",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "mfe_enabled=true",
        "--var",
        "tutor_mfe_version=21.0.0",
    ]);
    assert!(r.stdout.contains("would stop at check-tutor-mfe-22: Aspects 4.0 builds its frontend into the mfe image through tutor-mfe 22's FRONTEND_APPS; this machine has tutor-mfe 21.0.0."), "{}", r.stdout);
}

#[test]
fn services_start_again_after_init_and_k8s_rolls_out_pushed_images() {
    let r = show_from_4("4.0.0", &["mfe_enabled=false"]);
    let start = step_block(&r.stdout, "start-services");
    assert!(start.contains("needs: init") && start.contains("run: tutor local start -d"), "{start}");
    assert!(step_block(&r.stdout, "roll-out").contains("[skipped]"));
    assert!(step_block(&r.stdout, "build-openedx-dev").contains("[skipped]"));

    let r = show_from_4("4.0.0", &["mfe_enabled=false", "deploy=dev"]);
    assert!(step_block(&r.stdout, "start-services").contains("run: tutor dev start -d"), "{}", r.stdout);
    assert!(step_block(&r.stdout, "build-openedx-dev").contains("run: tutor images build openedx-dev --no-cache"));

    let r = show_from_4("4.0.0", &["mfe_enabled=true", "tutor_mfe_version=22.1.0", "deploy=k8s"]);
    assert!(step_block(&r.stdout, "start-services").contains("[skipped]"));
    assert!(step_block(&r.stdout, "roll-out").contains("run: tutor k8s start"), "{}", r.stdout);
    let pushed = step_block(&r.stdout, "confirm-images-pushed");
    assert!(pushed.contains("(openedx, aspects, aspects-superset, mfe)"), "{pushed}");
    assert!(step_block(&r.stdout, "init").contains("confirm-images-pushed"));

    let r = show_from_4("4.0.0", &["mfe_enabled=false", "start_services=false"]);
    assert!(step_block(&r.stdout, "start-services").contains("[skipped]"));
}

#[test]
fn no_shipped_plan_calls_a_broken_or_misspelt_job() {
    for f in files(&root().join("plans")) {
        let text = std::fs::read_to_string(&f).expect("read");
        // 5.0.0-6.1.0 ship no template for it: it fails with a traceback.
        assert!(!text.contains("xapi-deduplicate"), "{}", f.display());
        for wrong in ["xapi_block_storage_backfill", "dump_data_to_clickhouse", "transform_tracking_logs"] {
            assert!(!text.contains(&format!("do {wrong}")), "{}: {wrong}", f.display());
        }
    }
    let replay = std::fs::read_to_string(root().join("plans/aspects/replay-tracking-logs.yaml")).expect("read");
    assert!(replay.contains("--deduplicate"));
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    assert!(!out.is_empty());
    out
}

/// A backup folder as the upgrade's backup step writes it (without tutor):
/// ClickHouse's data with a dangling table symlink, config.yml, versions.json
/// and a manifest whose checksums are computed the way the plans compute them.
fn fake_backup(d: &Dir) -> std::path::PathBuf {
    let b = d.path().join("backups/aspects-20261126T100000Z-abcd");
    std::fs::create_dir_all(b.join("clickhouse/store/a1b")).expect("mkdir");
    std::fs::create_dir_all(b.join("clickhouse/data/xapi")).expect("mkdir");
    std::fs::write(b.join("clickhouse/store/a1b/part.bin"), vec![1u8; 1234]).expect("write");
    std::os::unix::fs::symlink("/var/lib/clickhouse/store/a1b/", b.join("clickhouse/data/xapi/xapi_events_all"))
        .expect("symlink");
    std::fs::write(b.join("config.yml"), "PLUGINS:\n- aspects\n").expect("write");
    std::fs::write(
        b.join("versions.json"),
        r#"{"tutor": "22.0.2", "tutor-contrib-aspects": "4.0.0", "tutor-mfe": "22.1.0"}"#,
    )
    .expect("write");
    let sum = |cmd: &str| {
        let out = std::process::Command::new("sh").args(["-c", cmd]).current_dir(&b).output().expect("sh");
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap_or_default().to_owned()
    };
    let listing = sum(
        r"cd clickhouse && { find . -type d -printf '%P\td\n'; find . ! -type d -printf '%P\t%y\t%s\t%l\n'; } | LC_ALL=C sort | sha256sum",
    );
    let config = sum("sha256sum < config.yml");
    let manifest = serde_json::json!({
        "run_id": "20261126T100000Z-abcd", "time": "2026-11-26T10:00:00Z", "tutor_root": "/srv/tutor",
        "tutor_version": "22.0.2",
        "versions": {"tutor": "22.0.2", "tutor-contrib-aspects": "4.0.0", "tutor-mfe": "22.1.0"},
        "files": {
            "config.yml": {"size": 20, "sha256": config},
            "clickhouse": {"entries": 7, "bytes": 1234, "listing_sha256": listing},
        },
    });
    std::fs::write(b.join("manifest.json"), manifest.to_string()).expect("write");
    b
}

fn show_restore(d: &Dir, backup: &str, extra: &[&str]) -> Run {
    let arg = format!("backup={backup}");
    let mut args = vec![
        "show",
        "aspects-restore",
        "--var",
        &arg,
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "tutor_root=/srv/tutor",
        "--var",
        "installed=5.1.0",
        "--var",
        "mfe_enabled=true",
    ];
    args.extend(extra.iter().flat_map(|e| ["--var", e]));
    d.plan(&args)
}

#[test]
fn show_aspects_restore_says_what_comes_back_from_where() {
    let d = Dir::new();
    let b = fake_backup(&d);
    let r = show_restore(&d, &b.display().to_string(), &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("backup_check = ok (probed"), "{}", r.stdout);
    let confirm = step_block(&r.stdout, "confirm-restore");
    assert!(
        confirm.contains("Restore the backup of run 20261126T100000Z-abcd at 2026-11-26T10:00:00Z: ClickHouse data 1234 bytes in 7 entries, config.yml 20 bytes, tutor 22.0.2, tutor-contrib-aspects 4.0.0, tutor-mfe 22.1.0."),
        "{confirm}"
    );
    assert!(
        confirm.contains("moved aside to /srv/tutor/data/clickhouse-before-restore-<run id>, never deleted"),
        "{confirm}"
    );
    assert!(confirm.contains("tutor-contrib-aspects 5.1.0 by 4.0.0"), "{confirm}");
    // The run id works as well as the folder.
    let backups = format!("backup_dir={}", d.path().join("backups").display());
    let r = show_restore(&d, "20261126T100000Z-abcd", &[&backups]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("backup_path = {} (probed", b.display())), "{}", r.stdout);
}

#[test]
fn a_restore_dry_run_checks_the_backup_and_the_machine_and_changes_nothing() {
    let d = Dir::new();
    let b = fake_backup(&d);
    let dry = |extra: &[&str]| {
        let arg = format!("backup={}", b.display());
        let mut args = vec![
            "run",
            "aspects-restore",
            "--dry-run",
            "--state-dir",
            "state",
            "--var",
            &arg,
            "--var",
            "tutor_root=/srv/tutor",
            "--var",
            "installed=5.1.0",
            "--var",
            "mfe_enabled=true",
        ];
        args.extend(extra.iter().flat_map(|e| ["--var", e]));
        d.plan(&args)
    };
    assert_eq!(dry(&["tutor_version=22.0.2"]).code, 0);
    let r = dry(&["tutor_version=22.0.3"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(
            "would stop at check-tutor-version: Tutor is 22.0.3 here; the backup was taken with Tutor 22.0.2."
        ),
        "{}",
        r.stdout
    );
    let r = dry(&["tutor_version=22.0.2", "deploy=k8s"]);
    assert!(
        r.stdout.contains("would stop at refuse-k8s: On Kubernetes the upgrade takes no cold copy"),
        "{}",
        r.stdout
    );

    // One file changed size, config.yml edited: both named.
    std::fs::write(b.join("clickhouse/store/a1b/part.bin"), vec![1u8; 1235]).expect("write");
    std::fs::write(b.join("config.yml"), "PLUGINS:\n- mfe\n").expect("write");
    let r = dry(&["tutor_version=22.0.2"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains(&format!(
            "would stop at check-backup: The backup at {} does not match its manifest: config.yml changed; the ClickHouse data differs from its listing (a file missing, added or resized).",
            b.display()
        )),
        "{}",
        r.stdout
    );
    assert_eq!(
        std::fs::read(b.join("clickhouse/store/a1b/part.bin")).expect("read").len(),
        1235,
        "a dry run changed the backup"
    );
}

#[test]
fn show_says_the_default_review_will_run_and_what_it_compares() {
    let r = show_from_4("5.1.0", &["pii_enabled=true", "xapi_pipeline=vector", "keep_defaults=RUN_RALPH"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let review = step_block(&r.stdout, "review-defaults");
    assert!(review.contains("[review_defaults]"), "{review}");
    assert!(
        review.contains(
            "review_defaults: compare tutor's configuration (root /srv/tutor) with the installed tutor-contrib-aspects and with tutor-contrib-aspects==5.1.0 (downloaded, not installed)"
        ),
        "{review}"
    );
    assert!(review.contains("keep at the installed value: RUN_RALPH"), "{review}");
    assert!(!review.contains("set by the plan"), "vector pins nothing: {review}");
    // The backup and every change wait for it.
    assert!(step_block(&r.stdout, "confirm-major-upgrade").contains("needs: review-defaults"), "{}", r.stdout);

    // Keeping Ralph: the keys keep-ralph sets are compared with its values.
    let r = show_from_4("5.1.0", &["pii_enabled=true", "xapi_pipeline=ralph"]);
    let review = step_block(&r.stdout, "review-defaults");
    assert!(
        review.contains(
            "set by the plan: ASPECTS_XAPI_SOURCE=ralph RUN_RALPH=true RUN_VECTOR=false EVENT_ROUTING_BACKEND_BATCHING_ENABLED=true"
        ),
        "{review}"
    );
    // Not crossing 5.0.0: nothing is pinned.
    let r = show(&[
        "--var",
        "installed=5.1.0",
        "--var",
        "target=6.1.0",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "pii_enabled=true",
        "--var",
        "xapi_pipeline=ralph",
    ]);
    assert!(!step_block(&r.stdout, "review-defaults").contains("set by the plan"), "{}", r.stdout);
    // Installed already, or a fresh install: nothing to review.
    let r = show(&[
        "--var",
        "installed=",
        "--var",
        "target=6.1.0",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "pii_enabled=true",
    ]);
    assert!(step_block(&r.stdout, "review-defaults").contains("[skipped]"), "{}", r.stdout);
}

#[test]
fn a_dry_run_without_tutor_says_it_cannot_compare_and_where_the_run_would_stop() {
    let dir = Dir::new();
    let r = dir.plan(&[
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
        "--var",
        "tutor=/nonexistent/tutor",
    ]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("review_defaults `review-defaults` (read-only; the run compares again before it asks):"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("cannot compare here: cannot read /nonexistent/tutor"), "{}", r.stdout);
    assert!(r.stdout.contains("(the run would stop at `review-defaults` unless it can)"), "{}", r.stdout);
}
