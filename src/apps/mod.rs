//! The logic of the test apps shipped as applets: small programs that prove what box does
//! from inside a container. Each module parses its arguments and runs, writing its report to
//! a `Write` so unit tests can read it; applets/<name>.rs is the thin wrapper.

pub mod cpuburn;
pub mod echo;
pub mod memhog;
