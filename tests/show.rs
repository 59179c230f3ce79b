//! `plan show`, `graph`, `list`, `schema`, the plan path and variable binding.

mod common;
use common::*;

fn fixtures() -> String {
    root().join("tests/fixtures/show").display().to_string()
}

/// A folder holding `installed.txt`, which the fixture's `installed` fact reads.
fn installed(version: &str) -> Dir {
    let d = Dir::new();
    d.file("installed.txt", &format!("{version}\n"));
    d
}

#[test]
fn show_prints_the_rendered_order_with_secrets_masked() {
    let d = installed("2.4.0");
    let r =
        d.plan(&["show", "--plans-dir", &fixtures(), "app-upgrade", "--var", "target=2.5.0", "--var", "deploy=k8s"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let source = format!("{}/app.yaml", fixtures());
    let expected = format!(
        "\
plan app-upgrade ({source})
  Upgrade the app.

release plans:
  skipped  app-2-0-0 2.0.0: 2.0.0 is not in (2.4.0, 2.5.0]
  included app-2-5-0 2.5.0: 2.5.0 is in (2.4.0, 2.5.0]
  skipped  app-3-0-0 3.0.0: 3.0.0 is not in (2.4.0, 2.5.0]

variables:
  target = 2.5.0 (--var)
  deploy = k8s (--var)
  password = *** (default)

facts:
  installed = 2.4.0 (probed: cat installed.txt)
  os = Linux (probed: echo \"kernel $(uname -s)\")

steps, in order:
  1. install [run]
       run: pip install app==2.5.0 --password ***
  2. check [shell]
       needs: install
       shell: printf '%s\\n' 2.5.0 Linux
       captures `checked`
  3. report [run]
       needs: check
       run: echo '<stdout of check>' k8s
       env TOKEN=***
  4. migrate-2-5-0 [run] (from app-2-5-0)
       needs: install
       run: app migrate --to 2.5.0
"
    );
    assert_eq!(r.stdout, expected);
    assert!(!r.stdout.contains("s3cr3t-value"));
}

fn included(installed_version: &str, target: &str) -> Vec<String> {
    let d = Dir::new();
    let r = d.plan(&[
        "show",
        "--plans-dir",
        &fixtures(),
        "app-upgrade",
        "--var",
        &format!("target={target}"),
        "--var",
        &format!("installed={installed_version}"),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("installed = ") && r.stdout.contains("(overridden by --var, not probed)"),
        "{}",
        r.stdout
    );
    included_plans(&r.stdout)
}

#[test]
fn release_plans_are_picked_by_the_semver_window() {
    assert_eq!(included("2.4.0", "2.5.0"), vec!["app-2-5-0"]);
    assert_eq!(included("2.5.1", "2.5.3"), Vec::<String>::new());
    assert_eq!(included("1.3.0", "3.0.3"), vec!["app-2-0-0", "app-2-5-0", "app-3-0-0"]);
    // Nothing installed: no lower bound.
    assert_eq!(included("", "2.0.0"), vec!["app-2-0-0"]);
}

#[test]
fn variable_precedence_is_default_file_env_cli() {
    let d = installed("1.0.0");
    d.file("a.yaml", "target: 1.0.1\ndeploy: k8s\n");
    d.file("b.yaml", "target: 1.0.2\n");
    let base = ["show", "--plans-dir", &fixtures(), "app-upgrade"];
    let target_line =
        |r: &Run| r.stdout.lines().find(|l| l.trim_start().starts_with("target = ")).unwrap_or("").trim().to_owned();
    let r = d.plan(&[&base[..], &["--vars-file", "a.yaml", "--vars-file", "b.yaml"]].concat());
    assert_eq!(target_line(&r), "target = 1.0.2 (--vars-file b.yaml)", "{}", r.stderr);
    assert!(r.stdout.contains("deploy = k8s (--vars-file a.yaml)"));
    let r = plan_env(d.path(), &[&base[..], &["--vars-file", "b.yaml"]].concat(), &[("PLAN_VAR_target", "1.0.3")]);
    assert_eq!(target_line(&r), "target = 1.0.3 (environment PLAN_VAR_target)");
    let r = plan_env(
        d.path(),
        &[&base[..], &["--vars-file", "b.yaml", "--var", "target=1.0.4"]].concat(),
        &[("PLAN_VAR_target", "1.0.3")],
    );
    assert_eq!(target_line(&r), "target = 1.0.4 (--var)");
}

#[test]
fn bad_variables_stop_before_anything_runs() {
    let d = Dir::new(); // no installed.txt: the fact would fail if it were probed
    let cases: &[(&[&str], &str, &str)] = &[
        (&[], "error: variable `target` is required", "help: pass --var target=VALUE"),
        (
            &["--var", "target=2.5"],
            "error: variable `target` = `2.5` (from --var) does not match its pattern `^\\d+\\.\\d+\\.\\d+$`",
            "",
        ),
        (
            &["--var", "target=2.5.0", "--var", "deploy=lokal"],
            "error: variable `deploy` = `lokal` (from --var) is not one of its choices: local, k8s",
            "help: did you mean `local`?",
        ),
        (&["--var", "traget=2.5.0"], "error: unknown variable `traget` given by --var", "help: did you mean `target`?"),
        (&["--var", "target"], "error: invalid --var `target`: expected NAME=VALUE", ""),
        (
            &["--var", "target=2.5.0"],
            "error: fact `installed` could not be probed",
            "help: give the value instead: --var installed=VALUE",
        ),
    ];
    for (args, err, help) in cases {
        let r = d.plan(&[&["show", "--plans-dir", &fixtures(), "app-upgrade"][..], args].concat());
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(err), "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(help), "{args:?}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn an_invalid_plan_is_refused_with_its_diagnostics() {
    let d = Dir::new();
    let p = d.file("bad.yaml", "apiVersion: plan/v1\nname: bad\nsteps:\n  - id: a\n    run: echo {{nope}}\n");
    let r = d.plan(&["show", p.to_str().expect("utf-8")]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("undefined variable `nope`"), "{}", r.stderr);
    assert!(r.stderr.contains("bad.yaml:5:15"), "{}", r.stderr);
    assert!(r.stderr.contains("error: plan is invalid: 1 error(s); nothing was run"), "{}", r.stderr);
    let r = d.plan(&["show", "no-such-plan"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("error: no plan named `no-such-plan` on the plan path"), "{}", r.stderr);
}

#[test]
fn graph_in_dot_and_mermaid() {
    let d = Dir::new();
    let p = d.file("g.yaml", "apiVersion: plan/v1\nname: g\nsteps:\n  - id: a\n    run: \"true\"\n  - id: b\n    needs: [a]\n    run: \"true\"\n  - id: c\n    needs: [a, b]\n    run: \"true\"\n");
    let p = p.to_str().expect("utf-8");
    let r = d.plan(&["graph", p]);
    assert_eq!(
        r.stdout,
        "digraph \"g\" {\n  rankdir=LR;\n  \"a\" [label=\"a\", shape=box];\n  \"b\" [label=\"b\", shape=box];\n  \"c\" [label=\"c\", shape=box];\n  \"a\" -> \"b\";\n  \"a\" -> \"c\";\n  \"b\" -> \"c\";\n}\n"
    );
    let r = d.plan(&["graph", "--format", "mermaid", p]);
    assert_eq!(
        r.stdout,
        "flowchart TD\n  s0[\"a\"]\n  s1[\"b\"]\n  s2[\"c\"]\n  s0 --> s1\n  s0 --> s2\n  s1 --> s2\n"
    );
}

/// With values, `graph` draws the window that would run: only the release
/// plans in it, asserts and confirms in shapes of their own, skipped steps dashed.
#[test]
fn graph_with_values_draws_the_window_and_each_kind_of_step() {
    let dir = root().join("tests/fixtures/show");
    let d = Dir::new();
    d.file("installed.txt", "2.4.0\n");
    let plans = dir.to_str().expect("utf-8");
    let all = d.plan(&["graph", "app-upgrade", "--plans-dir", plans]);
    assert!(all.stdout.contains("migrate-2-0-0") && all.stdout.contains("migrate-3-0-0"), "{}", all.stdout);
    let window =
        d.plan(&["graph", "app-upgrade", "--plans-dir", plans, "--var", "target=2.5.0", "--var", "deploy=k8s"]);
    assert_eq!(window.code, 0, "{}", window.stderr);
    assert!(
        window.stdout.contains("\"migrate-2-5-0\" [label=\"migrate-2-5-0 (2.5.0)\", shape=box];"),
        "{}",
        window.stdout
    );
    assert!(!window.stdout.contains("migrate-2-0-0") && !window.stdout.contains("migrate-3-0-0"), "{}", window.stdout);

    let p = d.file(
        "kinds.yaml",
        "apiVersion: plan/v1\nname: kinds\nvars:\n  mode: {default: fast}\nsteps:\n  - id: check\n    assert: \"true\"\n  - id: ask\n    needs: [check]\n    confirm: go?\n  - id: slow\n    needs: [ask]\n    when: \"{{eq mode 'slow'}}\"\n    run: \"true\"\n",
    );
    let p = p.to_str().expect("utf-8");
    let r = d.plan(&["graph", "--format", "mermaid", p, "--var", "mode=fast"]);
    assert_eq!(
        r.stdout,
        "flowchart TD\n  s0{\"check\"}\n  s1[/\"ask\"/]\n  s2[\"slow\"]\n  s0 --> s1\n  s1 --> s2\n  classDef skipped stroke-dasharray: 5 5, color: gray\n  class s2 skipped\n"
    );
    let r = d.plan(&["graph", "--format", "json", p, "--var", "mode=fast"]);
    assert_eq!(
        json(&r.stdout),
        serde_json::json!({"plan": "kinds", "steps": [
            {"id": "check", "kind": "assert", "from": null, "needs": []},
            {"id": "ask", "kind": "confirm", "from": null, "needs": ["check"]},
            {"id": "slow", "kind": "skipped", "from": null, "needs": ["ask"]}
        ]})
    );
    let r = d.plan(&["graph", p, "--var", "mode=fast"]);
    assert!(r.stdout.contains("\"check\" [label=\"check\", shape=diamond];"), "{}", r.stdout);
    assert!(r.stdout.contains("\"ask\" [label=\"ask\", shape=parallelogram];"), "{}", r.stdout);
    assert!(
        r.stdout.contains("\"slow\" [label=\"slow\", shape=box, style=dashed, color=gray, fontcolor=gray];"),
        "{}",
        r.stdout
    );
}

#[test]
fn plan_path_order_dirs_then_env_then_shipped() {
    let d = Dir::new();
    let mine =
        "apiVersion: plan/v1\nname: aspects-upgrade\ndescription: my own\nsteps:\n  - id: a\n    run: \"true\"\n";
    d.file("override/a.yaml", mine);
    d.file("env/a.yaml", &mine.replace("my own", "from PLAN_PATH"));
    let list = |args: &[&str], env: &[(&str, &str)]| plan_env(d.path(), &[&["list"][..], args].concat(), env).stdout;
    assert!(list(&[], &[]).contains("embedded:plans/aspects/upgrade.yaml"));
    let with_env = list(&[], &[("PLAN_PATH", "env")]);
    assert!(
        with_env.contains("from PLAN_PATH") && !with_env.contains("embedded:plans/aspects/upgrade.yaml"),
        "{with_env}"
    );
    let both = list(&["--plans-dir", "override"], &[("PLAN_PATH", "env")]);
    assert!(both.contains("my own") && !both.contains("from PLAN_PATH"), "{both}");
}

#[test]
fn schema_is_checked_in_and_printed() {
    let r = plan(&["schema"]);
    assert_eq!(r.code, 0);
    let checked_in = std::fs::read_to_string(root().join("schemas/plan-v1.schema.json")).expect("schema file");
    assert_eq!(
        r.stdout, checked_in,
        "schemas/plan-v1.schema.json is stale: run `cargo run -- schema > schemas/plan-v1.schema.json`"
    );
    let schema = json(&r.stdout);
    assert_eq!(schema["additionalProperties"], false);
    assert!(schema["required"].as_array().expect("required").iter().any(|v| v == "apiVersion"));
}

#[test]
fn every_shipped_plan_names_the_schema_for_editors() {
    for f in plan_files(&root().join("plans")) {
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(text.starts_with("# yaml-language-server: $schema="), "{}", f.display());
        let rel = text.lines().next().and_then(|l| l.split("$schema=").nth(1)).expect("schema path");
        assert!(f.parent().expect("parent").join(rel).is_file(), "{}: {rel} does not exist", f.display());
    }
}

fn plan_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(plan_files(&p));
        } else if p.extension().is_some_and(|e| e == "yaml") {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_long_chain_compiles_without_overflowing_the_stack() {
    let d = Dir::new();
    let mut s = String::from("apiVersion: plan/v1\nname: chain\nsteps:\n  - id: s0\n    run: \"true\"\n");
    for i in 1..20_000 {
        s.push_str(&format!("  - id: s{i}\n    needs: [s{}]\n    run: \"true\"\n", i - 1));
    }
    // close the circle: the cycle report must not recurse either
    s = s.replacen("  - id: s0\n", "  - id: s0\n    needs: [s19999]\n", 1);
    d.file("chain.yaml", &s);
    let r = d.plan(&["lint", "--format", "json", "chain.yaml"]);
    let report = json(&r.stdout);
    assert_eq!(report["diagnostics"][0]["code"], "dependency-cycle");
    assert!(
        report["diagnostics"][0]["message"]
            .as_str()
            .expect("message")
            .starts_with("dependency cycle: s0 -> s19999 -> s19998")
    );
}

#[test]
fn facts_time_out_and_fall_back_to_their_default() {
    let d = Dir::new();
    let p = d.file(
        "facts.yaml",
        "apiVersion: plan/v1\nname: facts\nfacts:\n  slow:\n    shell: 'sleep 30 & wait'\n    timeout: 300ms\n  missing:\n    run: no-such-program-anywhere\n    default: none\nsteps:\n  - id: a\n    run: echo {{slow}} {{missing}}\n",
    );
    let start = std::time::Instant::now();
    let r = d.plan(&["show", p.to_str().expect("utf-8")]);
    assert!(start.elapsed() < std::time::Duration::from_secs(20), "the probe was not killed");
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("fact `slow` could not be probed") && r.stderr.contains("timed out"), "{}", r.stderr);
    let r = d.plan(&["show", p.to_str().expect("utf-8"), "--var", "slow=given"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("slow = given (overridden by --var, not probed)"), "{}", r.stdout);
    assert!(r.stdout.contains("missing = none (fact default (probe failed))"), "{}", r.stdout);
    assert!(r.stdout.contains("run: echo given none"), "{}", r.stdout);
}

#[test]
fn a_step_that_reads_a_capture_in_when_is_shown_as_decided_at_run_time() {
    let d = Dir::new();
    let p = d.file("cw.yaml", "apiVersion: plan/v1\nname: cw\nsteps:\n  - id: probe\n    run: echo true\n    capture: ok\n  - id: maybe\n    needs: [probe]\n    when: \"{{ok}}\"\n    run: echo yes\n");
    let r = d.plan(&["show", p.to_str().expect("utf-8")]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("  2. maybe [rendered at run time: it reads a capture]"), "{}", r.stdout);
}
