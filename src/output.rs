//! Results on standard output. A reader that goes away (`plan runs | head -0`)
//! ends the output, never the program: a broken pipe is not an error here.

use std::io::Write;

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
