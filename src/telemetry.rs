use tracing_subscriber::filter::{ParseError, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

const DEFAULT_FILTER: &str = "info,actix_server=warn,actix_session=warn";

/// Logs to standard error, as text for people or JSON for log collectors.
pub fn init(format: &str) {
    let asked = std::env::var("PORTCULLIS_LOG").ok();
    let (filter, refused) = match filter(asked.as_deref()) {
        Ok(filter) => (filter, None),
        Err(error) => (default_filter(), Some(error)),
    };
    let registry = tracing_subscriber::registry().with(filter);
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let _ = if format == "json" {
        registry.with(layer.json()).try_init()
    } else {
        registry.with(layer).try_init()
    };
    if let Some(error) = refused {
        tracing::warn!(%error, "PORTCULLIS_LOG is not a list of `level` or `target=level`; logging at {DEFAULT_FILTER}");
    }
}

/// The filter `PORTCULLIS_LOG` asks for. Empty directives are dropped first: `Targets`
/// reads one (`info,`, or an empty variable from a unit file) as "every target at
/// TRACE", where `EnvFilter`, which read this variable before, ignored it.
fn filter(asked: Option<&str>) -> Result<Targets, ParseError> {
    let directives: Vec<&str> = asked
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    if directives.is_empty() {
        return Ok(default_filter());
    }
    directives.join(",").parse()
}

fn default_filter() -> Targets {
    DEFAULT_FILTER.parse().expect("the default filter parses")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn unset_or_empty_logs_at_the_default_levels() {
        for asked in [None, Some(""), Some(" "), Some(",")] {
            let filter = filter(asked).unwrap();
            assert!(filter.would_enable("portcullis", &Level::INFO), "{asked:?}");
            assert!(
                !filter.would_enable("portcullis", &Level::DEBUG),
                "{asked:?}"
            );
            assert!(
                !filter.would_enable("actix_server::worker", &Level::INFO),
                "{asked:?}"
            );
        }
    }

    #[test]
    fn an_empty_directive_does_not_turn_on_trace_for_every_target() {
        let filter = filter(Some("info,actix_server=warn,")).unwrap();
        assert!(filter.would_enable("portcullis", &Level::INFO));
        assert!(!filter.would_enable("portcullis", &Level::TRACE));
        assert!(!filter.would_enable("actix_server", &Level::INFO));
    }

    #[test]
    fn targets_take_their_own_levels() {
        let filter = filter(Some("warn,portcullis::db=debug")).unwrap();
        assert!(filter.would_enable("portcullis::db::inline_reads", &Level::DEBUG));
        assert!(!filter.would_enable("portcullis::routes", &Level::INFO));
        assert!(filter.would_enable("portcullis::routes", &Level::WARN));
    }

    #[test]
    fn a_level_that_is_not_one_is_an_error() {
        assert!(filter(Some("portcullis=loud")).is_err());
    }
}
