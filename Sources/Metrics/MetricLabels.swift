/// The bounded label values of pgclone's metrics (METRICS.md §4.1). Every metric that takes one of
/// these labels is created for all its values up front, at 0, so no series is ever missing.

/// A pipeline step (label `step`).
package enum Step: String, CaseIterable, Sendable {
    case dumpStdout = "dump_stdout"
    case compress
    case upload
    case download
    case decompress
    case restoreStdin = "restore_stdin"

    /// Steps that only produce into a stream (their input is what they read from outside) or only
    /// consume from one (their output is what they hand outside): both sides count the same bytes.
    var isSource: Bool { self == .dumpStdout || self == .download }
    var isSink: Bool { self == .upload || self == .restoreStdin }
}

/// A bounded stream between two steps (label `buffer`).
package enum Buffer: String, CaseIterable, Sendable {
    case dumpToCompress = "dump_to_compress"
    case compressToUpload = "compress_to_upload"
    case uploadParts = "upload_parts"
    case downloadParts = "download_parts"
    case downloadToDecompress = "download_to_decompress"
    case decompressToRestore = "decompress_to_restore"
}

/// The command a job summary is about (label `command`).
package enum Command: String, CaseIterable, Sendable {
    case dump, restore, copy
}

/// How a run ended (label `outcome`), a state set: 1 for the actual one, 0 for the others.
package enum Outcome: String, CaseIterable, Sendable {
    case running
    case success
    case hookFailed = "hook_failed"
    case restoreErrors = "restore_errors"
    case storageError = "storage_error"
    case databaseError = "database_error"
    case lockBusy = "lock_busy"
    case aborted
    /// Usage, configuration or privileges: refused before anything was done.
    case invalidConfiguration = "invalid_configuration"
    case internalError = "internal_error"
}

/// A protocol step of a run (label `phase`).
package enum Phase: String, CaseIterable, Sendable {
    case lockWait = "lock_wait"
    case preDumpHooks = "pre_dump_hooks"
    case dump
    case prepare
    /// Creating `D__temp` (its locale, owner), before the first byte is restored.
    case createTemporary = "create_temporary"
    case restore
    /// A restore in pieces (`--jobs` with an indexed dump): the schema, before the data.
    case restoreSchema = "restore_schema"
    /// The tables' data in N COPY sessions, and sequences and large objects.
    case restoreData = "restore_data"
    /// Indexes, constraints but foreign keys, triggers and the rest of post-data, N at a time.
    case restoreIndexes = "restore_indexes"
    /// Foreign keys, N at a time; then privileges and materialized views' data.
    case restoreConstraints = "restore_constraints"
    case settings
    case snapshot
    case preSwapHooks = "pre_swap_hooks"
    case swap
    case cleanup
}

/// An S3 API call (label `operation`).
package enum S3Operation: String, CaseIterable, Sendable {
    case headObject = "HeadObject"
    case getObject = "GetObject"
    case listObjectsV2 = "ListObjectsV2"
    case createMultipartUpload = "CreateMultipartUpload"
    case uploadPart = "UploadPart"
    case completeMultipartUpload = "CompleteMultipartUpload"
    case abortMultipartUpload = "AbortMultipartUpload"
    case putObject = "PutObject"
    case deleteObject = "DeleteObject"
}

/// Why an S3 request was retried (label `reason`).
package enum RetryReason: String, CaseIterable, Sendable {
    case throttled
    case serverError = "server_error"
    case timeout
    case connection
    case shortRead = "short_read"
}

/// The kind of a hook (label `phase` of the hook metrics) and how it ended (label `outcome`).
package enum HookPhase: String, CaseIterable, Sendable {
    case preDump = "pre_dump"
    case preSwap = "pre_swap"
}

package enum HookOutcome: String, CaseIterable, Sendable {
    case success, failure
}
