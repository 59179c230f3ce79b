//! Starting a step's process, and waiting for it.
//!
//! A step whose only environment change is its `PLAN_STEP` marker (and that
//! sets no working directory) is started with `posix_spawnp` and an
//! environment built once per `plan`: std's `Command` copies the whole
//! environment into a new map on every spawn once one variable is set (5.5%
//! of the scheduler's thread on 1,000 steps of `true`, measured with perf
//! record). Its end is read from a pidfd, which also names the leader
//! (pidfs) without opening a second one. Any other step, or a machine
//! without pidfds, goes through tokio's `Command` as before: same process
//! group, same stdio, same signal dispositions.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tokio::io::unix::AsyncFd;

use crate::process::Birth;

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    Code(i32),
    Signal(i32),
}

/// A step's main process.
pub(crate) enum Child {
    Tokio(tokio::process::Child),
    Own(Own),
}

/// A process `plan` started itself, waited for through its pidfd.
pub(crate) struct Own {
    pid: Pid,
    pidfd: AsyncFd<OwnedFd>,
    ended: Option<Exit>,
}

impl Child {
    /// Its pid, which is also its process group.
    pub(crate) fn pgid(&self) -> i32 {
        match self {
            Child::Tokio(c) => c.id().map_or(0, |p| p as i32),
            Child::Own(o) => o.pid.as_raw(),
        }
    }

    /// What names it after its pid is reused.
    pub(crate) fn birth(&self) -> Birth {
        match self {
            Child::Own(o) => Birth::of_pidfd(o.pid.as_raw(), o.pidfd.get_ref()),
            Child::Tokio(_) => Birth::of(self.pgid()),
        }
    }

    /// Waits for it to end (and reaps it). Cancel-safe: a wait dropped before
    /// the end leaves the process unreaped for the next one.
    pub(crate) async fn wait(&mut self) -> io::Result<Exit> {
        match self {
            Child::Tokio(c) => {
                use std::os::unix::process::ExitStatusExt;
                let st = c.wait().await?;
                Ok(match (st.code(), st.signal()) {
                    (Some(code), _) => Exit::Code(code),
                    (None, Some(sig)) => Exit::Signal(sig),
                    _ => Exit::Code(-1),
                })
            }
            Child::Own(o) => o.wait().await,
        }
    }
}

impl Own {
    async fn wait(&mut self) -> io::Result<Exit> {
        loop {
            if let Some(e) = self.ended {
                return Ok(e);
            }
            let mut ready = self.pidfd.readable().await?;
            match waitpid(self.pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(_, code)) => self.ended = Some(Exit::Code(code)),
                Ok(WaitStatus::Signaled(_, sig, _)) => self.ended = Some(Exit::Signal(sig as i32)),
                Ok(_) => ready.clear_ready(),
                Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// `plan`'s environment as `KEY=VALUE` strings, built once.
fn base_env() -> &'static [CString] {
    static ENV: std::sync::OnceLock<Vec<CString>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        use std::os::unix::ffi::OsStrExt;
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let mut kv = Vec::with_capacity(k.len() + v.len() + 1);
                kv.extend_from_slice(k.as_bytes());
                kv.push(b'=');
                kv.extend_from_slice(v.as_bytes());
                CString::new(kv).ok()
            })
            .collect()
    })
}

/// Where a step's stdio goes: stdin, stdout, stderr (stdout and stderr may be one pipe).
pub(crate) struct Stdio<'a> {
    pub(crate) stdin: &'a OwnedFd,
    pub(crate) stdout: &'a OwnedFd,
    pub(crate) stderr: &'a OwnedFd,
}

/// Starts `program` in a process group of its own, with `plan`'s environment
/// plus `env`, or says it cannot (`None`: no pidfds here, or a NUL in an
/// argument): the caller then uses tokio's `Command`.
pub(crate) fn spawn(program: &str, args: &[String], env: &[(String, String)], io: &Stdio) -> Option<io::Result<Child>> {
    if crate::process::pidfds() == crate::process::Pidfds::None {
        return None;
    }
    let file = CString::new(program).ok()?;
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(file.clone());
    for a in args {
        argv.push(CString::new(a.as_str()).ok()?);
    }
    let extra: Vec<CString> = env.iter().map(|(k, v)| CString::new(format!("{k}={v}")).ok()).collect::<Option<_>>()?;
    let replaced = |e: &CStr| {
        env.iter().any(|(k, _)| e.to_bytes().strip_prefix(k.as_bytes()).is_some_and(|rest| rest.first() == Some(&b'=')))
    };
    let envp: Vec<&CStr> = base_env()
        .iter()
        .map(CString::as_c_str)
        .filter(|e| !replaced(e))
        .chain(extra.iter().map(CString::as_c_str))
        .collect();
    Some(start(&file, &argv, &envp, io))
}

