//! Every command that prints a result speaks JSON with `--format json`, and
//! in JSON mode an error is a JSON object on stderr.

mod common;
use common::*;

const PLAN: &str = "apiVersion: plan/v1\nname: j\nvars:\n  pw: {secret: true, default: hunter2-secret}\n  answer: {default: \"no\"}\nsteps:\n  - id: first\n    run: echo {{pw}}\n  - id: check\n    needs: [first]\n    assert: \"{{eq answer 'yes'}}\"\n    message: answer is {{answer}}\n";

#[test]
fn list_show_and_dry_run_as_json() {
    let d = Dir::new();
    d.file("p.yaml", PLAN);
    let list = json(&plan(&["list", "--format", "json"]).stdout);
    let upgrade =
        list.as_array().expect("array").iter().find(|p| p["name"] == "aspects-upgrade").expect("shipped plan");
    assert_eq!(upgrade["source"], "embedded:plans/aspects/upgrade.yaml");
    assert!(upgrade["release"].is_null() && upgrade["extends"].is_null());

    let r = d.plan(&["show", "./p.yaml", "--format", "json"]);
    assert_eq!(r.code, 1, "an assert would stop the run: {}", r.stderr);
    let s = json(&r.stdout);
    assert_eq!(s["plan"], "j");
    assert_eq!(
        s["variables"][0],
        serde_json::json!({"name": "pw", "value": "***", "origin": "default", "secret": true})
    );
    assert_eq!(s["steps"][0]["id"], "first");
    assert_eq!(s["steps"][0]["kind"], "run");
    assert_eq!(s["steps"][0]["action"], "echo ***");
    assert_eq!(s["steps"][1]["needs"], serde_json::json!(["first"]));
    assert_eq!(s["would_stop"], serde_json::json!({"step": "check", "message": "answer is no"}));
    assert!(!r.stdout.contains("hunter2"));

    for flag in ["--format", "--output"] {
        let r = d.plan(&["run", "./p.yaml", "--dry-run", flag, "json", "--var", "answer=yes", "--state-dir", "s"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let dry = json(&r.stdout);
        assert!(dry["would_stop"].is_null(), "{dry}");
        assert_eq!(dry["dry_run"]["skip"], serde_json::json!([]));
    }
}

#[test]
fn runs_and_status_as_json() {
    let d = Dir::new();
    d.file("p.yaml", PLAN);
    assert_eq!(d.plan(&["run", "./p.yaml", "--var", "answer=yes", "--state-dir", "s"]).code, 0);
    let runs = json(&d.plan(&["runs", "--format", "json", "--state-dir", "s"]).stdout);
    assert_eq!(runs[0]["plan"], "j");
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!((runs[0]["done"].as_u64(), runs[0]["steps"].as_u64()), (Some(2), Some(2)));
    let st = json(&d.plan(&["status", "--format", "json", "--state-dir", "s"]).stdout);
    assert_eq!(st["run_id"], runs[0]["run_id"]);
    assert_eq!(st["steps"][0]["id"], "first");
    assert_eq!(st["steps"][0]["exit_code"], 0);
    assert!(st["steps"][0]["log"].as_str().is_some_and(|l| l.ends_with("logs/first.log")), "{st}");
    assert!(st["steps"][1]["log"].is_null(), "an assert has no log: {st}");
}

#[test]
fn errors_in_json_mode_are_json_on_stderr() {
    let d = Dir::new();
    let r = d.plan(&["show", "nope", "--format", "json"]);
    assert_eq!(r.code, 2);
    assert_eq!(json(&r.stderr), serde_json::json!({"error": "no plan named `nope` on the plan path", "exit_code": 2}));
    d.file("bad.yaml", "apiVersion: plan/v1\nname: bad\nsteps:\n  - id: a\n    needs: [nope]\n    run: x\n");
    let r = d.plan(&["run", "./bad.yaml", "--format", "json", "--state-dir", "s"]);
    assert_eq!(r.code, 2);
    let e = json(&r.stderr);
    assert_eq!(e["diagnostics"][0]["code"], "unknown-dependency");
    assert_eq!(e["exit_code"], 2);
    let r = d.plan(&["status", "--format", "json", "--state-dir", "empty"]);
    assert_eq!(json(&r.stderr)["help"], "`plan runs` lists the runs; --state-dir chooses the folder");
}
