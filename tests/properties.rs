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
    assert!(e.contains("nope"), "{e}");
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

/// One step item of a generated plan, as lines, for items at `ind` spaces.
/// The fragments are the YAML shapes that could fool a textual split: lines
/// that look like a new item inside quoted, block and plain scalars, flow
/// collections and comments, anchors and aliases across items, blank lines.
fn step_item(i: usize, ind: usize) -> impl Strategy<Value = Vec<String>> {
    let pad = move |n: usize| " ".repeat(n);
    let k = ind + 2;
    let fragment = prop_oneof![
        Just(vec![format!("{}needs: [s{}]", pad(k), i.saturating_sub(1))]),
        Just(vec![format!("{}needs:", pad(k)), format!("{}- s{}", pad(k), i.saturating_sub(1))]),
        Just(vec![format!("{}needs: [s0,", pad(k)), format!("{}s{}]", pad(k + 2), i.saturating_sub(1))]),
        (0..3usize).prop_map(move |d| vec![
            format!("{}run: \"echo", pad(k)),
            format!("{}- id: fake{i}\"", pad([ind, k, k + 2][d])),
        ]),
        (0..3usize).prop_map(move |d| vec![
            format!("{}run: 'echo", pad(k)),
            format!("{}- id: fake{i}'", pad([ind, k, k + 2][d])),
        ]),
        Just(vec![
            format!("{}shell: |", pad(k)),
            format!("{}echo one", pad(k + 2)),
            String::new(),
            format!("{}- id: fake{i}", pad(k + 2)),
            format!("{}# not a comment", pad(k + 4)),
        ]),
        Just(vec![format!("{}shell: >-", pad(k)), format!("{}folded", pad(k + 2)), format!("{}text", pad(k + 2))]),
        Just(vec![format!("{}description: &d{i} text {i}", pad(k))]),
        (0..8usize).prop_map(move |j| vec![format!("{}description: *d{j}", pad(k))]),
        Just(vec![format!("{}description: first", pad(k)), format!("{}second line", pad(k + 2))]),
        (0..3usize).prop_map(move |d| vec![format!("{}# - id: comment{i}", pad([0, ind, k][d]))]),
        Just(vec![String::new(), pad(ind)]),
        Just(vec![format!("{}timeout: 5s", pad(k))]),
    ];
    (proptest::bool::ANY, proptest::collection::vec(fragment, 0..4)).prop_map(move |(own_line, frags)| {
        let mut lines = if own_line {
            vec![format!("{}-", pad(ind)), format!("{}id: s{i}", pad(k))]
        } else {
            vec![format!("{}- id: s{i}", pad(ind))]
        };
        let mut has_run = false;
        for f in frags {
            // A second `run` or `shell` would be a duplicate-key error on every path alike; keep the files mostly valid.
            let is_action =
                f.iter().any(|l| l.trim_start().starts_with("run:") || l.trim_start().starts_with("shell:"));
            if is_action && has_run {
                continue;
            }
            has_run |= is_action;
            lines.extend(f);
        }
        if !has_run {
            lines.push(format!("{}run: \"true\"", pad(k)));
        }
        lines
    })
}

/// Whole plans of such items, at item indentation 0, 2 or 4, LF or CRLF,
/// with `steps:` inside a quoted description before them or keys, a second
/// document or a document end after them.
fn split_candidate() -> impl Strategy<Value = String> {
    (0..3usize, 2..10usize, proptest::bool::ANY, 0..5usize).prop_flat_map(|(indent, n, crlf, extra)| {
        let ind = [0, 2, 4][indent];
        let items: Vec<_> = (0..n).map(|i| step_item(i, ind)).collect();
        items.prop_map(move |items| {
            let mut lines = vec!["apiVersion: plan/v1".to_owned(), "name: chain".to_owned()];
            if extra == 1 {
                lines.extend(["description: \"not the".to_owned(), "steps:".to_owned(), "  - id: q\"".to_owned()]);
            }
            lines.push("steps:".to_owned());
            lines.extend(items.into_iter().flatten());
            match extra {
                2 => lines.extend(["vars:".to_owned(), "  v: {default: x}".to_owned()]),
                3 => lines.extend(["---".to_owned(), "  - id: other".to_owned(), "    run: \"true\"".to_owned()]),
                4 => lines.push("...".to_owned()),
                _ => {}
            }
            lines.join(if crlf { "\r\n" } else { "\n" }) + "\n"
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Parsing a large file in two halves must give exactly what parsing it
    /// whole gives, positions included, or decline.
    #[test]
    fn split_parse_equals_whole_parse(text in split_candidate()) {
        let whole = plan::load::parse_whole(&text);
        if let Some(split) = plan::load::split_parse(&text, 0) {
            let whole = whole.map_err(|e| TestCaseError::fail(format!("split parsed what whole refused: {e}\n{text}")))?;
            prop_assert_eq!(format!("{split:?}"), format!("{whole:?}"), "{}", text);
        }
    }
}

#[test]
fn split_parse_splits_plain_plans_and_keeps_positions() {
    let mut text = "apiVersion: plan/v1\nname: chain\nsteps:\n  - id: s0\n    run: \"true\"\n".to_owned();
    for i in 1..50 {
        text += &format!("  - id: s{i} # é\n    needs: [s{}]\n    run: echo {{{{x}}}} {i}\n", i - 1);
    }
    let split = plan::load::split_parse(&text, 0).expect("a plain chain splits");
    let whole = plan::load::parse_whole(&text).expect("parses");
    assert_eq!(format!("{split:?}"), format!("{whole:?}"));
    let last = split.steps.last().expect("steps");
    assert_eq!(last.id.value, "s49");
    assert_eq!((last.id.pos.line, last.id.pos.column), (150, 9));
    assert_eq!(&text[last.id.pos.offset as usize..][..3], "s49");
}

#[test]
fn split_parse_declines_what_only_the_whole_can_judge() {
    let chain = |extra: &str| {
        let mut text = "apiVersion: plan/v1\nname: chain\ndescription: &d shared\nsteps:\n".to_owned();
        for i in 0..40 {
            text += &format!("  - id: s{i}\n    run: \"true\"\n");
        }
        text + extra
    };
    // An alias in the second half to an anchor in the first.
    let aliased = chain("  - id: last\n    description: *d\n    run: \"true\"\n");
    assert!(plan::load::split_parse(&aliased, 0).is_none());
    assert_eq!(plan::load::parse_whole(&aliased).expect("valid").steps.len(), 41);
    // A key after the steps: the second half is not a sequence alone.
    let trailing = chain("vars:\n  v: {default: x}\n");
    assert!(plan::load::split_parse(&trailing, 0).is_none());
    assert!(plan::load::parse_whole(&trailing).is_ok());
    // Below the size threshold nothing is split.
    assert!(plan::load::split_parse(&chain(""), 1 << 20).is_none());
    assert!(plan::load::split_parse(&chain(""), 0).is_some());
}