fn start(file: &CStr, argv: &[CString], envp: &[&CStr], io: &Stdio) -> io::Result<Child> {
    use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags, posix_spawnp};
    let mut attr = PosixSpawnAttr::init()?;
    // As std does: a group of its own, no signal blocked, SIGPIPE (ignored by Rust programs) back to default.
    attr.set_flags(
        PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
            | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
    )?;
    attr.set_pgroup(Pid::from_raw(0))?;
    attr.set_sigmask(&SigSet::empty())?;
    let mut pipe = SigSet::empty();
    pipe.add(Signal::SIGPIPE);
    attr.set_sigdefault(&pipe)?;
    let mut actions = PosixSpawnFileActions::init()?;
    actions.add_dup2(io.stdin.as_fd().as_raw_fd(), 0)?;
    actions.add_dup2(io.stdout.as_fd().as_raw_fd(), 1)?;
    actions.add_dup2(io.stderr.as_fd().as_raw_fd(), 2)?;
    let pid = posix_spawnp(file, &actions, &attr, argv, envp)?;
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid.as_raw()).ok_or_else(|| io::Error::other("pid 0"))?,
        rustix::process::PidfdFlags::NONBLOCK,
    )
    .map_err(io::Error::from)
    .and_then(|fd| {
        // SAFETY: the `OwnedFd` moves into the `AsyncFd` and is only closed
        // when the `AsyncFd` is dropped, which deregisters it first; nothing
        // else holds this descriptor.
        unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }.map_err(io::Error::from)
    });
    match pidfd {
        Ok(pidfd) => Ok(Child::Own(Own { pid, pidfd, ended: None })),
        Err(e) => {
            // Started but cannot be waited for here: stop it, reap it, say why.
            let _ = nix::sys::signal::killpg(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Runs `sh -c script` through [`spawn`] with `env` added; its stdout, and how it ended.
    async fn sh(script: &str, env: &[(&str, &str)]) -> (String, Exit, i32) {
        let stdin: OwnedFd = std::fs::File::open("/dev/null").expect("null").into();
        let (mut reader, writer) = std::io::pipe().expect("pipe");
        let writer: OwnedFd = writer.into();
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let io = Stdio { stdin: &stdin, stdout: &writer, stderr: &writer };
        let mut child = spawn("sh", &["-c".into(), script.into()], &env, &io).expect("pidfds").expect("spawn");
        drop(writer);
        let pid = child.pgid();
        let exit = child.wait().await.expect("wait");
        let mut out = String::new();
        reader.read_to_string(&mut out).expect("read");
        (out, exit, pid)
    }

    /// What std's `Command` gives a child, this gives too: a process group of
    /// its own, stdin from /dev/null, no signal blocked or ignored (Rust
    /// ignores SIGPIPE in `plan`), `plan`'s environment with the step's
    /// variables replacing (not repeating) those of the same name.
    #[tokio::test(flavor = "current_thread")]
    async fn a_step_started_here_gets_what_std_would_give_it() {
        let script = "cat; ps -o pgid= -p $$ | tr -d ' '; grep -E '^Sig(Blk|Ign)' /proc/self/status; \
                      env | grep -c '^HOME='; echo \"$HOME $PLAN_STEP\"; exit 3";
        let (out, exit, pid) = sh(script, &[("HOME", "/elsewhere"), ("PLAN_STEP", "r/s")]).await;
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(exit, Exit::Code(3), "{out}");
        assert_eq!(lines.first().copied(), Some(pid.to_string().as_str()), "its own group: {out}");
        // The same signal mask and ignored set as a child of std's Command (glibc
        // ignores its two internal signals in both; SIGPIPE, bit 13, is not ignored).
        let by_std = std::process::Command::new("sh")
            .args(["-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"])
            .output()
            .expect("std");
        let by_std = String::from_utf8_lossy(&by_std.stdout).into_owned();
        assert_eq!(lines.get(1..3).map(|l| l.join("\n") + "\n"), Some(by_std.clone()), "{out}");
        let ignored = lines.get(2).and_then(|l| u64::from_str_radix(l.trim_start_matches("SigIgn:\t"), 16).ok());
        assert_eq!(ignored.map(|bits| bits & (1 << (Signal::SIGPIPE as u64 - 1))), Some(0), "{out}");
        assert_eq!(lines.get(3..), Some(&["1", "/elsewhere r/s"][..]), "{out}");
        assert!(std::env::var_os("PATH").is_some());
    }

    /// A signal that ends it is reported as such; a program that is not there is `NotFound`.
    #[tokio::test(flavor = "current_thread")]
    async fn its_end_and_a_missing_program_are_reported() {
        let (_, exit, _) = sh("kill -TERM $$", &[]).await;
        assert_eq!(exit, Exit::Signal(Signal::SIGTERM as i32));
        let null: OwnedFd = std::fs::File::open("/dev/null").expect("null").into();
        let io = Stdio { stdin: &null, stdout: &null, stderr: &null };
        let missing = spawn("plan-no-such-program", &[], &[], &io).expect("pidfds");
        assert_eq!(missing.err().map(|e| e.kind()), Some(io::ErrorKind::NotFound));
    }
}
