public import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAPI
import TeleportAuthClient
import TeleportHTTP

/// The real ``SSOHTTPClient``: one HTTP/1.1 request per connection, HTTPS verified against the
/// system's trust store (plus `extraTrustedCAPEMs`), plain HTTP only to loopback hosts (the
/// connectors' URL rules), replies capped at 1 MiB, 15 s per request, through `HTTPS_PROXY` when set.
public struct ProviderHTTPClient: SSOHTTPClient {
    let extraTrustedCAPEMs: [String]
    let timeout: Duration

    /// Creates the client.
    public init(extraTrustedCAPEMs: [String] = [], timeout: Duration = .seconds(15)) {
        self.extraTrustedCAPEMs = extraTrustedCAPEMs
        self.timeout = timeout
    }

    public func send(_ request: SSOHTTPRequest) async throws -> SSOHTTPResponse {
        let url = request.url
        guard let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            throw TeleportError.badParameter("\(url.absoluteString) is not an absolute URL")
        }
        let secure = scheme == "https"
        guard secure || (scheme == "http" && ConnectorURL.isLoopback(host: host)) else {
            throw TeleportError.badParameter("\(url.absoluteString): only https (or http to a loopback host) is used to reach a provider")
        }
        let port = url.port ?? (secure ? 443 : 80)
        var sslContext: NIOSSLContext?
        if secure {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.minimumTLSVersion = .tlsv12
            tls.applicationProtocols = ["http/1.1"]
            if !extraTrustedCAPEMs.isEmpty {
                let extra = try extraTrustedCAPEMs.flatMap { try NIOSSLCertificate.fromPEMBytes(Array($0.utf8)) }
                tls.additionalTrustRoots = [.certificates(extra)]
            }
            sslContext = try NIOSSLContext(configuration: tls)
        }
        let context = sslContext
        let describe = "the identity provider at \(HostPort.join(host, port))"
        var path = url.path.isEmpty ? "/" : url.path
        if let query = url.query { path += "?" + query }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: request.method), uri: path)
        head.headers.add(name: "Host", value: url.port.map { "\(host):\($0)" } ?? host)
        head.headers.add(name: "User-Agent", value: "teleport-swift/\(TeleportVersion.version)")
        head.headers.add(name: "Connection", value: "close")
        head.headers.add(name: "Content-Length", value: "\(request.body?.count ?? 0)")
        for (name, value) in request.headers { head.headers.add(name: name, value: value) }
        let body = request.body
        let requestHead = head
        let proxies = try OutboundDial.processProxies()
        let channel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        do {
            channel = try await OutboundDial.connect(host: host, port: port, proxies: proxies) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let context {
                        let name = host.contains(":") || host.allSatisfy({ $0.isNumber || $0 == "." }) ? nil : host
                        try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: context, serverHostname: name))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(wrappingChannelSynchronously: channel)
                }
            }
        } catch let error as TeleportError {
            throw error
        } catch {
            throw TeleportError.connectionProblem("cannot reach \(describe): \(error)")
        }
        let reply = try await withDeadline(timeout, timeoutMessage: { "\(describe) did not answer in time" }) {
            try await channel.executeThenClose { inbound, outbound in
                try await HTTP1Exchange.perform(
                    inbound: inbound, outbound: outbound, head: requestHead, body: body, maxBodyBytes: Self.maxBodyBytes, describe: describe)
            }
        }
        return SSOHTTPResponse(status: reply.status, body: reply.body)
    }
}
