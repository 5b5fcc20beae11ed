/// Names what a client that does not speak TLS sent to a TLS port, from its first bytes, so the
/// port can answer in the client's own protocol before closing: a plain HTTP request gets an
/// HTTP 400, an SSH client a banner-shaped line.
public enum PlaintextProbe {
    /// What the first bytes are.
    public enum Kind: Sendable, Equatable {
        /// Too few bytes to tell (a prefix of an HTTP method or of `SSH-`).
        case needMoreData
        /// An HTTP/1 request line (`GET / HTTP/1.1`...).
        case http
        /// An SSH identification string (`SSH-2.0-...`).
        case ssh
        /// Anything else.
        case unknown
    }

    static let httpMethods = ["GET ", "POST ", "HEAD ", "PUT ", "DELETE ", "OPTIONS ", "PATCH ", "CONNECT ", "TRACE "]
        .map { Array($0.utf8) }
    static let sshPrefix = Array("SSH-".utf8)

    /// Classifies the bytes received so far.
    public static func classify<Bytes: Collection>(_ bytes: Bytes) -> Kind where Bytes.Element == UInt8 {
        let head = Array(bytes.prefix(8))
        if head.isEmpty { return .needMoreData }
        var couldGrow = false
        for (candidate, kind) in httpMethods.map({ ($0, Kind.http) }) + [(sshPrefix, Kind.ssh)] {
            if head.count >= candidate.count {
                if Array(head.prefix(candidate.count)) == candidate { return kind }
            } else if Array(candidate.prefix(head.count)) == head {
                couldGrow = true
            }
        }
        return couldGrow ? .needMoreData : .unknown
    }
}
