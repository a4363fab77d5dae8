internal import CPGCloneCurl
import Synchronization

/// One libcurl easy handle and the transfer it performs. Not thread-safe: configured, performed and
/// read by one thread at a time (the transfer's own).
final class CurlEasyHandle {
    private let handle: UnsafeMutableRawPointer
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// `CURLOPT_ERRORBUFFER`: libcurl writes into it for as long as the handle lives, so it is
    /// memory of this object's own (a Swift array's storage may not escape the closure that lends it).
    private let errorBuffer: UnsafeMutablePointer<CChar>

    /// `curl_global_init` must run once before any thread uses libcurl (PLATFORM.md §0).
    static let globalInit: Void = {
        curl_global_init(Int(CURL_GLOBAL_ALL))
    }()

    init() throws {
        _ = Self.globalInit
        guard let handle = curl_easy_init() else {
            throw CurlError(CURLE_FAILED_INIT)
        }
        self.handle = handle
        errorBuffer = .allocate(capacity: Int(CURL_ERROR_SIZE) + 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
        // Off the main thread the resolver's timeout must not use signals.
        try set(CURLOPT_NOSIGNAL, 1)
        try check(CPGCloneCurl_easy_setopt_pointer(handle, CURLOPT_ERRORBUFFER, errorBuffer))
    }

    deinit {
        curl_easy_cleanup(handle)
        if let headerList { curl_slist_free_all(headerList) }
        errorBuffer.deallocate()
    }

    func set(_ option: CURLoption, _ value: Int) throws {
        try check(CPGCloneCurl_easy_setopt_long(handle, option, value))
    }

    func set(_ option: CURLoption, offset value: Int64) throws {
        try check(CPGCloneCurl_easy_setopt_off_t(handle, option, curl_off_t(value)))
    }

    /// libcurl copies string options (except POSTFIELDS, which pgclone does not use).
    func set(_ option: CURLoption, _ value: String) throws {
        try check(CPGCloneCurl_easy_setopt_string(handle, option, value))
    }

    func set(_ option: CURLoption, pointer value: UnsafeMutableRawPointer?) throws {
        try check(CPGCloneCurl_easy_setopt_pointer(handle, option, value))
    }

    func set(_ option: CURLoption, callback value: CPGCloneCurl_data_callback) throws {
        try check(CPGCloneCurl_easy_setopt_data_callback(handle, option, value))
    }

    func set(_ option: CURLoption, progress value: CPGCloneCurl_progress_callback) throws {
        try check(CPGCloneCurl_easy_setopt_progress_callback(handle, option, value))
    }

    /// Request headers, `Name: value` each. Every one of them is signed by SigV4.
    func setHeaders(_ headers: [String]) throws {
        if let headerList { curl_slist_free_all(headerList) }
        headerList = nil
        for header in headers {
            headerList = curl_slist_append(headerList, header)
        }
        try check(CPGCloneCurl_easy_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList))
    }

    /// Runs the transfer on the calling thread (which it blocks).
    func perform() throws(CurlError) {
        errorBuffer[0] = 0
        let code = curl_easy_perform(handle)
        guard code == CURLE_OK else {
            throw CurlError(code, detail: String(cString: errorBuffer))
        }
    }

    var responseCode: Int {
        var code = 0
        _ = CPGCloneCurl_easy_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &code)
        return code
    }

    private func check(_ code: CURLcode) throws(CurlError) {
        guard code == CURLE_OK else { throw CurlError(code) }
    }
}

/// The version of the linked libcurl, e.g. `7.88.1`.
package var curlVersion: String {
    let description = String(cString: curl_version())
    return description.split(separator: " ").first?.split(separator: "/").last.map(String.init) ?? description
}
