//! The logic of the test apps shipped as applets: each is a library module so it can be
//! unit-tested; the applet files only parse and call in.

pub mod echo;
