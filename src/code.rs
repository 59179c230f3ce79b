//! Every diagnostic code, each documented here and only here: lint, the
//! JSON, GitHub and SARIF output and the docs all name codes through this enum.

use serde::Serialize;

/// A diagnostic code; what each means is [`Code::summary`], its one documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    YamlSyntax,
    UnknownField,
    MissingField,
    InvalidValue,
    UnsupportedApiVersion,
    DuplicateStep,
    UnknownDependency,
    DependencyCycle,
    NoAction,
    MultipleActions,
    TemplateSyntax,
    UndefinedVariable,
    UnknownHelper,
    CaptureNotAncestor,
    UnknownPlan,
    InvalidChoice,
    DuplicatePlan,
    ReleaseScope,
    RawTemplateInShell,
    NotBoolean,
    UnusedVariable,
    QuotedTemplate,
    RedundantDependency,
}

impl Code {
    pub const ALL: &[Code] = &[
        Code::YamlSyntax,
        Code::UnknownField,
        Code::MissingField,
        Code::InvalidValue,
        Code::UnsupportedApiVersion,
        Code::DuplicateStep,
        Code::UnknownDependency,
        Code::DependencyCycle,
        Code::NoAction,
        Code::MultipleActions,
        Code::TemplateSyntax,
        Code::UndefinedVariable,
        Code::UnknownHelper,
        Code::CaptureNotAncestor,
        Code::UnknownPlan,
        Code::InvalidChoice,
        Code::DuplicatePlan,
        Code::ReleaseScope,
        Code::RawTemplateInShell,
        Code::NotBoolean,
        Code::UnusedVariable,
        Code::QuotedTemplate,
        Code::RedundantDependency,
    ];

    /// The code as users see it: `unknown-dependency`.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::YamlSyntax => "yaml-syntax",
            Code::UnknownField => "unknown-field",
            Code::MissingField => "missing-field",
            Code::InvalidValue => "invalid-value",
            Code::UnsupportedApiVersion => "unsupported-api-version",
            Code::DuplicateStep => "duplicate-step",
            Code::UnknownDependency => "unknown-dependency",
            Code::DependencyCycle => "dependency-cycle",
            Code::NoAction => "no-action",
            Code::MultipleActions => "multiple-actions",
            Code::TemplateSyntax => "template-syntax",
            Code::UndefinedVariable => "undefined-variable",
            Code::UnknownHelper => "unknown-helper",
            Code::CaptureNotAncestor => "capture-not-ancestor",
            Code::UnknownPlan => "unknown-plan",
            Code::InvalidChoice => "invalid-choice",
            Code::DuplicatePlan => "duplicate-plan",
            Code::ReleaseScope => "release-scope",
            Code::RawTemplateInShell => "raw-template-in-shell",
            Code::NotBoolean => "not-boolean",
            Code::UnusedVariable => "unused-variable",
            Code::QuotedTemplate => "quoted-template",
            Code::RedundantDependency => "redundant-dependency",
        }
    }

    /// What the code means: its one documentation (lint's SARIF rules and the docs use it).
    pub fn summary(self) -> &'static str {
        match self {
            Code::YamlSyntax => "The file is not YAML (or not UTF-8), or breaks the loader's limits.",
            Code::UnknownField => "A field the format does not have (a typo, usually).",
            Code::MissingField => "A required field is missing (`apiVersion`, `name`, a step's `id`).",
            Code::InvalidValue => {
                "A value of the wrong type or form: a number where text belongs, a duration without a unit, a name that breaks its pattern."
            }
            Code::UnsupportedApiVersion => "`apiVersion` is not `plan/v1`.",
            Code::DuplicateStep => "Two steps with one id in the merged graph.",
            Code::UnknownDependency => "`needs`/`before` names no step of the plan.",
            Code::DependencyCycle => "Steps that wait for each other in a circle.",
            Code::NoAction => "A step (or fact) with no action.",
            Code::MultipleActions => "A step (or fact) with more than one action.",
            Code::TemplateSyntax => "A template that does not parse, or nests too deep.",
            Code::UndefinedVariable => "A template reads a name no var, fact or capture declares.",
            Code::UnknownHelper => "A template calls a helper that does not exist.",
            Code::CaptureNotAncestor => "A template reads a capture of a step it does not depend on.",
            Code::UnknownPlan => "`extends` names a plan that is not on the plan path, or is not a base.",
            Code::InvalidChoice => "A var's `default` is not one of its `choices`.",
            Code::DuplicatePlan => "Two plans with one name in the files linted.",
            Code::ReleaseScope => "A release plan uses a name of another release plan, which a window may leave out.",
            Code::RawTemplateInShell => {
                "`{{{x}}}`, or a template in backticks, a here-document or a comment of a `shell:` script: no quoting keeps a value from changing the command there."
            }
            Code::NotBoolean => "A `when` or `assert` that can never render exactly `true` or `false`.",
            Code::UnusedVariable => "(warning) A var nothing uses.",
            Code::QuotedTemplate => {
                "(warning) `\"{{x}}\"` or `'{{x}}'` in a `shell:` script: the quotes are not needed."
            }
            Code::RedundantDependency => "(warning) A need already implied by another need.",
        }
    }

    /// Whether lint reports the code as a warning (everything else is an error).
    pub fn is_warning(self) -> bool {
        matches!(self, Code::UnusedVariable | Code::QuotedTemplate | Code::RedundantDependency)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
