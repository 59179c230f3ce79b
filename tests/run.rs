//! `plan run` against real processes and real signals.

mod common;
use std::time::{Duration, Instant};

use common::*;

fn run(d: &Dir, plan: &str, extra: &[&str]) -> Run {
    let p = d.file("plan.yaml", plan);
    let state = d.path().join("state");
    let args =
        [&["run", p.to_str().expect("utf-8"), "--state-dir", state.to_str().expect("utf-8")][..], extra].concat();
    d.plan(&args)
}

fn state(d: &Dir) -> String {
    d.path().join("state").display().to_string()
}

fn status_of(d: &Dir) -> String {
    d.plan(&["status", "--state-dir", &state(d)]).stdout
}

/// The status column of one step in `plan status`.
fn step_status(status: &str, step: &str) -> String {
    status
        .lines()
        .find(|l| l.split_whitespace().next() == Some(step))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("")
        .to_owned()
}

fn event_time(events: &[serde_json::Value], kind: &str, step: &str) -> String {
    events
        .iter()
        .find(|e| e["event"] == kind && e["step"] == step)
        .and_then(|e| e["time"].as_str())
        .unwrap_or_else(|| panic!("no {kind} for {step}"))
        .to_owned()
}

#[test]
fn independent_steps_run_in_parallel_and_dependents_wait() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: par\nsteps:\n  - id: a\n    run: sleep 1\n  - id: b\n    run: sleep 1\n  - id: c\n    needs: [a, b]\n    run: \"true\"\n";
    let start = Instant::now();
    let r = run(&d, plan, &["--jobs", "2"]);
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let ev = journal_events(&d.path().join("state"));
    // b started before a finished, and the other way round: they overlapped.
    assert!(event_time(&ev, "step-started", "b") < event_time(&ev, "step-finished", "a"));
    assert!(event_time(&ev, "step-started", "a") < event_time(&ev, "step-finished", "b"));
    // c started after both finished.
    let c = event_time(&ev, "step-started", "c");
    assert!(c >= event_time(&ev, "step-finished", "a") && c >= event_time(&ev, "step-finished", "b"));
    assert!(took < Duration::from_millis(1900), "two 1 s sleeps at --jobs 2 took {took:?}");
    // At --jobs 1 they cannot overlap.
    let d1 = Dir::new();
    assert_eq!(run(&d1, plan, &["--jobs", "1"]).code, 0);
    let ev = journal_events(&d1.path().join("state"));
    let (a_end, b_start) = (event_time(&ev, "step-finished", "a"), event_time(&ev, "step-started", "b"));
    assert!(b_start >= a_end, "--jobs 1 overlapped: b started {b_start}, a ended {a_end}");
}

#[test]
fn a_failure_blocks_dependents_and_stops_new_steps() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: fail\nsteps:\n  - id: bad\n    run: sh -c 'echo oops >&2; exit 3'\n  - id: after\n    needs: [bad]\n    run: touch after\n  - id: later\n    needs: [after]\n    run: touch later\n  - id: other\n    run: touch other\n";
    let r = run(&d, plan, &["--jobs", "1"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("[bad] oops"), "{}", r.stdout);
    assert!(r.stdout.contains("[bad] failed in"), "{}", r.stdout);
    assert!(r.stdout.contains("exited with status 3"), "{}", r.stdout);
    let st = status_of(&d);
    assert_eq!(step_status(&st, "bad"), "failed", "{st}");
    assert_eq!(step_status(&st, "after"), "blocked", "{st}");
    assert_eq!(step_status(&st, "later"), "blocked", "{st}");
    assert_eq!(step_status(&st, "other"), "pending", "{st}");
    assert!(st.lines().any(|l| l.starts_with("bad ") && l.contains(" 3 ")), "exit code shown: {st}");
    assert!(!d.path().join("after").exists() && !d.path().join("other").exists());
    // --keep-going starts what does not depend on the failure.
    let d = Dir::new();
    let r = run(&d, plan, &["--jobs", "1", "--keep-going"]);
    assert_eq!(r.code, 1);
    assert!(d.path().join("other").exists() && !d.path().join("after").exists());
}

#[test]
fn continue_on_error_counts_as_success_for_scheduling() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: coe\nsteps:\n  - id: flaky\n    run: \"false\"\n    continue_on_error: true\n  - id: next\n    needs: [flaky]\n    run: touch next\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(d.path().join("next").exists());
    assert_eq!(step_status(&status_of(&d), "flaky"), "failed-ignored");
}

#[test]
fn when_false_skips_and_dependents_still_run() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: when\nvars:\n  mode:\n    default: fast\nsteps:\n  - id: slow-only\n    when: '{{eq mode \"slow\"}}'\n    run: touch slow\n  - id: next\n    needs: [slow-only]\n    run: touch next\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!d.path().join("slow").exists() && d.path().join("next").exists());
    assert_eq!(step_status(&status_of(&d), "slow-only"), "skipped");
    let r = run(&d, plan, &["--var", "mode=slow"]);
    assert_eq!(r.code, 0);
    assert!(d.path().join("slow").exists());
}

#[test]
fn capture_feeds_descendants() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: cap\nsteps:\n  - id: version\n    shell: printf '  1.2.3  \\n'\n    capture: version\n  - id: use\n    needs: [version]\n    run: [sh, -c, 'printf %s \"$0\" > got', 'v{{version}}']\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(std::fs::read_to_string(d.path().join("got")).expect("got"), "v1.2.3");
}

#[test]
fn retries_run_the_step_again() {
    let d = Dir::new();
    // Fails on the first attempt, passes on the second.
    let plan = "apiVersion: plan/v1\nname: retry\nsteps:\n  - id: flaky\n    shell: 'if [ -e tried ]; then echo second; else touch tried; exit 1; fi'\n    retries: 2\n    retry_delay: 100ms\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(r.stdout.contains("attempt 1 failed"), "{}", r.stdout);
    let ev = journal_events(&d.path().join("state"));
    let starts = ev.iter().filter(|e| e["event"] == "step-started" && e["step"] == "flaky").count();
    assert_eq!(starts, 2);
    // Out of retries: failed.
    let d = Dir::new();
    let r = run(
        &d,
        "apiVersion: plan/v1\nname: r2\nsteps:\n  - id: never\n    run: \"false\"\n    retries: 1\n    retry_delay: 10ms\n",
        &[],
    );
    assert_eq!(r.code, 1);
    let ev = journal_events(&d.path().join("state"));
    assert_eq!(ev.iter().filter(|e| e["event"] == "step-started").count(), 2);
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: to\nsteps:\n  - id: hang\n    shell: 'sleep 300 & echo $! > grandchild; wait'\n    timeout: 1s\n";
    let r = run(&d, plan, &["--grace", "500ms"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("timed out after 1.0s"), "{}", r.stdout);
    let pid: i32 = std::fs::read_to_string(d.path().join("grandchild")).expect("pid").trim().parse().expect("pid");
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(pid), "grandchild {pid} survived the timeout");
}

