//! `box ls [--json]`

use boxrt::cli::{self, Arg, Parser};
use boxrt::ls::{self, LS_USAGE};
use boxrt::state::RUN_DIR;

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{LS_USAGE}");
        return 0;
    }
    let mut as_json = false;
    let mut p = Parser::new(args);
    loop {
        match p.next_arg() {
            Ok(None) => break,
            Ok(Some(Arg::Opt(o))) if o == "--json" => as_json = true,
            Ok(Some(Arg::Opt(o))) => {
                let e = cli::unknown(&o);
                return crate::fail(&format!("ls: {e}"), e.code());
            }
            Ok(Some(other)) => {
                return crate::fail(&format!("ls: unexpected argument {other:?}"), 125)
            }
            Err(e) => return crate::fail(&format!("ls: {e}"), e.code()),
        }
    }
    match ls::rows(std::path::Path::new(RUN_DIR)) {
        Ok(rows) => {
            print!(
                "{}",
                if as_json {
                    ls::json(&rows)
                } else {
                    ls::table(&rows)
                }
            );
            0
        }
        Err(e) => crate::fail(&format!("ls: {e}"), e.code()),
    }
}
