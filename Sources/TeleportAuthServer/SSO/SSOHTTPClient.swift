public import Foundation

/// One outbound HTTP request of the single sign-on flows (discovery, JWKS, token, userinfo,
/// GitHub's API).
public struct SSOHTTPRequest: Sendable, Equatable {
    /// `GET` or `POST`.
    public var method: String
    /// The absolute URL.
    public var url: URL
    /// Header fields.
    public var headers: [(String, String)]
    /// The body (form-encoded for token requests).
    public var body: Data?

    /// Creates a request.
    public init(method: String, url: URL, headers: [(String, String)] = [], body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    public static func == (lhs: SSOHTTPRequest, rhs: SSOHTTPRequest) -> Bool {
        lhs.method == rhs.method && lhs.url == rhs.url && lhs.body == rhs.body
            && lhs.headers.map { "\($0.0): \($0.1)" } == rhs.headers.map { "\($0.0): \($0.1)" }
    }
}

/// A reply: status and body (capped by the client at ``SSOHTTPClient/maxBodyBytes``).
public struct SSOHTTPResponse: Sendable {
    /// The HTTP status code.
    public var status: Int
    /// The body.
    public var body: Data

    /// Creates a reply.
    public init(status: Int, body: Data) {
        self.status = status
        self.body = body
    }
}

/// How the auth service talks to identity providers. ``ProviderHTTPClient`` is the real one;
/// tests may answer in process or point it at a real provider on loopback.
public protocol SSOHTTPClient: Sendable {
    /// Sends `request`; a body larger than the cap is a `limitExceeded` error, never read whole.
    func send(_ request: SSOHTTPRequest) async throws -> SSOHTTPResponse
}

extension SSOHTTPClient {
    /// The largest provider reply read: 1 MiB.
    public static var maxBodyBytes: Int { 1 << 20 }
}
