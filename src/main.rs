use clap::{Parser, Subcommand};
use ferromq::config::ServeArgs;

#[derive(Parser)]
#[command(
    name = "ferromq",
    version,
    about = "A message queue that speaks the IronMQ v3 REST API, backed by Redis"
)]
struct Cli {
    #[command(subcommand)]
    job: Job,
}

#[derive(Subcommand)]
enum Job {
    /// Serve the IronMQ v3 REST API against REDIS_URL.
    Serve(ServeArgs),
}

/// glibc's allocator showed up at a fifth of the data plane's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    ferromq::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.job {
        Job::Serve(args) => ferromq::serve::run(args).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("ferromq: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
