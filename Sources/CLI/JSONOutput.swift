import Foundation
import PGCloneActors
import PGCloneMetrics

/// Machine-readable results on stdout (`--json`): one JSON document, keys sorted, snake_case.
enum JSONOutput {
    static func print(_ value: some Encodable) throws {
        Swift.print(try encode(value))
    }

    static func encode(_ value: some Encodable) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return String(decoding: try encoder.encode(value), as: UTF8.self)
    }

    /// Seconds per phase of the current run, by the phases' metric names.
    static func phases(_ metrics: PGCloneMetrics) -> [String: Double] {
        Dictionary(
            uniqueKeysWithValues: (metrics.currentJob?.phaseDurations ?? [:]).map {
                ($0.key.rawValue, ($0.value * 1000).rounded() / 1000)
            }
        )
    }

    /// Seconds, to the millisecond.
    static func seconds(_ duration: Duration) -> Double {
        (duration.seconds * 1000).rounded() / 1000
    }

    static func seconds(_ metrics: PGCloneMetrics) -> Double {
        ((metrics.currentJob?.elapsed ?? 0) * 1000).rounded() / 1000
    }

    /// One pg_restore error, with the lines under it.
    struct RestoreError: Encodable {
        var message: String
        var tocEntry: String?
        var detail: String?
        var hint: String?
        var context: String?
        var statement: String?

        init(_ entry: ChildStderr.Entry) {
            message = entry.message
            tocEntry = entry.tocEntry
            detail = entry.detail
            hint = entry.hint
            context = entry.context
            statement = entry.statement
        }
    }

    /// How many owners or privileges of a role were not restored, and why.
    struct RoleTally: Encodable {
        var role: String
        var count: Int
        /// `missing_role`, `not_a_member`, or the server's message.
        var reason: String

        init(_ tally: PrivilegeReport.Tally) {
            role = tally.role
            count = tally.count
            switch tally.refusal {
            case .missingRole: reason = "missing_role"
            case .notAMember: reason = "not_a_member"
            case .other(let message): reason = message
            }
        }
    }

    /// A failed command's result on stdout (`--json`): the error as the one line says it, its
    /// code, the database's state and the lines under it.
    struct Failure: Encodable {
        struct Error: Encodable {
            var code: String
            var message: String
            var exitCode: Int32
            var database: String?
            var databaseState: String?
            var details: [String: String]
        }

        var error: Error
        /// What the command had done before it failed, as its result would say (prune's kept and
        /// deleted dumps); absent for a command that changes nothing or everything at once.
        var result: (any Encodable & Sendable)?

        init(error: Error, result: (any Encodable & Sendable)? = nil) {
            self.error = error
            self.result = result
        }

        private enum CodingKeys: String, CodingKey { case error, result }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(error, forKey: .error)
            if let result { try container.encode(result, forKey: .result) }
        }
    }

    struct Dump: Encodable {
        var key: String
        var database: String
        var config: String
        var storedBytes: Int
        var archiveBytes: Int
        var durationSeconds: Double
        var phases: [String: Double]
    }

    struct Restore: Encodable {
        struct Swap: Encodable {
            var replacedExisting: Bool
            var unavailableSeconds: Double
            var terminatedSessions: Int
        }

        /// The dump key, or `:name` for a local database.
        var source: String
        var database: String
        var storedBytes: Int?
        var archiveBytes: Int?
        var restoreErrors: Int
        var errors: [JSONOutput.RestoreError]
        /// Objects left to the restoring role: their owner in the dump is missing here or not one
        /// the restoring role may assign.
        var ownersNotRestored: [RoleTally]
        /// Privileges of such roles, skipped.
        var privilegesNotRestored: [RoleTally]
        /// Grants such roles made from their grant option, which the objects' owners made instead
        /// (the role is the grantor).
        var grantsMadeByOwners: [RoleTally]
        /// The database's own privileges and owner not given as they were, as the warning says
        /// them: `CONNECT for "x" (no such role here)`, `… (granted by "y") as granted by the owner`.
        var databaseAccessNotRestored: [String]
        /// Objects a REVOKE of the dump had no effect on, for the restoring role does not own them
        /// here (`FUNCTION public.soundex(text)`, `LANGUAGE plpgsql`): they keep privileges the
        /// source revoked. The first 20.
        var revokesWithoutEffect: [String]
        /// How many such objects there were in all.
        var revokesWithoutEffectCount: Int
        /// The names of the target's settings for the whole database that the source has not,
        /// which the restored database therefore has not either (values may be secret).
        var settingsNotKept: [String]
        var swap: Swap
        var durationSeconds: Double
        var phases: [String: Double]
    }
}
