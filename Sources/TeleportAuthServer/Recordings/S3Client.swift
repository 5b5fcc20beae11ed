public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
public import TeleportAPI
import TeleportAuthClient
import TeleportHTTP

/// A small S3 client for session recordings: `PUT` and `GET` of one object, signed with Signature V4
/// (``AWSSignatureV4``), one HTTP/1.1 request per connection (``HTTP1Exchange``), HTTPS verified
/// against the system's roots unless `insecure=true`, through `HTTPS_PROXY` when set. Every failure
/// is `connectionProblem` with one line naming the cause and the fix: a host's recording upload is
/// then retried later (the recording stays on the host), never refused for good.
public struct S3Client: Sendable {
    public let location: S3Location
    let credentials: @Sendable () throws -> AWSSignatureV4.Credentials
    let timeout: Duration
    let clock: @Sendable () -> Date

    /// A client for `location`; credentials are looked up for every request.
    public init(
        location: S3Location, credentials: @escaping @Sendable () throws -> AWSSignatureV4.Credentials = { try AWSCredentialSource.resolve() },
        timeout: Duration = .seconds(60), clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.location = location
        self.credentials = credentials
        self.timeout = timeout
        self.clock = clock
    }

    /// Stores `data` as `name` (under the prefix).
    public func put(_ name: String, _ data: Data) async throws {
        let reply = try await send("PUT", name, body: data, maxBodyBytes: 1 << 20)
        guard (200..<300).contains(reply.status) else { throw failure(reply, "store", name) }
    }

    /// The object `name`, or nil when there is none; at most `maxBytes`.
    public func get(_ name: String, maxBytes: Int) async throws -> Data? {
        let reply = try await send("GET", name, body: nil, maxBodyBytes: maxBytes)
        if reply.status == 404, Self.errorCode(reply.body) == "NoSuchKey" { return nil }
        guard (200..<300).contains(reply.status) else { throw failure(reply, "read", name) }
        return reply.body
    }

    /// Scheme, host, port, the request path and the Host header of an object.
    func target(_ name: String) -> (secure: Bool, host: String, port: Int, path: String, hostHeader: String) {
        let key = AWSSignatureV4.uriEncode(location.objectKey(name), keepSlash: true)
        if let endpoint = location.endpoint {
            let secure = endpoint.scheme?.lowercased() == "https"
            let host = endpoint.host ?? "127.0.0.1"
            let port = endpoint.port ?? (secure ? 443 : 80)
            var hostHeader = host.contains(":") ? "[" + host + "]" : host
            if let explicit = endpoint.port { hostHeader = HostPort.join(host, explicit) }
            return (secure, host, port, "/\(AWSSignatureV4.uriEncode(location.bucket, keepSlash: false))/\(key)", hostHeader)
        }
        let host = "\(location.bucket).s3.\(location.region).amazonaws.com"
        return (true, host, 443, "/\(key)", host)
    }

    private func send(_ method: String, _ name: String, body: Data?, maxBodyBytes: Int) async throws -> HTTP1Exchange.Reply {
        let credentials = try credentials()
        let (secure, host, port, path, hostHeader) = target(name)
        let now = clock()
        let payload = AWSSignatureV4.sha256Hex(body ?? Data())
        var headers: [(String, String)] = [
            ("Host", hostHeader), ("X-Amz-Date", AWSSignatureV4.amzDate(now)), ("X-Amz-Content-SHA256", payload),
        ]
        if let token = credentials.sessionToken { headers.append(("X-Amz-Security-Token", token)) }
        if body != nil { headers.append(("Content-Type", "application/octet-stream")) }
        let authorization = AWSSignatureV4.authorization(
            .init(method: method, path: path, headers: headers, payloadSHA256: payload), credentials: credentials, region: location.region, date: now)
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        for (name, value) in headers { head.headers.add(name: name, value: value) }
        head.headers.add(name: "Authorization", value: authorization)
        head.headers.add(name: "Content-Length", value: "\(body?.count ?? 0)")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "User-Agent", value: "teleport-swift/\(TeleportVersion.version)")
        var context: NIOSSLContext?
        if secure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = ["http/1.1"]
            if location.insecure { tls.certificateVerification = .none }
            do {
                context = try NIOSSLContext(configuration: tls)
            } catch {
                throw TeleportError.connectionProblem("cannot set up TLS for S3 at \(location.serverName): \(error)")
            }
        }
        let sslContext = context
        let describe = "S3 at \(location.serverName)"
        let requestHead = head
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            let proxies = try OutboundDial.processProxies()
            channel = try await OutboundDial.connect(host: host, port: port, proxies: proxies) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let sslContext {
                        let name = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: sslContext, serverHostname: name))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        } catch {
            throw TeleportError.connectionProblem(
                "cannot reach \(describe) (\(error)); check audit_sessions_uri's endpoint= and that the server runs; the recording is kept and retried")
        }
        do {
            return try await withDeadline(timeout, timeoutMessage: { "\(describe) did not answer in \(timeout)" }) {
                try await channel.executeThenClose { inbound, outbound in
                    try await HTTP1Exchange.perform(
                        inbound: inbound, outbound: outbound, head: requestHead, body: body, maxBodyBytes: maxBodyBytes, describe: describe)
                }
            }
        } catch let error as TeleportError {
            throw TeleportError.connectionProblem("\(error.message); the recording is kept and retried")
        } catch {
            throw TeleportError.connectionProblem("the request to \(describe) failed (\(error)); the recording is kept and retried")
        }
    }

    /// One line for a refused request: S3's error code and message, and what to check.
    func failure(_ reply: HTTP1Exchange.Reply, _ action: String, _ name: String) -> TeleportError {
        let code = Self.errorCode(reply.body) ?? "HTTP \(reply.status)"
        let message = Self.xmlElement("Message", in: reply.body).map { ": \($0)" } ?? ""
        let object = location.display(name)
        let fix: String
        switch code {
        case "NoSuchBucket":
            fix = "bucket \(location.bucket) does not exist at \(location.serverName); create it or fix audit_sessions_uri"
        case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "InvalidClientTokenId":
            fix = "S3 refused the credentials; check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or ~/.aws/credentials)"
        case "AccessDenied":
            fix = "S3 denied access; allow s3:PutObject and s3:GetObject on \(location.display("*")) for these credentials"
        case "AuthorizationHeaderMalformed", "InvalidRegion":
            fix = "the region is wrong; set region= in audit_sessions_uri"
        default:
            fix = "S3 at \(location.serverName) refused it"
        }
        return TeleportError.connectionProblem("cannot \(action) \(object): \(code)\(message); \(fix); the recording is kept and retried")
    }

    static func errorCode(_ body: Data) -> String? { xmlElement("Code", in: body) }

    /// The text of the first `<name>...</name>` in an S3 error document.
    static func xmlElement(_ name: String, in body: Data) -> String? {
        let text = String(decoding: body.prefix(64 * 1024), as: UTF8.self)
        guard let open = text.range(of: "<\(name)>"), let close = text.range(of: "</\(name)>", range: open.upperBound..<text.endIndex) else { return nil }
        let value = text[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespacesAndNewlines)
        return value.isEmpty ? nil : String(value.prefix(300))
    }
}
