import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import TeleportAPI

/// `tsh proxy app NAME [--port N]`: a plain-HTTP listener on 127.0.0.1 that sends each request
/// to the app through the proxy's web port with the app certificate (TLS, server name = the app's
/// public address), `Host` set to the public address, and its answer back with `Location`s
/// pointing at the public address rewritten to the local address. One connection to the proxy
/// per request; bodies stream both ways.
struct LocalAppProxy: Sendable {
    typealias Local = NIOAsyncChannel<HTTPServerRequestPart, HTTPServerResponsePart>
    typealias Upstream = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>

    /// The proxy's web address.
    let proxyHost: String
    let proxyPort: Int
    /// The app's public address (the TLS server name and `Host`).
    let publicAddr: String
    let tls: NIOSSLContext

    /// `Host` as the proxy and app expect it.
    var publicHost: String { proxyPort == 443 ? publicAddr : "\(publicAddr):\(proxyPort)" }

    /// Binds 127.0.0.1:`port` (0: any free port), calls `ready` with the bound port, and serves
    /// until cancelled.
    func run(port: Int, ready: @Sendable (Int) -> Void) async throws {
        let server: NIOAsyncChannel<Local, Never>
        do {
            server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: "127.0.0.1", port: port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        return try Local(wrappingChannelSynchronously: channel)
                    }
                }
        } catch {
            throw TeleportError.connectionProblem("cannot listen on 127.0.0.1:\(port): \(error) (choose another --port)")
        }
        ready(server.channel.localAddress?.port ?? port)
        try await server.executeThenClose { inbound in
            try await withThrowingDiscardingTaskGroup { group in
                for try await connection in inbound {
                    group.addTask { try? await serve(connection) }
                }
            }
        }
    }

    func serve(_ connection: Local) async throws {
        let localHost = connection.channel.localAddress.map { "127.0.0.1:\($0.port ?? 0)" } ?? "127.0.0.1"
        try await connection.executeThenClose { inbound, outbound in
            var requests = inbound.makeAsyncIterator()
            while let part = try await requests.next() {
                guard case .head(var head) = part else { continue }
                let keepAlive = head.isKeepAlive
                head.headers.replaceOrAdd(name: "Host", value: publicHost)
                head.headers.remove(name: "connection")
                head.headers.remove(name: "expect")
                head.headers.add(name: "Connection", value: "close")
                let upstream: Upstream
                do {
                    upstream = try await connect()
                } catch {
                    while let rest = try await requests.next() { if case .end = rest { break } }
                    try await respond(outbound, status: .badGateway, message: "cannot reach the proxy at \(proxyHost):\(proxyPort): \(error)")
                    continue
                }
                try await upstream.executeThenClose { responses, writer in
                    // The far end may answer and close before the request's end is written.
                    var open = (try? await writer.write(.head(head))) != nil
                    body: while let rest = try await requests.next() {
                        switch rest {
                        case .body(let buffer): if open { open = (try? await writer.write(.body(.byteBuffer(buffer)))) != nil }
                        case .end(let trailers):
                            if open { _ = try? await writer.write(.end(trailers)) }
                            break body
                        case .head: throw TeleportError.badParameter("a request head arrived inside a request body")
                        }
                    }
                    for try await answer in responses {
                        switch answer {
                        case .head(var response):
                            response.headers.remove(name: "connection")
                            if let location = response.headers.first(name: "location"), location.lowercased().hasPrefix("https://\(publicHost.lowercased())") {
                                response.headers.replaceOrAdd(name: "Location", value: "http://\(localHost)" + location.dropFirst("https://\(publicHost)".count))
                            }
                            try await outbound.write(.head(response))
                        case .body(let buffer): try await outbound.write(.body(.byteBuffer(buffer)))
                        case .end(let trailers):
                            try await outbound.write(.end(trailers))
                            return
                        }
                    }
                    throw TeleportError.connectionProblem("the proxy closed the connection before the answer ended")
                }
                if !keepAlive { return }
            }
        }
    }

    func connect() async throws -> Upstream {
        let tls = self.tls
        let serverName = publicAddr
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .connect(host: proxyHost, port: proxyPort) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try Upstream(wrappingChannelSynchronously: channel)
                }
            }
    }

    func respond(_ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>, status: HTTPResponseStatus, message: String) async throws {
        let body = ByteBuffer(string: message + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: "\(body.readableBytes)")
        try await outbound.write(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers)))
        try await outbound.write(.body(.byteBuffer(body)))
        try await outbound.write(.end(nil))
    }
}

extension TSHCommands {
    /// `tsh proxy app NAME [--port N]`: serves the app on 127.0.0.1:N until interrupted, using
    /// the app certificate of `tsh apps login NAME`: plain HTTP for a web app, raw bytes for a TCP
    /// app (`tcp://`, as the proxy lists it).
    public static func proxyApp(_ options: ClientOptions, name: String, port: Int, context: ClientContext) async throws -> Int32 {
        guard (0...65535).contains(port) else { throw TeleportError.badParameter("--port must be 0 to 65535") }
        let files = try appFiles(options, context: context)
        let connection = try appConnection(files, name: name)
        guard let publicAddr = URLComponents(string: connection.uri)?.host else {
            throw TeleportError.badParameter("\(connection.uri) is not the app's address: tsh apps login \(name) again")
        }
        var configuration = TLSConfiguration.makeClientConfiguration()
        do {
            configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(connection.certificate).map { .certificate($0) }
            configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: connection.key, format: .pem))
        } catch {
            throw TeleportError.badParameter("cannot read the app certificate or key (\(connection.certificate)): \(error); tsh apps login \(name) again")
        }
        if connection.insecure {
            configuration.certificateVerification = .none
        }
        configuration.applicationProtocols = ["http/1.1"]
        let session = try session(options, context: context)
        let web = WebClient(transport: try context.userTransport(session.address, session.insecure, session.key), address: session.address)
        guard let listed = try await web.apps(labels: "").first(where: { $0.name == name }) else {
            throw TeleportError.notFound("app \(name) is not registered or your roles do not allow it (tsh apps ls lists your apps)")
        }
        if AppURI.isTCP(listed.spec.uri) {
            let proxy = LocalTCPAppProxy(
                proxyHost: files.profile.webProxyAddress.host, proxyPort: files.profile.webProxyAddress.port, publicAddr: publicAddr,
                tls: try NIOSSLContext(configuration: configuration))
            try await proxy.run(port: port) { bound in
                StandardStreams.out("Proxying TCP connections to \(name) on 127.0.0.1:\(bound)\n")
            }
            return 0
        }
        let proxy = LocalAppProxy(
            proxyHost: files.profile.webProxyAddress.host, proxyPort: files.profile.webProxyAddress.port, publicAddr: publicAddr,
            tls: try NIOSSLContext(configuration: configuration))
        try await proxy.run(port: port) { bound in
            StandardStreams.out("Proxying connections to \(name) on 127.0.0.1:\(bound)\nUse: curl http://127.0.0.1:\(bound)/\n")
        }
        return 0
    }
}
