//! `box container ROOTFS NAME [options] [-- CMD...]`

use boxrt::cli;
use boxrt::spec::{Spec, CONTAINER_USAGE};

pub fn main(args: Vec<String>) -> i32 {
    if cli::wants_help(&args) {
        println!("{CONTAINER_USAGE}");
        return 0;
    }
    let spec = match Spec::parse(args) {
        Ok(s) => s,
        Err(e) => return crate::fail(&format!("container: {e}"), e.code()),
    };
    match boxrt::container::run(&spec) {
        Ok(status) => status,
        Err(e) => crate::fail(&format!("container {}: {e}", spec.name), e.code()),
    }
}
