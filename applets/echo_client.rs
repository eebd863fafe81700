//! `echo-client ADDR[:PORT] [--count N | --bench SECONDS] [MESSAGE...]`

use boxrt::apps::echo::{self, ClientOptions, CLIENT_USAGE, EXIT_FAILED};
use boxrt::cli;

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{CLIENT_USAGE}");
        return 0;
    }
    let opts = match ClientOptions::parse(args) {
        Ok(o) => o,
        Err(e) => return crate::fail(&format!("echo-client: {e}"), e.code()),
    };
    match echo::run_client(&opts, &mut std::io::stdout()) {
        Ok(true) => 0,
        Ok(false) => crate::fail("echo-client: the echo did not match", EXIT_FAILED),
        Err(e) => crate::fail(&format!("echo-client: {e}"), EXIT_FAILED),
    }
}
