//! `kafka-server`: see `cli` for the commands.

#[global_allocator]
static ALLOCATOR: kafka_server::Allocator = kafka_server::Allocator;

fn main() -> std::process::ExitCode {
    kafka_server::cli::main()
}
