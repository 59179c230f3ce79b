//! The command line.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::show::GraphFormat;

#[derive(Parser, Debug)]
#[command(name = "plan", version, about = "Run upgrade procedures written as declarative YAML plans")]
pub struct Cli {
    /// More diagnostics on stderr (repeat for more); RUST_LOG also works.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
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
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate plan files or folders (default: the shipped plans).
    Lint {
        paths: Vec<PathBuf>,
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
        #[command(flatten)]
        path: PathArgs,
    },
    /// Show the compiled order with rendered commands (secrets masked).
    Show {
        plan: String,
        #[command(flatten)]
        vars: VarArgs,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Print the graph of a plan with all its release plans.
    Graph {
        plan: String,
        #[arg(long, value_enum, default_value = "dot")]
        format: GraphFormat,
        #[command(flatten)]
        path: PathArgs,
    },
    /// Execute a plan.
    Run(RunArgs),
    /// List the runs in the state dir.
    Runs {
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Show one run's steps: state, exit code, duration, log (default: the newest run).
    Status {
        run_id: Option<String>,
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
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Print the JSON Schema of the plan format.
    Schema,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum, Default)]
pub enum RunOutput {
    #[default]
    Human,
    Json,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    pub plan: String,
    #[command(flatten)]
    pub vars: VarArgs,
    #[command(flatten)]
    pub path: PathArgs,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
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
    #[arg(long)]
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
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    #[arg(long, value_enum, default_value_t)]
    pub output: RunOutput,
    /// How long a stopped step's processes get between SIGTERM and SIGKILL.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_grace)]
    pub grace: std::time::Duration,
}

fn parse_grace(s: &str) -> Result<std::time::Duration, crate::compile::DurationError> {
    crate::compile::parse_duration(s)
}
