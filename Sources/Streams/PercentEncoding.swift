/// RFC 3986 percent-encoding: every byte of `text`'s UTF-8 but the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) and `keeping` becomes `%XX`. This is also what AWS Signature V4 asks for.
package func percentEncode(_ text: String, keeping: Set<UInt8> = []) -> String {
    let hex = Array("0123456789ABCDEF".utf8)
    var result: [UInt8] = []
    result.reserveCapacity(text.utf8.count)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            result.append(byte)
        case _ where keeping.contains(byte):
            result.append(byte)
        default:
            result += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
        }
    }
    return String(decoding: result, as: UTF8.self)
}