#[test]
fn a_program_that_cannot_start_says_so() {
    let d = Dir::new();
    let r = run(&d, "apiVersion: plan/v1\nname: nf\nsteps:\n  - id: x\n    run: no-such-program-here --flag\n", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("cannot start: program `no-such-program-here` not found"), "{}", r.stdout);
}

#[test]
fn sigint_stops_the_run_kills_grandchildren_and_records_interrupted() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: int\nsteps:\n  - id: long\n    shell: 'sleep 300 & echo $! > grandchild; wait'\n  - id: after\n    needs: [long]\n    run: touch after\n",
    );
    let mut child =
        spawn_plan(d.path(), &["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--grace", "2s"]);
    wait_for_file(&d.path().join("grandchild"), 20);
    std::thread::sleep(Duration::from_millis(100));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGINT)
        .expect("kill");
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    let pid: i32 = std::fs::read_to_string(d.path().join("grandchild")).expect("pid").trim().parse().expect("pid");
    assert!(!pid_alive(pid), "grandchild {pid} survived Ctrl-C");
    assert!(!d.path().join("after").exists());
    let st = status_of(&d);
    assert!(st.starts_with("run ") && st.lines().next().unwrap_or("").ends_with(": interrupted"), "{st}");
    assert_eq!(step_status(&st, "long"), "interrupted", "{st}");
    assert_eq!(step_status(&st, "after"), "pending", "{st}");
}

