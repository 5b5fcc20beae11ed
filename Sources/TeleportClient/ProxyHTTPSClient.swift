public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportAuthClient
import TeleportHTTP
import TeleportCrypto

/// One HTTP reply: status and body.
public struct HTTPReply: Sendable {
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

/// How `tsh` talks to the proxy's public HTTPS API; tests substitute a fake.
public protocol ProxyTransport: Sendable {
    /// `GET path`.
    func get(_ path: String) async throws -> HTTPReply
    /// `POST path` with a JSON body.
    func post(_ path: String, body: Data) async throws -> HTTPReply
}

/// A small HTTPS/1.1 client for the proxy's public API: one connection per request, the server's
/// certificate verified with the system trust store and the host name (or IP address) dialled,
/// unless `insecure`.
///
/// Unlike the auth API client (mutual TLS, cluster CA, fixed server name), the proxy is reached
/// like any web site: users type its public name, and the proxy may present a certificate from a
/// public CA or, in a test cluster, a self-signed one (then only `--insecure` gets through).
public struct ProxyHTTPSClient: ProxyTransport, CustomStringConvertible {
    /// The proxy's address.
    public let address: ProxyAddress
    /// True when the server's certificate is not verified at all (`--insecure`).
    public let insecure: Bool
    let sslContext: NIOSSLContext
    /// The same settings asking for the tunnel's ALPN protocol (`tsh proxy ssh`).
    let tunnelContext: NIOSSLContext
    let timeout: Duration

    public var description: String { "ProxyHTTPSClient(\(address))" }

