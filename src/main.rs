use clap::{Parser, Subcommand};
use ferromq::config::{ControllerArgs, ServeArgs, StandaloneArgs};

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
    /// Serve the API and push workers with queues declared in Queue and Subscription
    /// manifests (no Kubernetes needed); starts a redis-server when REDIS_URL is unset.
    Standalone(StandaloneArgs),
    /// Reconcile Queue and Subscription resources into the store (in a cluster).
    Controller(ControllerArgs),
    /// Print the Queue and Subscription CRDs as YAML (the files under crds/).
    Crdgen,
    #[command(flatten)]
    Client(ferromq::cli::Command),
}

/// glibc's allocator showed up at a fifth of the data plane's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    ferromq::telemetry::init();
    ferromq::tls::install_crypto_provider();
    let cli = Cli::parse();
    if let Job::Client(command) = cli.job {
        return ferromq::cli::main(command);
    }
    if let Job::Crdgen = cli.job {
        return match ferromq::k8s::crd_yaml() {
            Ok(yaml) => {
                print!("{yaml}");
                std::process::ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("ferromq: cannot write the CRDs: {err}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    // One thread per core by default; fewer can pay where Redis shares the machine.
    if let Some(threads) = std::env::var("FERROMQ_WORKER_THREADS")
        .ok()
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
    {
        runtime.worker_threads(threads);
    }
    let runtime = match runtime.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ferromq: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.job {
            Job::Serve(args) => ferromq::serve::run(args).await,
            Job::Standalone(args) => ferromq::standalone::run(args).await,
            Job::Controller(args) => ferromq::k8s::operator::run(args).await,
            Job::Crdgen | Job::Client(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("ferromq: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
