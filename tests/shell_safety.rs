//! A value can never change a `shell:` script's command: raw `{{{x}}}` is an
//! error unless a step opts out, `{{x}}` is quoted for the context it stands
//! in (inside "..." and '...' too), and `$( )` opens a new quoting context.

mod common;
use common::*;

const HOSTILE: &str = "x\"; echo PWNED; echo \"";

fn plan_with(shell: &str, extra: &str) -> Dir {
    let d = Dir::new();
    d.file(
        "p.yaml",
        &format!("apiVersion: plan/v1\nname: p\nvars:\n  msg: {{default: hi}}\nsteps:\n  - id: say\n{extra}    shell: '{shell}'\n"),
    );
    d
}

#[test]
fn raw_templates_in_shell_are_an_error_unless_the_step_opts_out() {
    let d = plan_with("echo \"raw: {{{msg}}}\"", "");
    let r = d.plan(&["lint", "--format", "json", "p.yaml"]);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let diag = &json(&r.stdout)["diagnostics"][0];
    assert_eq!(diag["code"], "raw-template-in-shell");
    assert_eq!(
        diag["help"],
        "write `{{x}}`: it is already shell-quoted, inside quotes or out; if this step really needs raw text, set `allow_raw: true` on it"
    );
    // Nothing runs from it, whatever the value.
    let r = plan_env(d.path(), &["run", "./p.yaml", "--state-dir", "s"], &[("PLAN_VAR_msg", HOSTILE)]);
    assert_eq!(r.code, 2);
    assert!(!r.stdout.contains("PWNED"), "{}", r.stdout);
    let opted = plan_with("echo \"raw: {{{msg}}}\"", "    allow_raw: true\n");
    assert_eq!(opted.plan(&["lint", "p.yaml"]).code, 0);
}

#[test]
fn a_quoted_template_keeps_a_hostile_value_literal_and_only_warns() {
    let d = plan_with("echo \"quoted: {{msg}}\"", "");
    let r = d.plan(&["lint", "--format", "json", "p.yaml"]);
    assert_eq!(r.code, 0);
    let diag = &json(&r.stdout)["diagnostics"][0];
    assert_eq!(diag["code"], "quoted-template");
    assert_eq!(
        diag["help"],
        "`{{x}}` is already shell-quoted and stays one literal piece inside quotes too; the quotes around it are not needed"
    );
    let r = plan_env(d.path(), &["run", "./p.yaml", "--state-dir", "s"], &[("PLAN_VAR_msg", HOSTILE)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("[say] quoted: {HOSTILE}\n")), "{}", r.stdout);
    assert!(!r.stdout.contains("[say] PWNED"), "{}", r.stdout);
}

#[test]
fn command_substitution_opens_a_new_quoting_context() {
    let d = plan_with("echo \"size: $(printf %s {{msg}} | wc -c)\"", "");
    let r = d.plan(&["lint", "--format", "json", "p.yaml"]);
    assert_eq!(r.code, 0);
    assert_eq!(json(&r.stdout)["diagnostics"], serde_json::json!([]), "no quoted-template warning inside $( )");
    let r = plan_env(d.path(), &["run", "./p.yaml", "--state-dir", "s"], &[("PLAN_VAR_msg", HOSTILE)]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains(&format!("[say] size: {}\n", HOSTILE.len())), "{}", r.stdout);
}

#[test]
fn backticks_here_documents_and_comments_cannot_hold_a_template() {
    for (shell, message) in [
        ("echo `echo {{msg}}`", "inside backticks a value cannot be quoted safely"),
        (
            "cat <<EOF\n      {{msg}}\n      EOF",
            "inside a here-document a value cannot be quoted safely (a line of it could end the document)",
        ),
        (
            "true # {{msg}}",
            "a template in a shell comment: a newline in the value would end the comment and run the rest",
        ),
    ] {
        let d = Dir::new();
        d.file(
            "p.yaml",
            &format!("apiVersion: plan/v1\nname: p\nvars:\n  msg: {{default: hi}}\nsteps:\n  - id: say\n    shell: |\n      {shell}\n"),
        );
        let r = d.plan(&["lint", "--format", "json", "p.yaml"]);
        assert_eq!(r.code, 1, "{shell}: {}", r.stdout);
        let diag = &json(&r.stdout)["diagnostics"][0];
        assert_eq!(
            (diag["code"].as_str(), diag["message"].as_str()),
            (Some("raw-template-in-shell"), Some(message)),
            "{shell}"
        );
    }
}
