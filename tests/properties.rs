//! Property tests: values never change argv words, shell quoting round-trips
//! through a real `sh`, and the loader never panics.

use std::process::Command;

use plan::load::load_bytes;
use plan::template::{Escape, Renderer, split_words};
use proptest::prelude::*;
use serde_json::json;

/// Strings with the characters that break naive quoting.
fn nasty() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("'".to_owned()),
            Just("\"".to_owned()),
            Just(" ".to_owned()),
            Just("\t".to_owned()),
            Just("\n".to_owned()),
            Just("$(touch pwned)".to_owned()),
            Just("`id`".to_owned()),
            Just(";".to_owned()),
            Just("\\".to_owned()),
            Just("*".to_owned()),
            Just("{{x}}".to_owned()),
            Just("$HOME".to_owned()),
            "[a-zA-Z0-9 ._/-]{0,6}",
            "\\PC{0,4}",
        ],
        0..8,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn values_never_change_run_words(x in nasty(), y in nasty()) {
        let line = r#"prog --flag={{x}} "two {{y}} words" '{{x}}' plain {{default y "fall back"}}"#;
        let words = split_words(line).expect("splits");
        prop_assert_eq!(words.len(), 6);
        let r = Renderer::new();
        let ctx = json!({"x": x, "y": y});
        let rendered: Vec<String> = words.iter().map(|w| r.render(w, &ctx, Escape::None).expect("renders")).collect();
        let y_or = if y.is_empty() { "fall back".to_owned() } else { y.clone() };
        prop_assert_eq!(rendered, vec![
            "prog".to_owned(),
            format!("--flag={x}"),
            format!("two {y} words"),
            x.clone(),
            "plain".to_owned(),
            y_or,
        ]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shell_values_round_trip_through_sh(x in nasty().prop_filter("no NUL", |s| !s.contains('\0'))) {
        let r = Renderer::new();
        let script = r.render("printf %s {{x}}", &json!({"x": x}), Escape::Shell).expect("renders");
        let dir = tempfile::tempdir().expect("tempdir");
        let out = Command::new("sh").args(["-eu", "-c", &script]).current_dir(dir.path()).output().expect("sh");
        prop_assert!(out.status.success(), "{script}");
        prop_assert_eq!(String::from_utf8_lossy(&out.stdout).into_owned(), x);
        prop_assert!(!dir.path().join("pwned").exists());
    }

    /// Every form lint accepts in a `shell:` script, with a hostile value:
    /// the script prints exactly the text around the value and the value,
    /// one word, nothing run. (Raw `{{{x}}}`, backticks, here-documents and
    /// comments are lint errors, so they are not forms a plan can have.)
    #[test]
    fn every_accepted_shell_form_keeps_the_value_one_literal_piece(x in nasty().prop_filter("no NUL", |s| !s.contains('\0'))) {
        let r = Renderer::new();
        let forms: [(&str, String); 7] = [
            ("printf '[%s]' {{x}}", format!("[{x}]")),
            ("printf '[%s]' \"{{x}}\"", format!("[{x}]")),
            ("printf '[%s]' '{{x}}'", format!("[{x}]")),
            ("printf '[%s]' \"a {{x}} b\"", format!("[a {x} b]")),
            ("printf '[%s]' 'a {{x}} b'", format!("[a {x} b]")),
            ("printf '[%s]' \"size: $(printf %s {{x}})\"", format!("[size: {}]", x.trim_end_matches('\n'))),
            ("printf '[%s]' \"$(printf '%s' \"{{x}}\")\"", format!("[{}]", x.trim_end_matches('\n'))),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        for (form, want) in forms {
            let script = r.render(form, &json!({"x": x}), Escape::Shell).expect("renders");
            let out = Command::new("sh").args(["-eu", "-c", &script]).current_dir(dir.path()).output().expect("sh");
            prop_assert!(out.status.success(), "{form} -> {script}: {}", String::from_utf8_lossy(&out.stderr));
            prop_assert_eq!(String::from_utf8_lossy(&out.stdout).into_owned(), want, "{} -> {}", form, script);
            prop_assert!(!dir.path().join("pwned").exists(), "{form} ran the value");
        }
    }

    #[test]
    fn loader_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let l = load_bytes("fuzz.yaml".into(), "fuzz.yaml".into(), &bytes);
        if let Err(d) = l.result {
            prop_assert_ne!(d.message, "the YAML parser failed on this file");
        }
    }
}

/// Fragments of plan-shaped YAML, shuffled: reaches far deeper than random bytes.
fn plan_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("apiVersion: plan/v1\n"),
            Just("name: x\n"),
            Just("steps:\n"),
            Just("  - id: a\n"),
            Just("    needs: [a, b]\n"),
            Just("    run: echo {{x}}\n"),
            Just("    run: [a, *r]\n"),
            Just("    shell: |\n      echo {{#if x}}\n"),
            Just("vars:\n  x: {default: &r 1}\n"),
            Just("  x: *r\n"),
            Just("    remove: {path: /a, within: /}\n"),
            Just("<<: *r\n"),
            Just("? [a]\n: b\n"),
            Just("- !!binary aGVsbG8=\n"),
            Just("  {\n"),
            Just("\t\"\n"),
            Just("---\n"),
            Just("&a [*a]\n"),
        ],
        0..24,
    )
    .prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn loader_never_panics_on_plan_shaped_text(text in plan_like()) {
        let l = load_bytes("fuzz.yaml".into(), "fuzz.yaml".into(), text.as_bytes());
        if let Err(d) = l.result {
            prop_assert_ne!(d.message, "the YAML parser failed on this file");
        }
    }
}

