public import Foundation
import Crypto

/// AWS Signature Version 4 for S3 requests (written here: no SDK), as AWS's "Signature Version 4
/// signing process" describes it: a canonical request (method, URI-encoded path, sorted query,
/// lower-cased sorted headers, the signed header names, the payload's SHA-256), the string to sign
/// (`AWS4-HMAC-SHA256`, the time, the scope `DATE/REGION/s3/aws4_request`, the canonical request's
/// hash), and the signing key derived by HMAC-SHA256 from `"AWS4" + secret` through date, region,
/// service and `aws4_request`. Pure: table-tested against botocore's signer
/// (`AWSSignatureV4Tests`).
public enum AWSSignatureV4 {
    /// Credentials: an access key, its secret and, for temporary credentials, a session token.
    public struct Credentials: Sendable, Equatable {
        public var accessKeyID: String
        public var secretAccessKey: String
        public var sessionToken: String?

        /// Credentials.
        public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
            self.accessKeyID = accessKeyID
            self.secretAccessKey = secretAccessKey
            self.sessionToken = sessionToken
        }
    }

    /// A request to sign: the path as sent (already URI-encoded), the query items, the headers
    /// (`host` among them) and the payload's SHA-256 in hex.
    public struct Request: Sendable {
        public var method: String
        public var path: String
        public var query: [(String, String)]
        public var headers: [(String, String)]
        public var payloadSHA256: String

        /// A request.
        public init(method: String, path: String, query: [(String, String)] = [], headers: [(String, String)], payloadSHA256: String) {
            self.method = method
            self.path = path
            self.query = query
            self.headers = headers
            self.payloadSHA256 = payloadSHA256
        }
    }

    /// The SHA-256 of an empty payload.
    public static let emptyPayloadSHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

    /// Lower-case hex SHA-256 of `data`.
    public static func sha256Hex(_ data: Data) -> String { hex(Data(SHA256.hash(data: data))) }

    /// `20130524T000000Z`.
    public static func amzDate(_ date: Date) -> String { format(date, "yyyyMMdd'T'HHmmss'Z'") }

    /// URI-encodes as AWS does: unreserved characters (`A-Z a-z 0-9 - _ . ~`) stay, every other
    /// byte is `%XX` (upper case); `/` stays when `keepSlash` (object key paths).
    public static func uriEncode(_ text: String, keepSlash: Bool) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where keepSlash:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    /// The canonical request (its lines joined by newlines) and the signed header names.
    public static func canonicalRequest(_ request: Request) -> (text: String, signedHeaders: String) {
        var pairs: [(name: String, value: String)] = []
        for (name, value) in request.query {
            pairs.append((uriEncode(name, keepSlash: false), uriEncode(value, keepSlash: false)))
        }
        pairs.sort { (a: (name: String, value: String), b: (name: String, value: String)) -> Bool in
            a.name == b.name ? a.value < b.value : a.name < b.name
        }
        var encoded: [String] = []
        for pair in pairs { encoded.append(pair.name + "=" + pair.value) }
        let query = encoded.joined(separator: "&")
        var headers: [String: String] = [:]
        for (name, value) in request.headers {
            let key = name.lowercased()
            let trimmed = value.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
            if let earlier = headers[key] {
                headers[key] = earlier + "," + trimmed
            } else {
                headers[key] = trimmed
            }
        }
        let names = headers.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(headers[$0] ?? "")\n" }.joined()
        let signed = names.joined(separator: ";")
        let path: String = request.path.isEmpty ? "/" : request.path
        let lines: [String] = [request.method, path, query, canonicalHeaders, signed, request.payloadSHA256]
        let text = lines.joined(separator: "\n")
        return (text, signed)
    }

    /// The `Authorization` header's value for `request` at `date` in `region` (service `s3`).
    public static func authorization(_ request: Request, credentials: Credentials, region: String, date: Date, service: String = "s3") -> String {
        let (canonical, signed) = canonicalRequest(request)
        let day = format(date, "yyyyMMdd")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let stringToSign = ["AWS4-HMAC-SHA256", amzDate(date), scope, sha256Hex(Data(canonical.utf8))].joined(separator: "\n")
        var key = SymmetricKey(data: Data("AWS4\(credentials.secretAccessKey)".utf8))
        for part in [day, region, service, "aws4_request"] {
            key = SymmetricKey(data: Data(HMAC<SHA256>.authenticationCode(for: Data(part.utf8), using: key)))
        }
        let signature = hex(Data(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)))
        return "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signed), Signature=\(signature)"
    }

    private static func hex(_ data: Data) -> String { data.map { String(format: "%02x", $0) }.joined() }

    private static func format(_ date: Date, _ pattern: String) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = pattern
        return formatter.string(from: date)
    }
}
