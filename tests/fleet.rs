//! The fleet example (examples/fleet/playbook.yml) run by the real
//! `ansible-playbook` (ansible-core from PyPI) against three hosts on this
//! machine (local connection), each with its own Tutor and Aspects from
//! PyPI, tutor root, state dir and recording `docker`. The second host's
//! init fails: the first is upgraded, the fleet stops there, the third is
//! never touched, and both statuses reach the controller as JSON.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

const TUTOR: &str = "21.0.9";
const FROM: &str = "3.0.0";
const TARGET: &str = "3.0.3";

/// A host's own venv (kept under target/ between runs, reset to Aspects FROM each time).
fn host_venv(host: &str) -> PathBuf {
    let dir = target_dir().join("e2e").join(format!("fleet-{host}"));
    if !dir.join("bin/pip").exists() {
        std::fs::create_dir_all(dir.parent().expect("parent")).expect("mkdir");
        sh(Command::new("python3").args(["-m", "venv"]).arg(&dir));
    }
    let (t, a) = (format!("tutor=={TUTOR}"), format!("tutor-contrib-aspects=={FROM}"));
    sh(Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", &t, &a]));
    dir
}

fn installed(venv: &Path) -> String {
    let out = sh(Command::new(venv.join("bin/pip")).args(["show", "tutor-contrib-aspects"]));
    out.lines().find_map(|l| l.strip_prefix("Version: ")).unwrap_or_default().to_owned()
}

struct Host {
    name: &'static str,
    dir: PathBuf,
    venv: PathBuf,
}

impl Host {
    fn env(&self) -> Vec<(String, String)> {
        let path = format!(
            "{}:{}:{}",
            self.dir.join("bin").display(),
            self.venv.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        vec![
            ("PATH".into(), path),
            ("TUTOR_ROOT".into(), self.dir.join("root").display().to_string()),
            ("TUTOR_PLUGINS_ROOT".into(), self.dir.join("plugins").display().to_string()),
            ("DOCKER_LOG".into(), self.dir.join("docker.log").display().to_string()),
        ]
    }

    fn tutor(&self, args: &[&str]) {
        sh(Command::new(self.venv.join("bin/tutor")).args(args).envs(self.env()));
    }
}

#[test]
#[ignore = "end to end with ansible-core, tutor and Aspects from PyPI; CI runs it with --include-ignored"]
fn the_fleet_playbook_upgrades_host_by_host_and_stops_at_the_first_failure() {
    let ansible = python_venv("ansible", &["ansible-core==2.19.14"]);
    let work = Dir::new();
    let hosts: Vec<Host> = ["h1", "h2", "h3"]
        .into_iter()
        .map(|name| {
            let dir = work.path().join(name);
            std::fs::create_dir_all(dir.join("bin")).expect("mkdir");
            std::fs::copy(root().join("tests/support/docker"), dir.join("bin/docker")).expect("copy docker");
            let h = Host { name, dir, venv: host_venv(name) };
            h.tutor(&["plugins", "enable", "aspects"]);
            h.tutor(&["config", "save"]);
            h
        })
        .collect();
    // The inventory: three hosts reached with the local connection.
    let mut inv = String::from("openedx:\n  hosts:\n");
    for h in &hosts {
        inv.push_str(&format!("    {}:\n      ansible_connection: local\n", h.name));
        inv.push_str("      ansible_python_interpreter: \"{{ ansible_playbook_python }}\"\n");
        inv.push_str(&format!("      plan_install_dir: {}\n", h.dir.join("bin").display()));
        inv.push_str(&format!("      plan_state_dir: {}\n", h.dir.join("state").display()));
        inv.push_str(&format!("      tutor: {}\n", h.venv.join("bin/tutor").display()));
        inv.push_str(&format!("      pip: {}\n", h.venv.join("bin/pip").display()));
        inv.push_str("      plan_env:\n");
        let mut env = h.env();
        if h.name == "h2" {
            // Init fails twice (the plan retries it once): this host's upgrade fails.
            env.push(("DOCKER_FAIL_ON".into(), "aspects-job".into()));
            env.push(("DOCKER_FAIL_TIMES".into(), "2".into()));
        }
        for (k, v) in env {
            inv.push_str(&format!("        {k}: \"{v}\"\n"));
        }
    }
    let inventory = work.file("inventory.yml", &inv);
    let status_dir = work.path().join("status");
    let out = Command::new(ansible.join("bin/ansible-playbook"))
        .arg("-i")
        .arg(&inventory)
        .arg(root().join("examples/fleet/playbook.yml"))
        .args(["-e", &format!("aspects_target={TARGET}"), "-e", "plan_batch=1"])
        .arg("-e")
        .arg(format!("plan_binary={}", bin()))
        .arg("-e")
        .arg(format!("status_dir={}", status_dir.display()))
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_LOCAL_TEMP", work.path().join("ansible-tmp"))
        .env("ANSIBLE_HOME", work.path().join("ansible-home"))
        .output()
        .expect("ansible-playbook");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "the fleet did not stop:\n{log}");

    // h1: upgraded, and its status says so.
    assert_eq!(installed(&hosts[0].venv), TARGET, "{log}");
    let s1 = json(&std::fs::read_to_string(status_dir.join("h1.json")).expect("h1 status"));
    assert_eq!(s1["status"], "succeeded", "{s1}");
    assert_eq!(s1["plan"], "aspects-upgrade");
    // h2: failed at init (after the install), its status collected all the same.
    let s2 = json(&std::fs::read_to_string(status_dir.join("h2.json")).expect("h2 status"));
    assert_eq!(s2["status"], "failed", "{s2}");
    let init = s2["steps"].as_array().expect("steps").iter().find(|s| s["id"] == "init").expect("init");
    assert_eq!(init["status"], "failed", "{s2}");
    // h3: never started.
    assert_eq!(installed(&hosts[2].venv), FROM, "{log}");
    assert!(!status_dir.join("h3.json").exists(), "{log}");
    assert!(!hosts[2].dir.join("state").exists(), "{log}");
    assert!(!hosts[2].dir.join("bin/plan").exists(), "plan was installed on h3:\n{log}");
}
