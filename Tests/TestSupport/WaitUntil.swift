/// Waits until `condition` holds, asking every 20 ms; throws `TestSetupError` naming `what` after
/// `limit` (a step the test needs that never came, not a failure of the feature under test).
package func waitUntil(
    _ what: String,
    within limit: Duration = .seconds(60),
    _ condition: () async throws -> Bool
) async throws {
    let deadline = ContinuousClock.now + limit
    while try await !condition() {
        guard ContinuousClock.now < deadline else { throw TestSetupError("\(what) never happened within \(limit)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}
