//! `echo-server [--port PORT] [--bind ADDR]`

use boxrt::apps::echo::{self, ServerOptions, SERVER_USAGE};
use boxrt::cli;
use std::sync::Arc;

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{SERVER_USAGE}");
        return 0;
    }
    let opts = match ServerOptions::parse(args) {
        Ok(o) => o,
        Err(e) => return crate::fail(&format!("echo-server: {e}"), e.code()),
    };
    // Rust's stdout is line-buffered, so each log line leaves at once even into a pipe.
    let log: echo::Log = Arc::new(|line: &str| println!("{line}"));
    match echo::run_server(&opts, log) {
        Ok(()) => 0,
        Err(e) => crate::fail(&format!("echo-server: {e}"), e.code()),
    }
}
