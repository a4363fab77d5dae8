internal import CPGCloneCurl

/// A failed libcurl transfer: its `CURLcode` and message (`curl_easy_strerror`, plus the error buffer).
package struct CurlError: Error, Sendable, CustomStringConvertible {
    package var code: Int
    package var message: String

    init(_ code: CURLcode, detail: String = "") {
        self.code = Int(code.rawValue)
        let base = String(cString: curl_easy_strerror(code))
        self.message = detail.isEmpty || detail == base ? base : "\(base): \(detail)"
    }

    package var description: String { message }

    /// The transfer was stopped by pgclone (cancellation).
    package var isAbortedByCallback: Bool { code == Int(CURLE_ABORTED_BY_CALLBACK.rawValue) }
    /// The transfer stalled (no byte within the stall timeout) or timed out.
    package var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }

    /// No connection could be made (refused, DNS, timeout connecting).
    package var isConnectionFailure: Bool {
        [CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_COULDNT_RESOLVE_PROXY].map { Int($0.rawValue) }
            .contains(code)
    }
}
