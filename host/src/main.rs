#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    wirehook::cli::main()
}
