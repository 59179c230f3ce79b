//! Embeds every plan under `plans/` in the binary, so an installed `plan`
//! needs no checkout to find the shipped plans.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let plans = root.join("plans");
    println!("cargo:rerun-if-changed={}", plans.display());
    let mut files = Vec::new();
    collect(&plans, &mut files);
    files.sort();
    let mut code = String::from("pub static EMBEDDED_PLANS: &[(&str, &str)] = &[\n");
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let rel = f.strip_prefix(&root).expect("under the manifest dir");
        writeln!(code, "    ({:?}, include_str!({:?})),", rel.display().to_string(), f.display().to_string())
            .expect("write to string");
    }
    code.push_str("];\n");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("embedded_plans.rs");
    std::fs::write(out, code).expect("write embedded_plans.rs");
}