#[test]
fn sigkill_mid_run_then_resume_skips_what_succeeded() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: crash\nsteps:\n  - id: one\n    shell: echo one >> ran\n  - id: two\n    needs: [one]\n    shell: 'echo two >> ran; if [ ! -e resumed ]; then echo $$ > stuck; sleep 300; fi'\n  - id: three\n    needs: [two]\n    shell: echo three >> ran\n",
    );
    let args = ["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d)];
    crash_plan_when(d.path(), &args, &["stuck"]);
    // The journal parses and tells the truth: one succeeded, two was cut off.
    let st = status_of(&d);
    assert_eq!(step_status(&st, "one"), "succeeded", "{st}");
    assert_eq!(step_status(&st, "two"), "interrupted", "{st}");
    assert!(st.lines().next().unwrap_or("").ends_with(": crashed"), "{st}");
    // SIGKILL gives plan no chance to stop step two: its group lives on until the resume stops it.
    let pgid: i32 = std::fs::read_to_string(d.path().join("stuck")).expect("pgid").trim().parse().expect("pgid");
    assert!(pid_alive(pgid), "step two's process should outlive a SIGKILLed plan");
    std::fs::write(d.path().join("resumed"), "").expect("write");
    let r = d.plan(&[&args[..], &["--resume", "--grace", "2s"]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("stopped the processes step `two` left running in run "), "{}", r.stderr);
    assert!(r.stderr.contains(&format!("(process group {pgid})")), "{}", r.stderr);
    assert!(!pid_alive(pgid), "the leftover of step two survived the resume");
    assert_eq!(std::fs::read_to_string(d.path().join("ran")).expect("ran"), "one\ntwo\ntwo\nthree\n");
    let st = status_of(&d);
    assert!(st.lines().next().unwrap_or("").ends_with(": succeeded"), "{st}");
}

/// The same with two steps running side by side (spawned off the runtime
/// thread, after a shared sync): both leftover groups are recorded, both are
/// stopped by the resume, and only the cut-off steps run again.
#[test]
fn sigkill_with_parallel_steps_then_resume_stops_both_leftovers() {
    let d = Dir::new();
    let stuck = |id: &str| {
        format!(
            "  - id: {id}\n    needs: [one]\n    shell: 'echo {id} >> ran; if [ ! -e resumed ]; then echo $$ > stuck-{id}; sleep 300; fi'\n"
        )
    };
    let text = format!(
        "apiVersion: plan/v1\nname: crash2\nsteps:\n  - id: one\n    shell: echo one >> ran\n{}{}  - id: last\n    needs: [left, right]\n    shell: echo last >> ran\n",
        stuck("left"),
        stuck("right")
    );
    let p = d.file("plan.yaml", &text);
    let args = ["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--jobs", "2"];
    crash_plan_when(d.path(), &args, &["stuck-left", "stuck-right"]);
    let st = status_of(&d);
    assert_eq!(step_status(&st, "one"), "succeeded", "{st}");
    assert_eq!(step_status(&st, "left"), "interrupted", "{st}");
    assert_eq!(step_status(&st, "right"), "interrupted", "{st}");
    let pgid = |id: &str| -> i32 {
        std::fs::read_to_string(d.path().join(format!("stuck-{id}"))).expect("pgid").trim().parse().expect("pgid")
    };
    let (left, right) = (pgid("left"), pgid("right"));
    assert!(pid_alive(left) && pid_alive(right), "both steps should outlive a SIGKILLed plan");
    std::fs::write(d.path().join("resumed"), "").expect("write");
    let r = d.plan(&[&args[..], &["--resume", "--grace", "2s"]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for (id, g) in [("left", left), ("right", right)] {
        assert!(r.stderr.contains(&format!("stopped the processes step `{id}` left running in run ")), "{}", r.stderr);
        assert!(r.stderr.contains(&format!("(process group {g})")), "{}", r.stderr);
        assert!(!pid_alive(g), "the leftover of step {id} survived the resume");
    }
    let mut ran: Vec<String> =
        std::fs::read_to_string(d.path().join("ran")).expect("ran").lines().map(str::to_owned).collect();
    ran.sort();
    assert_eq!(ran, ["last", "left", "left", "one", "right", "right"]);
}

#[test]
fn resume_refuses_a_changed_definition_without_force() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: chg\nvars:\n  v:\n    default: a\nsteps:\n  - id: one\n    run: sh -c 'echo {{v}} >> ran'\n  - id: two\n    needs: [one]\n    run: \"false\"\n";
    assert_eq!(run(&d, plan, &[]).code, 1);
    let r = run(&d, plan, &["--resume", "--var", "v=b"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("these steps succeeded but their definition changed since: one"), "{}", r.stderr);
    // Unchanged: `one` is not run again (and `two` fails again).
    assert_eq!(run(&d, plan, &["--resume"]).code, 1);
    assert_eq!(std::fs::read_to_string(d.path().join("ran")).expect("ran"), "a\n");
    // --force runs the changed step again.
    assert_eq!(run(&d, plan, &["--resume", "--force", "--var", "v=b"]).code, 1);
    assert_eq!(std::fs::read_to_string(d.path().join("ran")).expect("ran"), "a\nb\n");
}

#[test]
fn a_second_concurrent_run_is_refused() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: lock\nsteps:\n  - id: hold\n    shell: 'touch holding; sleep 300'\n",
    );
    let mut first =
        spawn_plan(d.path(), &["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--grace", "1s"]);
    wait_for_file(&d.path().join("holding"), 20);
    let r = d.plan(&["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("plan `lock` is already running in this state dir (run "), "{}", r.stderr);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(first.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("kill");
    assert_eq!(first.wait().expect("wait").code(), Some(143));
}

#[test]
fn secrets_never_reach_output_logs_or_journal() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: sec\nvars:\n  token:\n    secret: true\n    required: true\nsteps:\n  - id: leak\n    shell: 'echo token={{token}}; echo \"$T\" >&2'\n    env:\n      T: 'env-{{token}}'\n    capture: out\n  - id: derived\n    needs: [leak]\n    run: [echo, 'got {{out}}']\n  - id: failing\n    needs: [derived]\n    assert: 'false'\n    message: 'bad {{token}}'\n";
    let r = run(&d, plan, &["--var", "token=TopSecret123"]);
    assert_eq!(r.code, 1);
    // `leak` reads the secret and captures its stdout: the capture is secret, so its stdout is not shown.
    assert!(!r.stdout.contains("[leak] token=") && r.stdout.contains("[leak] env-***"), "{}", r.stdout);
    assert!(r.stdout.contains("[derived] got ***"), "{}", r.stdout);
    let mut everything = r.stdout.clone() + &r.stderr;
    for e in walk(&d.path().join("state")) {
        everything.push_str(&std::fs::read_to_string(e).unwrap_or_default());
    }
    everything.push_str(&d.plan(&["status", "--state-dir", &state(&d)]).stdout);
    assert!(!everything.contains("TopSecret123"), "secret leaked");
    let j = run(&d, plan, &["--var", "token=TopSecret123", "--output", "json"]);
    assert!(!j.stdout.contains("TopSecret123"));
    // Nor the most verbose diagnostics.
    let p = d.path().join("plan.yaml");
    let args = ["-vvv", "run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--var", "token=TopSecret123"];
    let v = plan_env(d.path(), &args, &[("RUST_LOG", "trace")]);
    assert!(v.stderr.contains("step started"), "tracing is on: {}", v.stderr);
    assert!(!v.stderr.contains("TopSecret123") && !v.stdout.contains("TopSecret123"), "secret in tracing output");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn remove_refuses_a_symlink_escape_and_deletes_inside() {
    let d = Dir::new();
    let root = d.path().join("root");
    std::fs::create_dir_all(root.join("assets/sub")).expect("mkdir");
    std::fs::write(root.join("assets/sub/f"), "x").expect("write");
    let outside = d.path().join("outside");
    std::fs::create_dir_all(&outside).expect("mkdir");
    std::fs::write(outside.join("precious"), "keep").expect("write");
    std::os::unix::fs::symlink(&outside, root.join("escape")).expect("symlink");
    let plan = |path: &str| {
        format!(
            "apiVersion: plan/v1\nname: rm\nsteps:\n  - id: rm\n    remove:\n      path: {path}\n      within: {}\n",
            root.display()
        )
    };
    let r = run(&d, &plan(&root.join("escape").display().to_string()), &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("is not inside"), "{}", r.stdout);
    assert!(outside.join("precious").exists());
    let r = run(&d, &plan(&root.join("escape/precious").display().to_string()), &[]);
    assert_eq!(r.code, 1);
    assert!(outside.join("precious").exists());
    let r = run(&d, &plan(&root.join("assets").display().to_string()), &[]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!root.join("assets").exists());
    // Missing is success.
    assert_eq!(run(&d, &plan(&root.join("assets").display().to_string()), &[]).code, 0);
    for bad in ["/", "relative/path", "''"] {
        let r = run(&d, &format!("apiVersion: plan/v1\nname: rm\nsteps:\n  - id: rm\n    remove: {bad}\n"), &[]);
        assert_eq!(r.code, 1, "{bad}: {}", r.stdout);
        assert!(r.stdout.contains("refusing"), "{bad}: {}", r.stdout);
    }
}

#[test]
fn confirm_needs_a_terminal_or_yes() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: ok\nsteps:\n  - id: sure\n    confirm: Backups exist?\n  - id: go\n    needs: [sure]\n    run: touch went\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("there is no terminal; re-run with --yes to confirm: Backups exist?"), "{}", r.stdout);
    assert!(!d.path().join("went").exists());
    let r = run(&d, plan, &["--yes"]);
    assert_eq!(r.code, 0);
    assert!(d.path().join("went").exists());
}

#[test]
fn values_cannot_inject_commands() {
    for value in [
        "$(touch pwned)",
        "`touch pwned`",
        "x; touch pwned",
        "x' ; touch pwned ; '",
        "x\" ; touch pwned ; \"",
        "a b\nc",
    ] {
        let d = Dir::new();
        let plan = "apiVersion: plan/v1\nname: inj\nvars:\n  x: {}\nsteps:\n  - id: argv\n    run: printf '[%s]' {{x}}\n  - id: sh\n    needs: [argv]\n    shell: printf '(%s)' {{x}} > shell-out\n";
        let r = run(&d, plan, &["--var", &format!("x={value}")]);
        assert_eq!(r.code, 0, "{value}: {}{}", r.stdout, r.stderr);
        assert!(!d.path().join("pwned").exists(), "{value} executed");
        assert!(r.stdout.contains(&format!("[argv] [{}", value.lines().next().unwrap_or(""))), "{value}: {}", r.stdout);
        assert_eq!(std::fs::read_to_string(d.path().join("shell-out")).expect("out"), format!("({value})"));
    }
}

#[test]
fn an_invalid_plan_runs_nothing() {
    let d = Dir::new();
    let r = run(
        &d,
        "apiVersion: plan/v1\nname: bad\nsteps:\n  - id: a\n    run: touch ran\n  - id: b\n    needs: [nope]\n    run: \"true\"\n",
        &[],
    );
    assert_eq!(r.code, 2);
    assert!(!d.path().join("ran").exists());
    assert!(!d.path().join("state").exists());
}

#[test]
fn dry_run_runs_nothing() {
    let d = Dir::new();
    let r = run(&d, "apiVersion: plan/v1\nname: dry\nsteps:\n  - id: a\n    run: touch ran\n", &["--dry-run"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("run: touch ran") && r.stdout.contains("dry run: nothing was run"), "{}", r.stdout);
    assert!(!d.path().join("ran").exists());
}

#[test]
fn json_output_is_one_event_per_line() {
    let d = Dir::new();
    let r = run(&d, "apiVersion: plan/v1\nname: js\nsteps:\n  - id: a\n    run: echo hi\n", &["--output", "json"]);
    assert_eq!(r.code, 0);
    let kinds: Vec<String> = r.stdout.lines().map(|l| json(l)["event"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["run-started", "step-started", "step-output", "step-finished", "run-finished"]);
    let out = json(r.stdout.lines().nth(2).expect("line"));
    assert_eq!(
        (out["step"].as_str(), out["line"].as_str(), out["stream"].as_str()),
        (Some("a"), Some("hi"), Some("stdout"))
    );
}

/// For people, a step's stdout and stderr share one pipe: the terminal and
/// the log have its lines in the order it wrote them. JSON still tells the
/// two streams apart.
#[test]
fn output_keeps_its_order_for_people_and_its_streams_in_json() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: streams\nsteps:\n  - id: a\n    shell: 'echo one; echo two >&2; echo three; echo four >&2'\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let shown: Vec<&str> =
        r.stdout.lines().filter(|l| l.starts_with("[a] ") && !l.contains("started")).take(4).collect();
    assert_eq!(shown, ["[a] one", "[a] two", "[a] three", "[a] four"], "{}", r.stdout);
    let runs = d.path().join("state/runs");
    let run_dir = std::fs::read_dir(&runs).expect("runs").flatten().next().expect("a run").path();
    assert_eq!(std::fs::read_to_string(run_dir.join("logs/a.log")).expect("log"), "one\ntwo\nthree\nfour\n");

    let r = run(&d, plan, &["--output", "json"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let mut by_stream: Vec<(String, String)> = r
        .stdout
        .lines()
        .map(json)
        .filter(|e| e["event"] == "step-output")
        .map(|e| (e["stream"].as_str().unwrap_or("").to_owned(), e["line"].as_str().unwrap_or("").to_owned()))
        .collect();
    by_stream.sort();
    let want = [("stderr", "four"), ("stderr", "two"), ("stdout", "one"), ("stdout", "three")];
    assert_eq!(by_stream, want.map(|(s, l)| (s.to_owned(), l.to_owned())));
}

#[test]
fn only_refuses_steps_whose_needs_have_not_succeeded() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: only\nsteps:\n  - id: a\n    run: touch a\n  - id: b\n    needs: [a]\n    run: touch b\n  - id: c\n    needs: [b]\n    run: \"false\"\n";
    let r = run(&d, plan, &["--only", "b"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("--only `b`: its need `a` has not succeeded in this run"), "{}", r.stderr);
    assert_eq!(run(&d, plan, &[]).code, 1);
    std::fs::remove_file(d.path().join("a")).expect("rm");
    std::fs::remove_file(d.path().join("b")).expect("rm");
    let r = run(&d, plan, &["--resume", "--only", "b"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(d.path().join("b").exists() && !d.path().join("a").exists());
    let r = run(&d, plan, &["--only", "nope"]);
    assert_eq!(r.code, 2);
}

#[test]
fn on_a_terminal_a_live_view_shows_progress_and_running_steps() {
    // `script` gives plan a pseudo-terminal, as an operator's shell would.
    let d = Dir::new();
    let p = d.file("plan.yaml", "apiVersion: plan/v1\nname: tty\nsteps:\n  - id: first\n    run: sleep 0.5\n  - id: second\n    needs: [first]\n    run: echo done\n");
    let cmd = format!("{} run {} --state-dir {}", bin(), p.display(), state(&d));
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(d.path())
        .output()
        .expect("script (util-linux) runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[0/2] running: first"), "{text}");
    assert!(text.contains("[second] done"), "{text}");
    assert!(text.contains("STEP    STATUS          DURATION"), "{text}");
    // Not on a terminal: no control codes at all.
    let r = run(&Dir::new(), "apiVersion: plan/v1\nname: plain\nsteps:\n  - id: a\n    run: echo hi\n", &[]);
    assert!(!r.stdout.contains('\u{1b}') && !r.stderr.contains('\u{1b}'), "{:?}", r.stdout);
}

#[test]
fn skip_counts_as_skipped_and_dependents_run() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: skip\nsteps:\n  - id: slow\n    run: touch slow\n  - id: next\n    needs: [slow]\n    run: touch next\n";
    let r = run(&d, plan, &["--skip", "slow"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    assert!(!d.path().join("slow").exists() && d.path().join("next").exists());
    assert_eq!(step_status(&status_of(&d), "slow"), "skipped");
    let r = run(&d, plan, &["--skip", "slwo"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("--skip `slwo`: no such step in this plan") && r.stderr.contains("did you mean `slow`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn runs_lists_every_run_with_its_state() {
    let d = Dir::new();
    assert_eq!(run(&d, "apiVersion: plan/v1\nname: first-plan\nsteps:\n  - id: a\n    run: \"true\"\n", &[]).code, 0);
    assert_eq!(run(&d, "apiVersion: plan/v1\nname: second-plan\nsteps:\n  - id: a\n    run: \"false\"\n", &[]).code, 1);
    let r = d.plan(&["runs", "--state-dir", &state(&d)]);
    assert_eq!(r.code, 0);
    let lines: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", r.stdout);
    assert!(lines[0].starts_with("RUN") && lines[0].contains("PLAN") && lines[0].contains("STATUS"));
    assert!(
        lines[1].contains("first-plan") && lines[1].contains("succeeded") && lines[1].contains("1/1 done"),
        "{}",
        r.stdout
    );
    assert!(
        lines[2].contains("second-plan") && lines[2].contains("failed") && lines[2].contains("0/1 done"),
        "{}",
        r.stdout
    );
    let r = d.plan(&["status", "--state-dir", &state(&d), "no-such-run"]);
    assert_eq!(r.code, 2);
}

#[test]
fn resuming_asks_for_secrets_again() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: sec-resume\nvars:\n  token:\n    secret: true\n    required: true\nsteps:\n  - id: use\n    run: sh -c 'test -e ok'\n    env:\n      T: '{{token}}'\n";
    assert_eq!(run(&d, plan, &["--var", "token=abc123"]).code, 1);
    let r = run(&d, plan, &["--resume"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("variable `token` is required"), "{}", r.stderr);
    assert!(
        r.stderr.contains("secrets are never written to the journal, so a resumed run needs them again"),
        "{}",
        r.stderr
    );
    std::fs::write(d.path().join("ok"), "").expect("write");
    assert_eq!(run(&d, plan, &["--resume", "--var", "token=abc123"]).code, 0);
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let d = Dir::new();
    // The step ignores SIGTERM: only SIGKILL stops it.
    let p = d.file("plan.yaml", "apiVersion: plan/v1\nname: stubborn\nsteps:\n  - id: stubborn\n    shell: \"trap '' TERM; echo $$ > pgid; sleep 300 & wait; sleep 300\"\n");
    let mut child =
        spawn_plan(d.path(), &["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--grace", "60s"]);
    wait_for_file(&d.path().join("pgid"), 20);
    std::thread::sleep(Duration::from_millis(200));
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("first");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().expect("try_wait").is_none(), "plan stopped before the grace period or a second Ctrl-C");
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("second");
    let start = Instant::now();
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130));
    // Far below the 60 s grace: the second signal did not wait for it.
    assert!(start.elapsed() < Duration::from_secs(30));
    let pgid: i32 = std::fs::read_to_string(d.path().join("pgid")).expect("pgid").trim().parse().expect("pgid");
    assert!(!pid_alive(pgid), "the step survived the second Ctrl-C");
    assert_eq!(step_status(&status_of(&d), "stubborn"), "interrupted");
}

#[test]
fn dry_run_of_a_resume_says_what_it_would_skip() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: dr\nsteps:\n  - id: done-already\n    run: \"true\"\n  - id: broken\n    needs: [done-already]\n    run: \"false\"\n";
    assert_eq!(run(&d, plan, &[]).code, 1);
    let r = run(&d, plan, &["--resume", "--dry-run"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("resume would skip (succeeded before, unchanged): done-already"), "{}", r.stdout);
}

#[test]
fn a_step_killed_by_a_signal_says_which() {
    let d = Dir::new();
    let r = run(&d, "apiVersion: plan/v1\nname: sig\nsteps:\n  - id: dies\n    shell: kill -KILL $$\n", &[]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("killed by SIGKILL"), "{}", r.stdout);
    assert!(status_of(&d).lines().any(|l| l.starts_with("dies") && l.contains("SIGKILL")), "{}", status_of(&d));
}

/// A site's passwords that a step prints (tutor prints its job scripts,
/// which carry them) are masked when a `secret: true` fact holds them: each
/// line of the fact's value is a secret; one too short to mask is named, not shown.
#[test]
fn a_secret_fact_masks_every_line_of_its_value_everywhere() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: site\nfacts:\n  site_secrets:\n    secret: true\n    shell: printf 'Alpha-Secret-1\\nBeta-Secret-2\\nabc\\n'\nsteps:\n  - id: job\n    shell: |\n      echo \"mysql -u root --password=Alpha-Secret-1 -e 'create user'\"\n      echo \"--client-secret Beta-Secret-2\" >&2\n";
    // Without the fact's masking, the step does print them (the test can fail).
    let plain = plan.replace("    secret: true\n", "");
    let r = run(&d, &plain, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("Alpha-Secret-1") && r.stdout.contains("Beta-Secret-2"), "{}", r.stdout);

    let d = Dir::new();
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[job] mysql -u root --password=*** -e 'create user'"), "{}", r.stdout);
    assert!(r.stdout.contains("[job] --client-secret ***"), "{}", r.stdout);
    assert!(
        r.stderr
            .contains("warning: secret `site_secrets` has 1 value(s) shorter than 6 characters, which are not masked"),
        "{}",
        r.stderr
    );
    let mut everything = r.stdout.clone() + &r.stderr;
    for e in walk(&d.path().join("state")) {
        everything.push_str(&std::fs::read_to_string(e).unwrap_or_default());
    }
    everything.push_str(&d.plan(&["status", "--state-dir", &state(&d)]).stdout);
    let p = d.path().join("plan.yaml");
    let show = d.plan(&["show", p.to_str().expect("utf-8")]);
    assert!(show.stdout.contains("  site_secrets = *** (probed: printf"), "{}", show.stdout);
    everything.push_str(&show.stdout);
    let args = ["-vvv", "run", p.to_str().expect("utf-8"), "--state-dir", &state(&d)];
    let v = plan_env(d.path(), &args, &[("RUST_LOG", "trace")]);
    assert!(v.stderr.contains("probed (secret)"), "{}", v.stderr);
    everything.push_str(&v.stdout);
    everything.push_str(&v.stderr);
    for secret in ["Alpha-Secret-1", "Beta-Secret-2"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

/// `plan` is SIGKILLed while a step runs; the step's process then exits
/// under a parent that never reaps it (a subreaper that does not wait, as a
/// container's PID 1 may be), so its group holds only a zombie. `--resume
/// --grace 5s` sees that the group runs nothing and starts at once, instead
/// of waiting the whole grace for a process that is already gone.
#[test]
fn a_leftover_that_is_a_zombie_is_not_waited_for() {
    let d = Dir::new();
    d.file("plan.yaml", "apiVersion: plan/v1\nname: zombie\nsteps:\n  - id: slow\n    run: sleep 0.8\n");
    let script = r#"
import ctypes, json, os, re, signal, subprocess, sys, time
ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: orphans come here, and are never reaped
plan, state = sys.argv[1], sys.argv[2]
p = subprocess.Popen([plan, "run", "./plan.yaml", "--state-dir", state], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.4)
os.kill(p.pid, signal.SIGKILL)
p.wait()
time.sleep(1.0)
journal = open([os.path.join(r, f) for r, _, fs in os.walk(state) for f in fs if f == "journal.jsonl"][0]).read()
pgid = int(re.search(r'"pgid":(\d+)', journal).group(1))
leader = open(f"/proc/{pgid}/stat").read().rsplit(")", 1)[1].split()[0]
t = time.time()
r = subprocess.run([plan, "run", "./plan.yaml", "--state-dir", state, "--resume", "--grace", "5s"], capture_output=True, text=True)
print(json.dumps({"leader_state": leader, "elapsed": time.time() - t, "code": r.returncode, "out": r.stdout + r.stderr}))
"#;
    d.file("subreaper.py", script);
    let out = std::process::Command::new("python3")
        .args(["subreaper.py", bin(), "state"])
        .current_dir(d.path())
        .env_remove("PLAN_PATH")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let r = json(stdout.trim());
    assert_eq!(r["leader_state"], "Z", "the leftover must be a zombie for this test to mean anything: {r}");
    assert_eq!(r["code"], 0, "{r}");
    let elapsed = r["elapsed"].as_f64().expect("elapsed");
    // The step itself takes 0.8 s; waiting for the zombie would add the whole 5 s grace.
    assert!(elapsed < 4.0, "the resume waited {elapsed:.1}s for a zombie: {r}");
}

/// SIGTERM stops a run like Ctrl-C, with the conventional exit code 128+15.
#[test]
fn sigterm_stops_the_run_with_exit_143() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: term\nsteps:\n  - id: long\n    shell: 'touch started; sleep 300'\n",
    );
    let mut child =
        spawn_plan(d.path(), &["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--grace", "2s"]);
    wait_for_file(&d.path().join("started"), 20);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGTERM)
        .expect("kill");
    assert_eq!(child.wait().expect("wait").code(), Some(143));
    assert_eq!(step_status(&status_of(&d), "long"), "interrupted");
}

/// SIGHUP (an SSH connection dropping) does not stop the run: it goes on to
/// the end, its output in the step logs.
#[test]
fn sighup_does_not_stop_the_run() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: hup\nsteps:\n  - id: long\n    shell: 'touch started; sleep 1; echo still here'\n  - id: after\n    needs: [long]\n    run: touch after\n",
    );
    let mut child = spawn_plan(d.path(), &["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d)]);
    wait_for_file(&d.path().join("started"), 20);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGHUP)
        .expect("kill");
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    assert!(d.path().join("after").exists());
    let st = status_of(&d);
    assert!(st.lines().next().unwrap_or("").ends_with(": succeeded"), "{st}");
    let log = st.lines().find(|l| l.starts_with("long ")).and_then(|l| l.split_whitespace().last()).expect("log");
    assert_eq!(std::fs::read_to_string(d.path().join(log)).expect("log").trim(), "still here");
}

/// `status` tells the truth: a run whose `plan` is gone is `crashed`, even
/// when its pid now belongs to another process; only logs that exist are listed.
#[test]
fn status_says_crashed_when_the_plan_process_is_gone_and_lists_only_real_logs() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: truth\nsteps:\n  - id: check\n    assert: \"true\"\n  - id: talk\n    needs: [check]\n    run: echo hello\n";
    assert_eq!(run(&d, plan, &[]).code, 0);
    let st = status_of(&d);
    let log_of = |step: &str| {
        st.lines()
            .find(|l| l.starts_with(&format!("{step} ")))
            .and_then(|l| l.split_whitespace().last())
            .map(str::to_owned)
    };
    assert_eq!(log_of("check").as_deref(), Some("-"), "{st}");
    assert!(log_of("talk").is_some_and(|l| l.ends_with("logs/talk.log") && std::path::Path::new(&l).is_file()), "{st}");

    // A journal whose plan pid is alive but is another process (a reused pid): crashed, not running.
    let other = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
    let runs = d.path().join("state/runs");
    let dir = std::fs::read_dir(&runs).expect("runs").flatten().next().expect("a run").path();
    let journal = std::fs::read_to_string(dir.join("journal.jsonl")).expect("journal");
    let first = journal.lines().next().expect("first line");
    let mut started: serde_json::Value = json(first);
    started["pid"] = other.id().into();
    started["pid_start"] = 1.into();
    let fake = runs.join("20000101T000000Z-dead");
    std::fs::create_dir_all(&fake).expect("mkdir");
    let mut text = serde_json::to_string(&started).expect("json") + "\n";
    text = text.replace(&started["run_id"].as_str().expect("id").to_owned(), "20000101T000000Z-dead");
    std::fs::write(fake.join("journal.jsonl"), text).expect("write");
    let r = d.plan(&["status", "20000101T000000Z-dead", "--state-dir", &state(&d)]);
    assert!(r.stdout.starts_with("run 20000101T000000Z-dead of truth: crashed\n"), "{}", r.stdout);
    let mut other = other;
    let _ = other.kill();
    let _ = other.wait();
}

/// A journal torn inside its first line (a crash while it was written) still
/// lists the run, as damaged, and `--resume` says what it can do.
#[test]
fn a_journal_torn_in_its_first_line_lists_the_run_as_damaged() {
    let d = Dir::new();
    let p = d.file("plan.yaml", "apiVersion: plan/v1\nname: torn\nsteps:\n  - id: a\n    run: \"true\"\n");
    let run_dir = d.path().join("state/runs/20261126T120000Z-beef");
    std::fs::create_dir_all(&run_dir).expect("mkdir");
    std::fs::write(run_dir.join("journal.jsonl"), "{\"event\":\"run-started\",\"run_id\":\"20261126T1200")
        .expect("write");
    let r = d.plan(&["runs", "--state-dir", &state(&d)]);
    assert!(
        r.stdout.lines().any(|l| l.starts_with("20261126T120000Z-beef") && l.contains(" damaged ")),
        "{}",
        r.stdout
    );
    let r = d.plan(&["status", "--state-dir", &state(&d)]);
    assert!(r.stdout.starts_with("run 20261126T120000Z-beef of ?: damaged\n"), "{}", r.stdout);
    let r =
        d.plan(&["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--resume", "20261126T120000Z-beef"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("run `20261126T120000Z-beef` cannot be resumed: its journal is damaged in its first record"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("start a new run (without --resume)"), "{}", r.stderr);
}

/// Leftovers that ignore SIGTERM are stopped together: one grace for all,
/// not one after another.
#[test]
fn resume_stops_all_leftover_groups_at_once() {
    let d = Dir::new();
    let stuck = |id: &str| {
        format!(
            "  - id: {id}\n    shell: 'if [ ! -e resumed ]; then trap \"\" TERM; echo $$ > stuck-{id}; sleep 300; fi'\n"
        )
    };
    let text = format!("apiVersion: plan/v1\nname: deaf\nsteps:\n{}{}{}", stuck("a"), stuck("b"), stuck("c"));
    let p = d.file("plan.yaml", &text);
    let args = ["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--jobs", "3"];
    crash_plan_when(d.path(), &args, &["stuck-a", "stuck-b", "stuck-c"]);
    std::fs::write(d.path().join("resumed"), "").expect("write");
    let start = std::time::Instant::now();
    let r = d.plan(&[&args[..], &["--resume", "--grace", "2s"]].concat());
    let took = start.elapsed();
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(r.stderr.matches("stopped the processes step").count(), 3, "{}", r.stderr);
    // Three deaf groups one after another would take 6 s of grace.
    assert!(took < Duration::from_millis(4500), "the resume took {took:?}");
}

/// `plan logs` shows a run's output, finished or live (`--follow` ends with the run).
#[test]
fn logs_show_a_runs_output_finished_or_live() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: talk\nsteps:\n  - id: first\n    shell: 'echo one; echo two'\n  - id: second\n    needs: [first]\n    shell: 'touch started; for i in 1 2 3; do echo tick $i; sleep 0.3; done'\n",
    );
    let path = p.to_str().expect("utf-8");
    let mut child = spawn_plan(d.path(), &["run", path, "--state-dir", &state(&d)]);
    wait_for_file(&d.path().join("started"), 20);
    // Live: it prints what comes and ends when the run does.
    let live = d.plan(&["logs", "--follow", "--state-dir", &state(&d)]);
    assert_eq!(child.wait().expect("wait").code(), Some(0));
    assert_eq!(live.code, 0, "{}", live.stderr);
    assert_eq!(live.stdout, "[first] one\n[first] two\n[second] tick 1\n[second] tick 2\n[second] tick 3\n");
    // Finished: every step, one step, a run by id.
    assert_eq!(d.plan(&["logs", "--state-dir", &state(&d)]).stdout, live.stdout);
    assert_eq!(d.plan(&["logs", "second", "--state-dir", &state(&d)]).stdout, "tick 1\ntick 2\ntick 3\n");
    let run_id = status_of(&d).split_whitespace().nth(1).expect("run id").to_owned();
    assert_eq!(d.plan(&["logs", &run_id, "first", "--state-dir", &state(&d)]).stdout, "one\ntwo\n");
    let r = d.plan(&["logs", &run_id, "thrid", "--state-dir", &state(&d)]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains(&format!("run {run_id} has no step `thrid`")), "{}", r.stderr);
}

/// Every step's processes carry the run's marker, so a resume after a crash
/// stops even a grandchild that left the step's group with `setsid`.
#[test]
fn resume_stops_a_leftover_that_left_its_group() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: escape\nsteps:\n  - id: a\n    shell: 'if [ ! -e resumed ]; then setsid sh -c \"echo \\$\\$ > escaped; exec sleep 300\" & sleep 300; fi'\n",
    );
    let args = ["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d)];
    crash_plan_when(d.path(), &args, &["escaped"]);
    let escaped: i32 = std::fs::read_to_string(d.path().join("escaped")).expect("pid").trim().parse().expect("pid");
    assert!(pid_alive(escaped));
    std::fs::write(d.path().join("resumed"), "").expect("write");
    let r = d.plan(&[&args[..], &["--resume", "--grace", "2s"]].concat());
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    std::thread::sleep(Duration::from_millis(100));
    assert!(!pid_alive(escaped), "the setsid grandchild survived the resume");
}

/// `plan` SIGKILLed at many instants just after it starts 12 parallel
/// steps, then `--resume`: no step's two attempts ever overlap in time. Each
/// attempt holds an exclusive lock on its step's file while it runs; an
/// attempt that finds the lock taken records the overlap.
#[test]
fn no_step_runs_twice_at_once_whatever_instant_plan_is_killed() {
    let mut steps = String::new();
    for i in 0..12 {
        steps.push_str(&format!(
            "  - id: s{i}\n    shell: 'flock -n s{i}.lock sleep 0.3 || echo overlap s{i} >> trace; echo ran s{i} >> trace'\n"
        ));
    }
    let text = format!("apiVersion: plan/v1\nname: race\nsteps:\n{steps}");
    for delay_ms in [3, 6, 10, 15, 20, 30, 40] {
        let d = Dir::new();
        let p = d.file("plan.yaml", &text);
        let args = ["run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--jobs", "12"];
        let mut child = spawn_plan(d.path(), &args);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().expect("SIGKILL plan");
        child.wait().expect("wait");
        let r = d.plan(&[&args[..], &["--resume", "--grace", "2s"]].concat());
        assert!(r.code == 0 || r.code == 2, "{delay_ms} ms: {}{}", r.stdout, r.stderr);
        std::thread::sleep(Duration::from_millis(400));
        let trace = std::fs::read_to_string(d.path().join("trace")).unwrap_or_default();
        assert!(!trace.contains("overlap"), "{delay_ms} ms: a step ran twice at once:\n{trace}");
    }
}

/// A required secret that is not given is asked for on the terminal, without
/// echo (a `--var` is visible to every user in `ps`).
#[test]
fn a_missing_secret_is_asked_for_on_the_terminal_without_echo() {
    let d = Dir::new();
    let p = d.file(
        "plan.yaml",
        "apiVersion: plan/v1\nname: ask\nvars:\n  token:\n    secret: true\n    required: true\nsteps:\n  - id: use\n    run: sh -c 'test \"$T\" = TopSecret123 && echo right token'\n    env:\n      T: '{{token}}'\n",
    );
    let cmd = format!("{} run {} --state-dir {}", bin(), p.display(), state(&d));
    let mut child = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(d.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("script (util-linux) runs");
    std::thread::sleep(Duration::from_millis(500));
    use std::io::Write;
    child.stdin.take().expect("stdin").write_all(b"TopSecret123\n").expect("type the secret");
    let out = child.wait_with_output().expect("wait");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("token (secret, not shown): "), "{text}");
    assert!(text.contains("[use] right token"), "{text}");
    assert!(!text.contains("TopSecret123"), "the secret was echoed: {text}");
}

/// Secrets are tainted: a fact whose probe reads a secret is secret itself;
/// a secret is masked in its shell-quoted form too.
#[test]
fn a_fact_made_from_a_secret_is_secret_and_quoted_forms_are_masked() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: taint\nvars:\n  token:\n    secret: true\n    required: true\nfacts:\n  probe:\n    shell: echo p-{{token}}\nsteps:\n  - id: use\n    run: [echo, 'x {{token}}', '{{probe}}']\n";
    let p = d.file("plan.yaml", plan);
    let secret = "it's-hunter22";
    let args =
        ["-vvv", "run", p.to_str().expect("utf-8"), "--state-dir", &state(&d), "--var", &format!("token={secret}")];
    let r = plan_env(d.path(), &args, &[("RUST_LOG", "trace")]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let show = d.plan(&["show", p.to_str().expect("utf-8"), "--var", &format!("token={secret}")]);
    assert!(show.stdout.contains("  probe = *** ("), "{}", show.stdout);
    assert!(show.stdout.contains("run: echo 'x ***' ***"), "{}", show.stdout);
    let mut everything = r.stdout + &r.stderr + &show.stdout + &show.stderr;
    for f in walk(&d.path().join("state")) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(f).expect("read")));
    }
    for leak in ["hunter22", "p-it"] {
        assert!(!everything.contains(leak), "`{leak}` leaked:\n{everything}");
    }
}

