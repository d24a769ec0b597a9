//! `kafka-server`: see `cli` for the commands.

fn main() -> std::process::ExitCode {
    kafka_server::cli::main()
}
