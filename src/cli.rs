//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::show::GraphFormat;

const AFTER_HELP: &str = "\
Exit codes:
  0        success
  1        a step failed (or the journal could not be written); show/--dry-run: an assert would
           stop the run; lint: an error was found
  2        bad arguments or an invalid plan: nothing ran
  128+N    stopped by signal N (130 Ctrl-C, 143 SIGTERM); SIGHUP does not stop a run

Environment:
  PLAN_PATH          folders of plans, colon-separated, searched after --plans-dir
  PLAN_VAR_<name>    a variable's value (below --var, above --vars-file and defaults)
  XDG_STATE_HOME     where runs are kept: $XDG_STATE_HOME/plan (else ~/.local/state/plan;
                     --state-dir wins)
  RUST_LOG           tracing filter, as -v";

#[derive(Parser, Debug)]
#[command(name = "plan", version, about = "Run upgrade procedures written as declarative YAML plans", after_help = AFTER_HELP)]
pub struct Cli {
    /// More diagnostics on stderr (repeat for more); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Less output: a run prints only failures and its last line.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Colour: auto (on a terminal; NO_COLOR turns it off, CLICOLOR_FORCE on), always, never.
    #[arg(long, value_enum, default_value_t, global = true)]
    pub color: Color,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone, Default)]
pub struct PathArgs {
    /// A folder of plans, searched before PLAN_PATH and the shipped plans (repeatable).
    #[arg(long = "plans-dir", value_name = "DIR")]
    pub plans_dirs: Vec<PathBuf>,
}

#[derive(Args, Debug, Clone, Default)]
pub struct VarArgs {
    /// Set a variable or override a fact (repeatable; wins over everything else).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// A YAML map of variable values (repeatable; later files win).
    #[arg(long = "vars-file", value_name = "FILE")]
    pub vars_files: Vec<PathBuf>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum LintFormat {
    #[default]
    Human,
    Json,
    /// GitHub Actions workflow commands (annotations on the pull request).
    Github,
    /// SARIF 2.1.0, for code-scanning tools.
    Sarif,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate plan files or folders (default: the --plans-dir folders, else the shipped plans).
    Lint {
        /// Plan files or folders; `-` reads standard input (default: the --plans-dir folders, else the shipped plans).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// How to print the diagnostics.
        #[arg(long, value_enum, default_value_t)]
        format: LintFormat,
        /// Fail on warnings too.
        #[arg(long)]
        deny_warnings: bool,
        #[command(flatten)]
        path: PathArgs,
    },
    /// List the plans on the plan path.
    List {
        /// Lines for people, or one JSON array.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Print the plan, compiled with these values, as a workflow for another engine (Argo).
    Export {
        /// A plan name on the plan path, or a plan file.
        plan: String,
        /// The engine: an Argo `Workflow` (YAML) whose entrypoint is one `dag`.
        #[arg(long, value_enum, default_value_t)]
        format: ExportFormat,
        /// The container image the steps run in (tutor and its plugins installed).
        #[arg(long, value_name = "IMAGE")]
        image: String,
        /// The Kubernetes Secret that holds the secret values, a key per var or fact name (default: PLAN-secrets).
        #[arg(long, value_name = "NAME")]
        secret: Option<String>,
        /// At most this many steps at once (Argo's `parallelism`).
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
        /// Go on with independent steps after a failure (`failFast: false`).
        #[arg(long)]
        keep_going: bool,
        /// Leave this step out, as a skipped step (repeatable).
        #[arg(long, value_name = "ID")]
        skip: Vec<String>,
        /// Mount a PersistentVolumeClaim in every step, e.g. `tutor-root:/srv/tutor` (repeatable).
        #[arg(long, value_name = "CLAIM:PATH")]
        pvc: Vec<String>,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Show the compiled order with rendered commands (secrets masked).
    Show {
        /// A plan name on the plan path, or a plan file.
        plan: String,
        /// Lines for people, or one JSON object.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Print the graph of a plan: every release plan, or with values the window that would run.
    Graph {
        /// A plan name on the plan path, or a plan file.
        plan: String,
        /// The graph language.
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        /// With values, the window that would run (facts are probed unless given); without, every release plan.
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Execute a plan.
    Run(RunArgs),
    /// List the runs in the state dir.
    Runs {
        /// Lines for people, or one JSON array.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Where runs are kept (default: $XDG_STATE_HOME/plan, else ~/.local/state/plan).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show one run's steps: state, exit code, duration, log (default: the newest run).
    Status {
        /// The run (default: the newest); `plan runs` lists them.
        run_id: Option<String>,
        /// Lines for people, or one JSON object.
        #[arg(long, value_enum, default_value_t)]
        format: Format,
        /// Where runs are kept (default: $XDG_STATE_HOME/plan, else ~/.local/state/plan).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// A run's step output, finished or live (default: every step of the newest run).
    Logs {
        /// The run (default: the newest); a step id alone means that step of the newest run.
        run_id: Option<String>,
        /// Only this step's log.
        step: Option<String>,
        /// Keep printing as the logs grow, until the run is over.
        #[arg(long, short = 'f')]
        follow: bool,
        /// Where runs are kept (default: $XDG_STATE_HOME/plan, else ~/.local/state/plan).
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of the plan format.
    Schema,
    /// Print a shell completion script (e.g. `plan completions bash > /etc/bash_completion.d/plan`).
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `plan man | man -l -`.
    Man,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Color {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum ExportFormat {
    /// An Argo Workflows `Workflow` (argoproj.io/v1alpha1).
    #[default]
    Argo,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// A plan name on the plan path, or a plan file.
    pub plan: String,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub path: PathArgs,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Answer yes to every `confirm` step.
    #[arg(long)]
    pub yes: bool,
    /// Print what would run (and what a resume would skip); run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Continue a failed or interrupted run (default: the newest of this plan).
    #[arg(long, value_name = "RUN_ID", num_args = 0..=1, default_missing_value = "")]
    pub resume: Option<String>,
    /// With --resume: run again the succeeded steps whose definition changed.
    #[arg(long, requires = "resume")]
    pub force: bool,
    /// After a failure, keep starting steps that do not depend on it.
    #[arg(long)]
    pub keep_going: bool,
    /// Run only this step (repeatable); its needs must have succeeded in the resumed run.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Count this step as skipped (repeatable).
    #[arg(long, value_name = "ID")]
    pub skip: Vec<String>,
    /// Where runs are kept (default: $XDG_STATE_HOME/plan, else ~/.local/state/plan).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// How to report: lines for people, or JSON (one event per line; a dry run: one object).
    #[arg(long, alias = "output", value_enum, default_value_t)]
    pub format: Format,
    /// How long a stopped step's processes get between SIGTERM and SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_grace)]
    pub grace: std::time::Duration,
}

fn parse_grace(s: &str) -> Result<std::time::Duration, crate::compile::DurationError> {
    crate::compile::parse_duration(s)
}
