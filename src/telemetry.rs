//! Logging: human-readable by default, JSON lines with `FERROMQ_LOG_FORMAT=json`; the level
//! comes from `RUST_LOG` (default `info`). Spans exported over OpenTelemetry: `spans`.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FERROMQ_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Spans of posts, reserves, deletes and push attempts, exported over OTLP/HTTP when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads the standard `OTEL_*` variables).
/// Off by default, and then every call here is one check of an unset `OnceLock`.
pub mod spans {
    use opentelemetry::trace::{
        Link, Span as _, SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId,
        TraceState, Tracer as _, TracerProvider as _,
    };
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
    use std::sync::OnceLock;
    use std::time::Duration;

    static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();
    static TRACER: OnceLock<SdkTracer> = OnceLock::new();

    /// Starts exporting spans when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; true if it does.
    pub fn init() -> Result<bool, String> {
        let configured = |name: &str| std::env::var(name).is_ok_and(|v| !v.trim().is_empty());
        if !configured("OTEL_EXPORTER_OTLP_ENDPOINT")
            && !configured("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        {
            return Ok(false);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .map_err(|e| format!("OpenTelemetry exporter: {e}"))?;
        let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "ferromq".into());
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build(),
            )
            .build();
        let _ = TRACER.set(provider.tracer("ferromq"));
        let _ = PROVIDER.set(provider);
        Ok(true)
    }

    /// Sends the spans not yet exported (at shutdown).
    pub fn flush() {
        if let Some(provider) = PROVIDER.get() {
            let _ = provider.shutdown_with_timeout(Duration::from_secs(5));
        }
    }

    /// Whether spans are exported.
    pub fn on() -> bool {
        TRACER.get().is_some()
    }

    /// A W3C trace context as the remote parent of a span.
    fn remote(traceparent: &str, tracestate: Option<&str>) -> Option<SpanContext> {
        let mut parts = traceparent.trim().split('-');
        let (_, trace, span, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let context = SpanContext::new(
            TraceId::from_hex(trace).ok()?,
            SpanId::from_hex(span).ok()?,
            TraceFlags::new(u8::from_str_radix(flags, 16).ok()?),
            true,
            tracestate
                .and_then(|s| s.parse::<TraceState>().ok())
                .unwrap_or_default(),
        );
        context.is_valid().then_some(context)
    }

    /// A span under way; ended when dropped.
    pub struct Span(opentelemetry_sdk::trace::Span);

    /// Starts span `name`, a child of the trace context `parent` (`traceparent`, `tracestate`)
    /// when one is given, linked to `links`; `None` when spans are off.
    pub fn start(
        name: &'static str,
        kind: SpanKind,
        parent: Option<(&str, Option<&str>)>,
        links: &[(&str, Option<&str>)],
        attributes: Vec<KeyValue>,
    ) -> Option<Span> {
        let tracer = TRACER.get()?;
        let context = match parent.and_then(|(p, s)| remote(p, s)) {
            Some(parent) => Context::new().with_remote_span_context(parent),
            None => Context::new(),
        };
        let links = links
            .iter()
            .filter_map(|(p, s)| remote(p, *s))
            .map(Link::with_context)
            .collect();
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .with_links(links)
            .start_with_context(tracer, &context);
        Some(Span(span))
    }

    impl Span {
        /// The `traceparent` that makes a request a child of this span.
        pub fn traceparent(&self) -> String {
            let context = self.0.span_context();
            format!(
                "00-{:032x}-{:016x}-{:02x}",
                context.trace_id(),
                context.span_id(),
                context.trace_flags().to_u8()
            )
        }

        pub fn set(&mut self, attribute: KeyValue) {
            self.0.set_attribute(attribute);
        }

        /// Marks the span failed, with why.
        pub fn fail(&mut self, why: String) {
            self.0.set_status(opentelemetry::trace::Status::error(why));
        }
    }

    pub use opentelemetry::KeyValue as Attribute;
    pub use opentelemetry::trace::SpanKind as Kind;
}
