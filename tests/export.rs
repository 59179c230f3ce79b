//! `plan export --format argo`: every shipped plan (in several windows) and
//! every fixture that exports is validated by a strict copy of Argo's
//! published Workflow schema (check-jsonschema from PyPI) and Argo's own
//! submission checks (check-dag.py); both are in tests/argo (see its README).
//! A small plan is compared with a golden file; what cannot be expressed is
//! refused by name; no secret value reaches the YAML.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const IMAGE: &str = "registry.example/openedx-tutor:22";

fn export(args: &[&str]) -> Run {
    plan(&[&["export", "--image", IMAGE][..], args].concat())
}

/// Runs both validators over the files; panics with their output when either refuses one.
fn validate(files: &[PathBuf]) {
    let venv = python_venv("argo-check", &["check-jsonschema==0.39.0", "PyYAML==6.0.4"]);
    let argo = root().join("tests/argo");
    let schema = argo.join("workflow.strict.schema.json");
    let checks = [
        (
            "the schema",
            Command::new(venv.join("bin/check-jsonschema")).arg("--schemafile").arg(&schema).args(files).output(),
        ),
        ("check-dag.py", Command::new(venv.join("bin/python")).arg(argo.join("check-dag.py")).args(files).output()),
    ];
    for (what, out) in checks {
        let out = out.unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        assert!(
            out.status.success(),
            "{what} refuses an export:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn write(dir: &Path, name: &str, r: &Run) -> PathBuf {
    assert_eq!(r.code, 0, "{name}: {}{}", r.stdout, r.stderr);
    let p = dir.join(format!("{name}.yaml"));
    std::fs::write(&p, &r.stdout).expect("write");
    p
}

/// The facts of the shipped Aspects plans, given (no tutor here).
const ASPECTS_FACTS: &[&str] = &[
    "--var",
    "tutor_root=/srv/tutor",
    "--var",
    "pii_enabled=true",
    "--var",
    "mfe_enabled=true",
    "--var",
    "tutor_mfe_version=22.1.0",
    "--var",
    "in_context_metrics=false",
    "--var",
    "site_secrets=",
    "--var",
    "sets_vector_raw_table=false",
    "--var",
    "sets_batching=false",
];

/// tutor-plugin-upgrade for tutor-mfe 22.1.0, its facts given.
const PLUGIN_FACTS: &[&str] = &[
    "tutor-plugin-upgrade",
    "--var",
    "plugin=tutor-mfe",
    "--var",
    "version=22.1.0",
    "--var",
    "tutor_version=22.0.2",
    "--var",
    "tutor_root=/srv/tutor",
];

#[test]
fn every_shipped_plan_and_fixture_that_exports_is_a_valid_argo_workflow() {
    let dir = Dir::new();
    let mut files = Vec::new();
    let cases: &[(&str, &[&str])] = &[
        (
            "upgrade-3.0.0-3.0.3-local",
            &[
                "--var",
                "target=3.0.3",
                "--var",
                "installed=3.0.0",
                "--var",
                "tutor_version=21.0.9",
                "--skip",
                "review-defaults",
            ],
        ),
        (
            "upgrade-fresh-6.1.0-k8s",
            &[
                "--var",
                "target=6.1.0",
                "--var",
                "installed=",
                "--var",
                "tutor_version=22.0.2",
                "--var",
                "deploy=k8s",
                "--pvc",
                "tutor-root:/srv/tutor",
            ],
        ),
        (
            "upgrade-4.0.0-6.1.0-ralph-dev",
            &[
                "--var",
                "target=6.1.0",
                "--var",
                "installed=4.0.0",
                "--var",
                "tutor_version=22.0.2",
                "--var",
                "deploy=dev",
                "--var",
                "xapi_pipeline=ralph",
                "--var",
                "backup_dir=/var/backups",
                "--skip",
                "review-defaults",
                "--jobs",
                "2",
            ],
        ),
        (
            "upgrade-2.4.0-2.5.3",
            &[
                "--var",
                "target=2.5.3",
                "--var",
                "installed=2.4.0",
                "--var",
                "tutor_version=20.0.5",
                "--skip",
                "review-defaults",
                "--keep-going",
            ],
        ),
    ];
    for (name, args) in cases {
        let r = export(&[&["aspects-upgrade"], ASPECTS_FACTS, args].concat());
        if name.contains("k8s") {
            assert!(
                r.stdout.contains("claimName: tutor-root") && r.stdout.contains("mountPath: /srv/tutor"),
                "{}",
                r.stdout
            );
        }
        files.push(write(dir.path(), name, &r));
    }
    let restore = [
        "aspects-restore",
        "--var",
        "backup=/var/backups/aspects-1",
        "--var",
        "tutor_version=22.0.2",
        "--var",
        "tutor_root=/srv/tutor",
        "--var",
        "installed=5.1.0",
        "--var",
        "mfe_enabled=true",
        "--var",
        "backup_path=/var/backups/aspects-1",
        "--var",
        "saved=tutor==22.0.2 tutor-contrib-aspects==4.0.0",
        "--var",
        "saved_tutor=22.0.2",
        "--var",
        "saved_aspects=4.0.0",
        "--var",
        "saved_root=/srv/tutor",
        "--var",
        "backup_check=ok",
        "--var",
        "site_secrets=",
    ];
    files.push(write(dir.path(), "restore", &export(&restore)));
    let replay = export(&[
        "aspects-replay-tracking-logs",
        "--var",
        "source_provider=LOCAL",
        "--var",
        "source_config={\"key\": \"/logs\", \"secret\": \"s3cr3t-0f-the-logs\"}",
    ]);
    assert!(!replay.stdout.contains("s3cr3t-0f-the-logs"), "the secret is in the export:\n{}", replay.stdout);
    assert!(replay.stdout.contains("secretKeyRef:"), "{}", replay.stdout);
    files.push(write(dir.path(), "replay", &replay));
    files.push(write(
        dir.path(),
        "plugin-fresh",
        &export(&[PLUGIN_FACTS, &["--var", "installed=", "--var", "images=mfe"]].concat()),
    ));
    files.push(write(
        dir.path(),
        "plugin-upgrade",
        &export(&[PLUGIN_FACTS, &["--var", "installed=22.0.0", "--skip", "review-defaults"]].concat()),
    ));
    // Fixtures: every one that is a valid base plan exports with the values it needs.
    let fixtures: &[(&str, &[&str])] = &[
        ("tests/fixtures/export/small.yaml", &["--var", "token=t0ken-value"]),
        ("tests/fixtures/show/app.yaml", &["--var", "target=3.0.0", "--var", "installed=1.0.0"]),
        ("tests/fixtures/scope/plans/base.yaml", &["--var", "target=3.0.0"]),
        ("tests/fixtures/lint/duplicate-plan/one.yaml", &[]),
        ("tests/fixtures/lint/quoted-template.yaml", &[]),
        ("tests/fixtures/lint/redundant-dependency.yaml", &[]),
        ("tests/fixtures/lint/release-scope/base.yaml", &[]),
        ("tests/fixtures/lint/unused-variable.yaml", &[]),
    ];
    for (i, (path, args)) in fixtures.iter().enumerate() {
        let full = root().join(path).display().to_string();
        let r = export(&[&[full.as_str()][..], args].concat());
        files.push(write(dir.path(), &format!("fixture-{i}"), &r));
    }
    validate(&files);
}

#[test]
fn a_small_plan_exports_exactly_as_its_golden_file() {
    let fixture = root().join("tests/fixtures/export/small.yaml").display().to_string();
    let r = export(&[&fixture, "--var", "token=t0ken-value", "--jobs", "2", "--keep-going"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let golden = root().join("tests/golden/export-small.argo.yaml");
    if std::env::var_os("PLAN_UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &r.stdout).expect("write golden");
    }
    let want = std::fs::read_to_string(&golden).expect("golden file");
    assert_eq!(r.stdout, want, "the export changed; PLAN_UPDATE_GOLDEN=1 rewrites the golden file after review");
    assert!(!r.stdout.contains("t0ken-value"));
    // Read as a workflow, what the plan means is there.
    let wf: serde_json::Value = serde_saphyr::from_str(&r.stdout).expect("YAML");
    let tasks = &wf["spec"]["templates"][0]["dag"]["tasks"];
    let task = |n: &str| tasks.as_array().unwrap().iter().find(|t| t["name"] == n).cloned();
    assert!(task("only-on-k8s").is_none(), "decided at export: when is false");
    assert_eq!(task("ask").unwrap()["dependencies"], serde_json::json!(["check"]), "through the left-out step");
    assert_eq!(task("push").unwrap()["arguments"]["parameters"][0]["value"], "{{tasks.tag.outputs.result}}");
    assert_eq!(task("notify").unwrap()["continueOn"]["failed"], true);
    // A `when` on a capture is Argo's to decide, from the result as a variable.
    assert_eq!(task("announce").unwrap()["when"], "{{= trim(tasks['tag'].outputs.result) != '' }}");
    assert_eq!(wf["spec"]["templates"][0]["dag"]["failFast"], false);
    assert_eq!(wf["spec"]["parallelism"], 2);
    validate(&[golden]);
}

#[test]
fn what_argo_cannot_do_the_same_way_is_refused_by_name() {
    let dir = Dir::new();
    // The default review runs against this machine's tutor.
    let r = export(&[PLUGIN_FACTS, &["--var", "installed=22.0.0"]].concat());
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("step `review-defaults` cannot be exported to Argo faithfully"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "half a workflow was printed: {}", r.stdout);

    let cases = [
        (
            "when-reads-capture",
            "steps:\n  - id: a\n    run: date\n    capture: day\n  - id: b\n    needs: [a]\n    when: '{{#if (eq day \"x\")}}true{{else}}false{{/if}}'\n    run: echo b\n",
            "step `b` cannot be exported to Argo faithfully: its `when` reads a capture in a form Argo cannot decide the same way",
        ),
        (
            "secret-capture",
            "vars:\n  pw: {default: hunter2hunter2, secret: true}\nsteps:\n  - id: a\n    run: [hash, '{{pw}}']\n    capture: h\n  - id: b\n    needs: [a]\n    run: [echo, '{{h}}']\n",
            "step `a` cannot be exported to Argo faithfully: its capture is made from a secret",
        ),
        (
            "argo-tag",
            "steps:\n  - id: a\n    run: [echo, '\\{{workflow.name}}']\n",
            "step `a` cannot be exported to Argo faithfully: what it runs contains `{{`",
        ),
    ];
    for (name, steps, message) in cases {
        let file = dir.file(&format!("{name}.yaml"), &format!("apiVersion: plan/v1\nname: {name}\n{steps}"));
        let r = export(&[file.display().to_string().as_str()]);
        assert_eq!(r.code, 2, "{name}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains(message), "{name}: {}", r.stderr);
        assert!(r.stdout.is_empty(), "{name}: {}", r.stdout);
    }
    // A plan that does not validate exports nothing.
    let bad = root().join("tests/fixtures/lint/dependency-cycle.yaml").display().to_string();
    let r = export(&[&bad]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("error[dependency-cycle]") && r.stdout.is_empty(), "{}", r.stderr);
}

#[test]
fn an_exported_script_reads_a_secret_as_data_in_every_quoting_context() {
    // The same step run by `plan run` and as Argo would run the exported
    // script (the secret in the environment, `sh -eu`): the same output, and
    // the value, full of shell syntax, never runs.
    let dir = Dir::new();
    let value = "it's \"$HOME\"; echo pwned `id` $(id) \\ end";
    let file = dir.file(
        "p.yaml",
        "apiVersion: plan/v1\nname: q\nvars:\n  pw: {required: true, secret: true}\nsteps:\n  - id: show\n    shell: |\n      printf '%s|' 'single={{pw}}.' \"double={{pw}}.\" bare={{pw}}\n",
    );
    let file = file.display().to_string();
    let r = export(&[&file, "--var", &format!("pw={value}")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!r.stdout.contains("pwned"), "the secret is in the export: {}", r.stdout);
    let wf: serde_json::Value = serde_saphyr::from_str(&r.stdout).expect("YAML");
    let source = wf["spec"]["templates"][1]["script"]["source"].as_str().expect("a script").to_owned();
    let out = Command::new("sh").args(["-eu", "-c", &source]).env("PLAN_SECRET_PW", value).output().expect("sh");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let argo = String::from_utf8_lossy(&out.stdout).into_owned();
    let want = format!("single={value}.|double={value}.|bare={value}|");
    assert_eq!(argo, want, "the exported script:\n{source}");
    // And what `plan run` prints for the same step.
    let state = dir.path().join("state").display().to_string();
    let r = dir.plan(&["run", &file, "--var", &format!("pw={value}"), "--state-dir", &state]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let log = std::fs::read_dir(dir.path().join("state/runs")).expect("runs").flatten().next().expect("a run").path();
    let logged = std::fs::read_to_string(log.join("logs/show.log")).unwrap_or_default();
    assert!(!logged.contains("pwned"), "plan run's log shows the secret");
}
