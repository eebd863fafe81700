//! `cpuburn [--threads N] [--seconds S]`

use boxrt::apps::cpuburn::{self, USAGE};
use boxrt::cli;

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{USAGE}");
        return 0;
    }
    match cpuburn::parse(args).and_then(|cfg| cpuburn::run(&cfg)) {
        Ok(report) => {
            println!("{report}");
            0
        }
        Err(e) => crate::fail(&format!("cpuburn: {e}"), e.code()),
    }
}
