import Prometheus

/// S3 client metrics: every attempt by operation and status, retries by reason, latency, body
/// bytes (retried attempts included, so their ratio to the step bytes is the retry amplification),
/// and parts in flight against their limit.
package final class S3Meter: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let received: Counter
    private let sent: Counter
    private let partsInFlight: Gauge
    private let partsInFlightLimit: Gauge

    static let durationBuckets: [Duration] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120].map {
        .milliseconds(Int64($0 * 1000))
    }

    init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
        received = registry.makeCounter(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_received",
                unitName: "bytes_total",
                helpText: "HTTP body bytes received from S3, retried attempts included"
            )
        )
        sent = registry.makeCounter(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_sent",
                unitName: "bytes_total",
                helpText: "HTTP body bytes sent to S3, retried attempts included"
            )
        )
        partsInFlight = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_parts_in_flight",
                unitName: "",
                helpText: "Ranged GETs or part uploads in progress"
            )
        )
        partsInFlightLimit = registry.makeGauge(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_parts_in_flight_limit",
                unitName: "",
                helpText: "Ranged GETs or part uploads allowed at once"
            )
        )
        for operation in [S3Operation.getObject, .uploadPart] {
            _ = duration(operation)
            for reason in RetryReason.allCases { _ = retries(operation, reason) }
        }
    }

    private func duration(_ operation: S3Operation) -> DurationHistogram {
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_request_duration",
                unitName: "seconds",
                helpText: "Duration of S3 requests, from sending to the last body byte"
            ),
            labels: [("operation", operation.rawValue)],
            buckets: Self.durationBuckets
        )
    }

    private func retries(_ operation: S3Operation, _ reason: RetryReason) -> Counter {
        registry.makeCounter(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_retries",
                unitName: "total",
                helpText: "S3 requests retried, by reason"
            ),
            labels: [("operation", operation.rawValue), ("reason", reason.rawValue)]
        )
    }

    /// One attempt: its HTTP status (`nil` when no response arrived), duration and body bytes.
    package func request(_ operation: S3Operation, status: Int?, duration: Duration, sentBytes: Int, receivedBytes: Int)
    {
        registry.makeCounter(
            descriptor: .init(
                namespace: "pgclone",
                metricName: "s3_requests",
                unitName: "total",
                helpText: "S3 HTTP requests, every attempt, by status code ('error' when no response arrived)"
            ),
            labels: [("operation", operation.rawValue), ("code", status.map(String.init) ?? "error")]
        ).increment()
        self.duration(operation).record(duration)
        if sentBytes > 0 { sent.increment(by: Int64(sentBytes)) }
        if receivedBytes > 0 { received.increment(by: Int64(receivedBytes)) }
    }

    package func retried(_ operation: S3Operation, reason: RetryReason) {
        retries(operation, reason).increment()
    }

    package func partStarted() { partsInFlight.increment() }
    package func partFinished() { partsInFlight.decrement() }
    package func setPartLimit(_ limit: Int) { partsInFlightLimit.set(to: Double(limit)) }
}
