//! Writing to the terminal without panicking: `zbx-conform run | head -1` closes stdout
//! after one line, and the standard `println!` then panics ("failed printing to stdout:
//! Broken pipe"). These macros write and ignore failures, so a closed stdout or stderr
//! only silences the output: the run goes on, writes its report files and exits with
//! its own code.

/// `println!` to stdout, ignoring a closed or broken stdout.
#[macro_export]
macro_rules! say {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` to stdout, ignoring a closed or broken stdout.
#[macro_export]
macro_rules! say_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

/// `eprintln!` to stderr, ignoring a closed or broken stderr.
#[macro_export]
macro_rules! complain {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}
