package import Prometheus

/// pgclone's Prometheus registry: every family is registered here with help text, so that
/// `promtool check metrics` passes (the swift-metrics factory route cannot give help text;
/// PLATFORM.md §3). The exporter, pushgateway and textfile delivery come with the metrics stage.
package final class PGCloneMetrics: Sendable {
    package let registry = PrometheusCollectorRegistry()

    package init(version: String) {
        let buildInfo = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "pgclone",
                metricName: "build",
                unitName: "info",
                helpText: "pgclone's version; always 1"
            ),
            labels: [("version", version)]
        )
        buildInfo.set(to: 1)
    }

    /// The exposition, in Prometheus's text format.
    package func render() -> String {
        registry.emitToString()
    }
}
