/// A failure of the S3 client that is not S3's answer (``S3ServiceError``) or a transfer's
/// (``PartialTransfer``): a setting it cannot use, a credential source that failed, a response it
/// cannot read, a part it cannot spool. The storage stage turns it into the error the user sees.
package struct S3ClientError: Error, Sendable, CustomStringConvertible {
    package enum Kind: Sendable, Hashable {
        /// A setting or file the user controls is wrong (exit 2, nothing done).
        case configuration
        /// S3, a credential source or the local spool failed.
        case unavailable
    }

    package var kind: Kind
    /// One line saying what is wrong and how to fix it.
    package var message: String
    package var cause: (any Error & Sendable)?

    package init(_ kind: Kind, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.cause = cause
    }

    package var description: String { message }
}
