fn main() -> std::process::ExitCode {
    snapkeep::cli::main()
}
