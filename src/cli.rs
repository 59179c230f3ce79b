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
    /// Print the JSON Schema of the plan format.
    Schema,
}
