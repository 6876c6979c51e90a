fn main() -> std::process::ExitCode {
    followupd::cli::main()
}
