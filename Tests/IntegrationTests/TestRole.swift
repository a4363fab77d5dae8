import PGCloneTestSupport
import Testing

/// Who runs pgclone: a superuser, or an application role as a managed PostgreSQL gives it (LOGIN
/// CREATEDB, password authentication, not a superuser).
enum TestRole: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case superuser
    case application

    var testDescription: String { rawValue }

    /// `server` as this role: the superuser itself, or a new application role.
    func user(on server: PostgresServer) async throws -> PostgresServer {
        self == .superuser ? server : try await server.createRole("app", attributes: "CREATEDB")
    }
}

extension PostgresServer: CustomTestStringConvertible {
    /// How tests name it in their output (never with the password).
    public var testDescription: String { "\(label) as \(user)" }
}
