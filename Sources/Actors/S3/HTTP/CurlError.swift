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

    /// The transfer stalled (no byte within the stall timeout) or timed out.
    package var isTimeout: Bool { code == Int(CURLE_OPERATION_TIMEDOUT.rawValue) }

    /// TLS refused the server: its certificate did not verify against the CA bundle, or the bundle
    /// or a client certificate could not be used. Trying again never helps.
    package var isTLSVerificationFailure: Bool {
        [
            CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CACERT_BADFILE, CURLE_SSL_CERTPROBLEM, CURLE_SSL_ISSUER_ERROR,
            CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_CRL_BADFILE,
        ].map { Int($0.rawValue) }.contains(code)
    }
}
