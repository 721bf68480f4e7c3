use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let config = agentport::Config::parse();
    agentport::redact::register_config(&config);
    agentport::telemetry::init_logging(config.log_format);
    match agentport::run(config, agentport::shutdown::on_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
