//! Results on standard output. A reader that goes away (`plan runs | head -0`)
//! ends the output, never the program: a broken pipe is not an error here.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static COLOR: AtomicBool = AtomicBool::new(false);

/// Whether output is coloured: `--color always|never`, or `auto`:
/// `CLICOLOR_FORCE` (set, not `0`) forces it, `NO_COLOR` (set, not empty)
/// turns it off, else colour where stdout is a terminal.
pub fn set_color(choice: crate::cli::Color) {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let on = match choice {
        crate::cli::Color::Always => true,
        crate::cli::Color::Never => false,
        crate::cli::Color::Auto => {
            if var("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                true
            } else if var("NO_COLOR").is_some() {
                false
            } else {
                std::io::IsTerminal::is_terminal(&std::io::stdout())
            }
        }
    };
    COLOR.store(on, Ordering::Relaxed);
}

/// `text` in an ANSI style (`"1;31"` bold red, ...) when colour is on.
pub fn paint(text: &str, style: &str) -> String {
    if COLOR.load(Ordering::Relaxed) { format!("\x1b[{style}m{text}\x1b[0m") } else { text.to_owned() }
}

/// Writes `s` to stdout; a closed pipe is ignored, any other error returned.
pub fn out(s: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(s.as_bytes()).and_then(|_| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r,
    }
}

/// `println!` that survives a closed pipe.
#[macro_export]
macro_rules! outln {
    ($($t:tt)*) => {{
        let _ = $crate::output::out(&format!("{}\n", format_args!($($t)*)));
    }};
}

/// `print!` that survives a closed pipe.
#[macro_export]
macro_rules! outp {
    ($($t:tt)*) => {{
        let _ = $crate::output::out(&format!($($t)*));
    }};
}