/// Unmounts the test's tmpfs however the test ends.
struct Mounted(std::path::PathBuf);
impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

/// A full disk under the state dir: the journal cannot grow, so the run
/// stops (no new step starts), says so once on stderr, exits non-zero, and
/// every step that ran has its record; `status` says why.
#[test]
fn a_journal_that_cannot_be_written_stops_the_run() {
    let d = Dir::new();
    let disk = d.path().join("disk");
    std::fs::create_dir_all(&disk).expect("mkdir");
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=3m", "tmpfs"])
        .arg(&disk)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("skipped: cannot mount a tmpfs here (needs root); the full-disk test did not run");
        return;
    }
    let _guard = Mounted(disk.clone());
    let ran = d.path().join("ran");
    let mut text = format!(
        "apiVersion: plan/v1\nname: full\nsteps:\n  - id: fill\n    shell: 'cat /dev/zero > {}/fill 2>/dev/null || true'\n",
        disk.display()
    );
    for i in 0..3000 {
        text.push_str(&format!("  - id: s{i}\n    needs: [fill]\n    shell: 'echo s{i} >> {}'\n", ran.display()));
    }
    let p = d.file("plan.yaml", &text);
    let state = disk.join("state");
    let args = ["run", p.to_str().expect("utf-8"), "--state-dir", state.to_str().expect("utf-8"), "--jobs", "4"];
    let r = d.plan(&args);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.stderr.matches("cannot write the journal").count(), 1, "{}", r.stderr);
    assert!(!r.stdout.contains("cannot write the journal"), "errors go to stderr");
    let started: std::collections::HashSet<String> = journal_events(&state)
        .iter()
        .filter(|e| e["event"] == "step-started")
        .filter_map(|e| e["step"].as_str().map(str::to_owned))
        .collect();
    let ran: Vec<String> = std::fs::read_to_string(&ran).unwrap_or_default().lines().map(str::to_owned).collect();
    assert!(!ran.is_empty() && ran.len() < 3000, "{} steps ran", ran.len());
    for step in &ran {
        assert!(started.contains(step), "{step} ran with no journal record");
    }
    let st = d.plan(&["status", "--state-dir", state.to_str().expect("utf-8")]);
    assert!(st.stdout.lines().next().unwrap_or("").ends_with(": failed"), "{}", st.stdout);
    assert!(st.stdout.contains("stopped because: cannot write the journal: No space left on device"), "{}", st.stdout);
}

