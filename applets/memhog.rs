//! `memhog SIZE [--step SIZE] [--hold SECONDS]`

use boxrt::apps::memhog::{self, USAGE};
use boxrt::cli;

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{USAGE}");
        return 0;
    }
    let result = memhog::parse(args).and_then(|cfg| memhog::run(&cfg, &mut std::io::stdout()));
    match result {
        Ok(()) => 0,
        Err(e) => crate::fail(&format!("memhog: {e}"), e.code()),
    }
}
