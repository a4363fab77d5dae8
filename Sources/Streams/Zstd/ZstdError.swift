internal import CPGCloneZstd

/// An error reported by libzstd: its code and its name for it (`ZSTD_getErrorName`).
package struct ZstdError: Error, Sendable, Hashable, CustomStringConvertible {
    package var code: Int
    package var name: String

    init(code: Int) {
        self.code = code
        self.name = String(cString: ZSTD_getErrorName(code))
    }

    package init(code: Int, name: String) {
        self.code = code
        self.name = name
    }

    /// The frame needs a larger window than the decoder allows (a hostile or foreign frame).
    package var isWindowTooLarge: Bool {
        ZSTD_getErrorCode(code) == ZSTD_error_frameParameter_windowTooLarge
    }

    /// The data did not match its checksum or was not a valid frame.
    package var isCorruption: Bool {
        let errorCode = ZSTD_getErrorCode(code)
        return errorCode == ZSTD_error_checksum_wrong || errorCode == ZSTD_error_corruption_detected
            || errorCode == ZSTD_error_prefix_unknown || errorCode == ZSTD_error_literals_headerWrong
            || errorCode == ZSTD_error_dictionary_corrupted
    }

    package var description: String { "zstd: \(name)" }
}

/// Converts a libzstd size-or-error return value, throwing on an error.
@discardableResult
func zstdCheck(_ result: Int) throws(ZstdError) -> Int {
    if ZSTD_isError(result) != 0 {
        throw ZstdError(code: result)
    }
    return result
}
