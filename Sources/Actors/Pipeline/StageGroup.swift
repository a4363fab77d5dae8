import PGCloneStreams

/// Runs the three stages of a pipeline concurrently, as child tasks of one task group: the first
/// failure that is a root cause cancels the others, and what is thrown is the root cause — not the
/// ``ByteStreamError/consumerTerminated`` or `CancellationError` its neighbours saw as a consequence.
/// A stage whose next stage stopped reading waits for that stage to say why (pg_restore exiting
/// on an archive it cannot read), rather than cancelling it first.
package func runStages<Source: Sendable, Transform: Sendable, Sink: Sendable>(
    source: @escaping @Sendable () async throws -> Source,
    transform: @escaping @Sendable () async throws -> Transform,
    sink: @escaping @Sendable () async throws -> Sink
) async throws -> (Source, Transform, Sink) {
    typealias Outcome = StageOutcome<Source, Transform, Sink>
    return try await withThrowingTaskGroup(of: Outcome.self) { group in
        group.addTask { .source(try await source()) }
        group.addTask { .transform(try await transform()) }
        group.addTask { .sink(try await sink()) }
        var results: (Source?, Transform?, Sink?)
        var errors: [any Error] = []
        while true {
            do {
                guard let outcome = try await group.next() else { break }
                switch outcome {
                case .source(let value): results.0 = value
                case .transform(let value): results.1 = value
                case .sink(let value): results.2 = value
                }
            } catch {
                if !errors.contains(where: isRootCause) && isRootCause(error) { group.cancelAll() }
                errors.append(error)
            }
        }
        if let error = errors.first(where: isRootCause) ?? errors.first {
            throw error
        }
        return (results.0!, results.1!, results.2!)
    }
}

/// Whether `error` says what went wrong, rather than that a neighbouring stage went away.
package func isRootCause(_ error: any Error) -> Bool {
    !(error is CancellationError) && (error as? ByteStreamError) != .consumerTerminated
}

private enum StageOutcome<Source: Sendable, Transform: Sendable, Sink: Sendable>: Sendable {
    case source(Source)
    case transform(Transform)
    case sink(Sink)
}
