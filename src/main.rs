use std::process::ExitCode;

use clap::Parser;

use plan::bind::Inputs;
use plan::cli::{Cli, Command, Format, LintFormat, VarArgs};
use plan::diagnostic::render_human;
use plan::template::Renderer;

use plan::error::Error;
use plan::run::EXIT_FAILED;

fn inputs(v: &VarArgs) -> Inputs {
    Inputs { vars: v.vars.clone(), vars_files: v.vars_files.clone(), ..Inputs::default() }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    plan::output::set_color(cli.color);
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| filter.into());
    // The template engine's own tracing shows the values it renders: never let it near a secret.
    let filter = match "handlebars=warn".parse() {
        Ok(d) => filter.add_directive(d),
        Err(_) => filter,
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let json = match &cli.command {
        Command::Lint { format, .. } => *format == LintFormat::Json,
        Command::List { format, .. }
        | Command::Show { format, .. }
        | Command::Runs { format, .. }
        | Command::Status { format, .. } => *format == Format::Json,
        Command::Run(a) => a.format == Format::Json,
        _ => false,
    };
    // The one place an error is printed: JSON on stderr in JSON mode.
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) if json => {
            eprintln!("{}", e.json());
            ExitCode::from(e.exit_code())
        }
        Err(e) => {
            eprint!("{}", e.render());
            ExitCode::from(e.exit_code())
        }
    }
}

fn out(s: &str) -> Result<(), Error> {
    plan::output::out(s).map_err(|e| Error::usage(format!("cannot write the output: {e}"), None))
}

fn run(cli: Cli) -> Result<u8, Error> {
    let quiet = cli.quiet;
    let renderer = Renderer::new();
    match cli.command {
        Command::Lint { paths, format, deny_warnings, path } => {
            let report = plan::lint::lint(&paths, &path.plans_dirs)?;
            match format {
                LintFormat::Json => out(&format!("{}\n", report.json()))?,
                LintFormat::Github => out(&report.github())?,
                LintFormat::Sarif => out(&report.sarif())?,
                LintFormat::Human => {
                    let mut s = render_human(&report.diagnostics, &report.sources);
                    let files = if report.files == 1 { "file" } else { "files" };
                    s.push_str(&format!(
                        "{} {files} checked: {} error(s), {} warning(s)\n",
                        report.files,
                        report.errors(),
                        report.warnings()
                    ));
                    out(&s)?;
                }
            }
            let failed = report.errors() > 0 || (deny_warnings && report.warnings() > 0);
            Ok(if failed { EXIT_FAILED } else { 0 })
        }
        Command::List { format, path } => {
            let catalog = plan::resolve::Catalog::discover(&path.plans_dirs);
            match format {
                Format::Human => out(&plan::show::list(&catalog))?,
                Format::Json => out(&format!("{}\n", plan::show::list_json(&catalog)))?,
            }
            Ok(0)
        }
        Command::Export { plan: arg, format: _, image, secret, jobs, keep_going, skip, pvc, vars, path } => {
            let mut volumes = Vec::new();
            for v in &pvc {
                match v.split_once(':') {
                    Some((claim, at)) if !claim.is_empty() && at.starts_with('/') => {
                        volumes.push((claim.to_owned(), at.to_owned()))
                    }
                    _ => {
                        return Err(Error::usage(
                            format!("--pvc `{v}`: expected CLAIM:/absolute/path"),
                            Some("e.g. --pvc tutor-root:/srv/tutor"),
                        ));
                    }
                }
            }
            let p = plan::prepare::prepare(&arg, &path.plans_dirs, &inputs(&vars), &renderer)?;
            p.notes.iter().for_each(|n| eprintln!("{n}"));
            let secret = secret.unwrap_or_else(|| format!("{}-secrets", p.compiled.base().name.value));
            for s in &skip {
                if !p.compiled.graph.index.contains_key(s) {
                    return Err(Error::usage(format!("--skip `{s}`: no such step in this plan"), None));
                }
            }
            let opts = plan::export::ArgoOptions { image, secret, jobs, keep_going, skip, volumes };
            let (wf, warnings) = plan::export::argo(&p, &renderer, &opts).map_err(|e| {
                Error::usage(e.to_string(), Some("leave the step out with --skip ID, or run the plan with `plan run`"))
            })?;
            warnings.iter().for_each(|w| eprintln!("warning: {w}"));
            let yaml =
                serde_saphyr::to_string(&wf).map_err(|e| Error::usage(format!("cannot write YAML: {e}"), None))?;
            out(&yaml)?;
            Ok(0)
        }
        Command::Show { plan: arg, format, vars, path } => {
            let p = plan::prepare::prepare(&arg, &path.plans_dirs, &inputs(&vars), &renderer)?;
            p.notes.iter().for_each(|n| eprintln!("{n}"));
            if format == Format::Json {
                let shown = plan::show::show_json(&p);
                out(&format!("{shown}\n"))?;
                return Ok(if shown["would_stop"].is_null() { 0 } else { EXIT_FAILED });
            }
            out(&plan::show::show(&p))?;
            match plan::show::would_stop(&p, |_| true) {
                Some(stop) => {
                    out(&format!("\n{stop}"))?;
                    Ok(EXIT_FAILED)
                }
                None => Ok(0),
            }
        }
        Command::Graph { plan: arg, format, vars, path } => {
            if vars.vars.is_empty() && vars.vars_files.is_empty() {
                let family = plan::prepare::load(&arg, &path.plans_dirs)?;
                let all = family.compile_all().map_err(plan::prepare::Failure::from)?;
                out(&plan::show::graph(&all, None, format))?;
            } else {
                let p = plan::prepare::prepare(&arg, &path.plans_dirs, &inputs(&vars), &renderer)?;
                out(&plan::show::graph(&p.compiled, Some(&p.rendered), format))?;
            }
            Ok(0)
        }
        Command::Run(a) => plan::run::run(plan::run::RunRequest {
            plan: a.plan,
            inputs: inputs(&a.vars),
            plans_dirs: a.path.plans_dirs,
            jobs: a.jobs.map(usize::from),
            yes: a.yes,
            dry_run: a.dry_run,
            resume: a.resume.map(|r| if r.is_empty() { None } else { Some(r) }),
            force: a.force,
            keep_going: a.keep_going,
            only: a.only,
            skip: a.skip,
            state_dir: a.state_dir,
            json: a.format == Format::Json,
            quiet,
            grace: a.grace,
        }),
        Command::Runs { format, state_dir } => Ok(plan::run::runs(state_dir.as_deref(), format == Format::Json)),
        Command::Status { run_id, format, state_dir } => {
            plan::run::status(state_dir.as_deref(), run_id.as_deref(), format == Format::Json)
        }
        Command::Logs { run_id, step, follow, state_dir } => plan::logs::logs(plan::logs::Request {
            state_dir: state_dir.as_deref(),
            run_id: run_id.as_deref(),
            step: step.as_deref(),
            follow,
        }),
        Command::Completions { shell } => {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut <Cli as clap::CommandFactory>::command(), "plan", &mut buf);
            out(&String::from_utf8_lossy(&buf))?;
            Ok(0)
        }
        Command::Man => {
            let mut buf = Vec::new();
            clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
                .render(&mut buf)
                .map_err(|e| Error::usage(format!("cannot render the man page: {e}"), None))?;
            out(&String::from_utf8_lossy(&buf))?;
            Ok(0)
        }
        Command::Schema => {
            out(&plan::schema::schema_json())?;
            Ok(0)
        }
    }
}
