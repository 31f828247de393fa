//! The gw502ctl binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    gw502ctl::main_entry()
}
