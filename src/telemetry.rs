use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_FILTER: &str = "info,actix_server=warn,actix_session=warn";

/// Logs to standard error, as text for people or JSON for log collectors.
pub fn init(format: &str) {
    let asked = std::env::var("PORTCULLIS_LOG").ok();
    let parsed = asked.as_deref().map(str::parse::<Targets>);
    let filter = match &parsed {
        Some(Ok(filter)) => filter.clone(),
        _ => DEFAULT_FILTER.parse().expect("the default filter parses"),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if format == "json" {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    if let Some(Err(error)) = parsed {
        tracing::warn!(%error, "PORTCULLIS_LOG is not a list of `level` or `target=level`; logging at {DEFAULT_FILTER}");
    }
}
