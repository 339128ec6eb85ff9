//! The `redrive` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    redrive::cli::main()
}