#[test]
fn injection_attempts_stay_inert_in_shell() {
    let r = Renderer::new();
    let dir = tempfile::tempdir().expect("tempdir");
    for x in [
        "$(touch pwned)",
        "`touch pwned`",
        "; touch pwned",
        "' ; touch pwned ; '",
        "\" ; touch pwned ; \"",
        "a\nb; touch pwned",
    ] {
        let script = r.render("echo {{x}}", &json!({"x": x}), Escape::Shell).expect("renders");
        let out = Command::new("sh").args(["-eu", "-c", &script]).current_dir(dir.path()).output().expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{x}\n"));
        assert!(!dir.path().join("pwned").exists(), "{x} ran");
    }
}

#[test]
fn strict_mode_refuses_undefined_names() {
    let r = Renderer::new();
    let e = r.render("echo {{nope}}", &json!({}), Escape::None).expect_err("strict");
    assert!(e.to_string().contains("nope"), "{e}");
}

#[test]
fn helpers() {
    let r = Renderer::new();
    let ctx = json!({"v": "21.0.9", "empty": "", "a": "x"});
    let cases = [
        (r#"{{semver_satisfies v ">=21, <22"}}"#, "true"),
        (r#"{{semver_satisfies v ">=22"}}"#, "false"),
        (r#"{{semver_satisfies empty ">=1"}}"#, "false"),
        ("{{semver_major v}}", "21"),
        ("{{#if (gt (semver_major v) 9)}}yes{{/if}}", "yes"),
        (r#"{{default empty "d"}}"#, "d"),
        (r#"{{default a "d"}}"#, "x"),
        (r#"{{eq a "x"}} {{ne a "x"}} {{not (eq a "y")}}"#, "true false true"),
        (r#"{{and (eq a "x") (eq v "21.0.9")}} {{or false (eq a "z")}}"#, "true false"),
    ];
    for (t, want) in cases {
        assert_eq!(r.render(t, &ctx, Escape::None).expect(t), want, "{t}");
    }
}

/// The resume identity of a step is the hash of its JSON form: the same
/// across builds and Rust versions (a `Debug` form promises neither).
#[test]
fn the_resume_identity_of_a_step_is_stable() {
    use plan::render::{Action, RenderedStep};
    let step = RenderedStep {
        id: "install".into(),
        when: None,
        action: Action::Run(vec!["pip".into(), "install".into(), "tutor==21.0.9".into()]),
        env: vec![("PW".into(), "s3cret".into())],
        cwd: None,
        timeout: Some(std::time::Duration::from_secs(90)),
        retries: 1,
        retry_delay: std::time::Duration::from_millis(500),
        continue_on_error: false,
        capture: None,
    };
    let json = serde_json::to_string(&step).expect("json");
    assert_eq!(
        json,
        r#"{"id":"install","when":null,"action":{"run":["pip","install","tutor==21.0.9"]},"env":[["PW","s3cret"]],"cwd":null,"timeout":{"secs":90,"nanos":0},"retries":1,"retry_delay":{"secs":0,"nanos":500000000},"continue_on_error":false,"capture":null}"#
    );
    let masked = r#"{"id":"install","when":null,"action":{"run":["pip","install","tutor==21.0.9"]},"env":[["PW","***"]],"cwd":null,"timeout":{"secs":90,"nanos":0},"retries":1,"retry_delay":{"secs":0,"nanos":500000000},"continue_on_error":false,"capture":null}"#;
    assert_eq!(
        plan::scheduler::definition_hash(&step, &["s3cret".into()]),
        plan::journal::sha256_hex(masked.as_bytes())
    );
}