/// A capture made from a secret is secret: the step's stdout is kept from
/// the terminal and the log, its value is masked wherever a descendant
/// prints it, and the journal holds it masked (a resume runs the step again).
#[test]
fn a_capture_made_from_a_secret_is_secret() {
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: capt\nvars:\n  token:\n    secret: true\n    required: true\nsteps:\n  - id: derive\n    shell: 'printf %s {{token}} | rev'\n    capture: reversed\n  - id: print\n    needs: [derive]\n    run: [echo, 'got {{reversed}}']\n  - id: fail\n    needs: [print]\n    run: 'false'\n";
    let r = run(&d, plan, &["--var", "token=Secret-Token-42"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("[print] got ***"), "{}", r.stdout);
    let mut everything = r.stdout.clone() + &r.stderr;
    for f in walk(&d.path().join("state")) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(f).expect("read")));
    }
    assert!(!everything.contains("24-nekoT-terceS"), "the derived secret leaked:\n{everything}");
    // Resumed, the capturing step runs again (its value was never stored), so `print` gets the real value.
    let p = d.path().join("plan.yaml");
    let again = d.plan(&[
        "run",
        p.to_str().expect("utf-8"),
        "--state-dir",
        &state(&d),
        "--resume",
        "--var",
        "token=Secret-Token-42",
    ]);
    assert!(again.stdout.contains("[derive] started"), "{}", again.stdout);
    assert!(!again.stdout.contains("24-nekoT-terceS"), "{}", again.stdout);
}

#[test]
fn a_var_left_unset_stays_unset_on_resume() {
    // An optional var with choices and no default, not given: the journal
    // holds it empty, and the resume must not read that as a bad choice.
    let d = Dir::new();
    let plan = "apiVersion: plan/v1\nname: p\nvars:\n  pick: {choices: [a, b]}\nsteps:\n  - id: one\n    run: \"true\"\n  - id: two\n    needs: [one]\n    shell: test -e flag\n";
    let r = run(&d, plan, &[]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    d.file("flag", "");
    let r = run(&d, plan, &["--resume"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Given, a choice is still checked.
    let r = run(&d, plan, &["--var", "pick=c"]);
    assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("is not one of its choices"), "{}", r.stderr);
}