    /// Creates a client.
    ///
    /// - Parameters:
    ///   - address: The proxy's web address.
    ///   - insecure: Skip certificate verification (`--insecure`).
    ///   - extraTrustedPEMs: CA certificates trusted in addition to the system store (tests).
    ///   - timeout: The limit for one request, connection included.
    ///   - clientKey: The user's key and certificate, presented for calls that need a logged-in
    ///     user (`/webapi/nodes`).
    public init(
        address: ProxyAddress, insecure: Bool, extraTrustedPEMs: [String] = [], timeout: Duration = .seconds(30),
        clientKey: ClientKey? = nil
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        if let clientKey {
            do {
                tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(clientKey.tlsCertificatePEM.utf8)).map { .certificate($0) }
                tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(clientKey.tlsKeyPEM.utf8), format: .pem))
            } catch {
                throw TeleportError.badParameter("the stored certificate cannot be loaded: \(error); run tsh login again")
            }
        }
        if insecure {
            tls.certificateVerification = .none
        } else if !extraTrustedPEMs.isEmpty {
            do {
                let extra = try extraTrustedPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
                tls.additionalTrustRoots = [.certificates(extra)]
            } catch {
                throw TeleportError.badParameter("the extra trusted CA certificates cannot be loaded: \(error)")
            }
        }
        do {
            sslContext = try NIOSSLContext(configuration: tls)
            var tunnel = tls
            tunnel.applicationProtocols = [ProxyTunnelClient.alpnProtocol]
            tunnelContext = try NIOSSLContext(configuration: tunnel)
        } catch {
            throw TeleportError.internalError("cannot set up TLS: \(error)")
        }
        self.address = address
        self.insecure = insecure
        self.timeout = timeout
    }

    public func get(_ path: String) async throws -> HTTPReply {
        try await request(method: .GET, path: path, body: nil)
    }

    public func post(_ path: String, body: Data) async throws -> HTTPReply {
        try await request(method: .POST, path: path, body: body)
    }

    /// The SNI / verification name: nil for IP literals (NIOSSL then checks the certificate's IP
    /// addresses against the peer's address).
    var serverHostname: String? {
        IPAddressBytes.parse(address.host) == nil ? address.host : nil
    }

    func request(method: HTTPMethod, path: String, body: Data?) async throws -> HTTPReply {
        let sslContext = self.sslContext
        let serverHostname = self.serverHostname
        let hostHeader = address.hostPort
        let address = self.address
        let limit = timeout
        return try await withDeadline(limit, timeoutMessage: { "the proxy at \(address) did not answer within \(limit)" }) {
            let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
            let recorder = FirstErrorRecorder()
            do {
                channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                    .connectTimeout(.seconds(10))
                    .connect(host: address.host, port: address.port) { channel in
                        channel.eventLoop.makeCompletedFuture {
                            let handler = try NIOSSLClientHandler(context: sslContext, serverHostname: serverHostname)
                            try channel.pipeline.syncOperations.addHandler(handler)
                            try channel.pipeline.syncOperations.addHandler(recorder)
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                                wrappingChannelSynchronously: channel)
                        }
                    }
            } catch {
                throw Self.convert(error, address: address)
            }
            do {
                return try await channel.executeThenClose { inbound, outbound in
                    var head = HTTPRequestHead(version: .http1_1, method: method, uri: path)
                    head.headers.add(name: "Host", value: hostHeader)
                    head.headers.add(name: "Accept", value: "application/json")
                    head.headers.add(name: "User-Agent", value: "tsh/\(TeleportVersion.version)")
                    if let body {
                        head.headers.add(name: "Content-Type", value: "application/json")
                        head.headers.add(name: "Content-Length", value: "\(body.count)")
                    }
                    head.headers.add(name: "Connection", value: "close")
                    let reply = try await HTTP1Exchange.perform(
                        inbound: inbound, outbound: outbound, head: head, body: body,
                        maxBodyBytes: ResourceCodec.maxDocumentBytes * 4, describe: "the proxy at \(address)")
                    return HTTPReply(status: reply.status, body: reply.body)
                }
            } catch {
                throw Self.convert(recorder.error ?? error, address: address)
            }
        }
    }

    /// A sentence for the TLS failures a user meets, recognised by BoringSSL's reason names in the
    /// error's text (the alerts a proxy sends arrive as `sslError([...])` after the handshake).
    static func tlsSentence(_ text: String, address: ProxyAddress) -> (code: TeleportError.Code, message: String)? {
        let table: [(String, TeleportError.Code, String)] = [
            ("CERTIFICATE_EXPIRED", .accessDenied,
             "the proxy at \(address) refused your certificate because it expired: run tsh login again (for an identity file, "
                + "get a new one with tctl auth sign)"),
            ("CERTIFICATE_REVOKED", .accessDenied, "the proxy at \(address) refused your certificate as revoked: run tsh login again"),
            ("UNKNOWN_CA", .accessDenied,
             "the proxy at \(address) does not trust your certificate (issued by another cluster, or before a CA rotation): run tsh login again"),
            ("BAD_CERTIFICATE", .accessDenied,
             "the proxy at \(address) refused your certificate as bad: run tsh login again"),
            ("UNSUPPORTED_CERTIFICATE", .accessDenied,
             "the proxy at \(address) refused your certificate as unsupported: run tsh login again"),
            ("CERTIFICATE_REQUIRED", .accessDenied,
             "the proxy at \(address) wants a client certificate and none was sent: run tsh login (or pass -i IDENTITY)"),
            ("WRONG_VERSION_NUMBER", .connectionProblem,
             "\(address) does not answer TLS: is it the proxy's web port (3080), not its SSH port or a plain HTTP server?"),
            ("HTTP_REQUEST", .connectionProblem, "\(address) does not answer TLS: is it the proxy's web port (3080)?"),
            ("NO_SHARED_CIPHER", .connectionProblem, "the proxy at \(address) and tsh have no TLS version or cipher in common"),
            ("HANDSHAKE_FAILURE", .connectionProblem,
             "the proxy at \(address) ended the TLS handshake (no version or cipher in common, or it wanted a certificate)"),
            ("PROTOCOL_VERSION", .connectionProblem, "the proxy at \(address) and tsh have no TLS version in common"),
            ("uncleanShutdown", .connectionProblem,
             "the proxy at \(address) closed the TLS connection abruptly (is it a Teleport proxy, and is it healthy?)"),
        ]
        for (needle, code, message) in table where text.contains(needle) { return (code, message) }
        return nil
    }

    /// Turns NIO and TLS errors into one clear ``TeleportError`` line.
    static func convert(_ error: any Error, address: ProxyAddress) -> TeleportError {
        if let teleport = error as? TeleportError { return teleport }
        if let ssl = error as? NIOSSLError, case .handshakeFailed(let reason) = ssl {
            let text = "\(reason)"
            if !text.contains("CERTIFICATE_VERIFY_FAILED"), let sentence = tlsSentence(text, address: address) {
                return TeleportError(sentence.code, sentence.message, cause: error)
            }
            if text.contains("CERTIFICATE_VERIFY_FAILED") {
                return TeleportError(
                    .accessDenied, "the proxy's certificate is not trusted (self-signed?); use --insecure only if you know why",
                    cause: error)
            }
            return TeleportError(.connectionProblem, "the TLS handshake with the proxy at \(address) failed: \(text)", cause: error)
        }
        if let extra = error as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return TeleportError(
                .accessDenied,
                "the proxy's certificate is not valid for \(address.host) (it names another host); use the name it was issued for",
                cause: error)
        }
        if let connect = error as? NIOConnectionError, let first = connect.connectionErrors.first {
            return convert(first.error, address: address)
        }
        if let connect = error as? NIOConnectionError, connect.dnsAAAAError != nil || connect.dnsAError != nil {
            return TeleportError(.connectionProblem, "cannot resolve the proxy host \(address.host)", cause: error)
        }
        if let io = error as? IOError, io.errnoCode == ECONNREFUSED {
            return TeleportError(
                .connectionProblem, "cannot reach the proxy at \(address): connection refused (is the address and port right?)",
                cause: error)
        }
        if error is ChannelError {
            return TeleportError(.connectionProblem, "cannot reach the proxy at \(address): \(error)", cause: error)
        }
        if error is NIOSSLError || error is NIOSSLExtraError || error is BoringSSLError {
            if let sentence = tlsSentence("\(error)", address: address) { return TeleportError(sentence.code, sentence.message, cause: error) }
            return TeleportError(.connectionProblem, "the TLS connection to the proxy at \(address) failed: \(error)", cause: error)
        }
        if let sentence = tlsSentence("\(error)", address: address) { return TeleportError(sentence.code, sentence.message, cause: error) }
        return TeleportError(.connectionProblem, "the request to the proxy at \(address) failed: \(error)", cause: error)
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
