import Foundation
import Glibc
import NIOCore
import NIOSSH
public import TeleportAPI
import TeleportCrypto
import TeleportSSH
import TeleportSSHClient

extension TSHCommands {
    /// `tsh proxy ssh [USER@]HOST[:PORT]`: connects standard input and output to a node's SSH port
    /// through the proxy, for OpenSSH's `ProxyCommand` (the SSH session itself is OpenSSH's, end to
    /// end with the node). It goes over TLS to the proxy's web port, authenticated with the user's
    /// X.509 certificate (the tunnel of `ProxyTunnel`), so only the web port needs to be reachable.
    public static func proxySSH(_ options: ClientOptions, target: String, cluster: String?, context: ClientContext) async throws -> Int32 {
        var rest = target
        if let at = rest.lastIndex(of: "@") { rest = String(rest[rest.index(after: at)...]) }
        let parsed = try HostPort.parse(rest, defaultPort: 3022, key: "tsh proxy ssh")
        let session = try TSHCommands.session(options, context: context)
        let transport = try context.userTransport(session.address, session.insecure, session.key)
        // Another cluster: the same refusal as tsh ssh, naming the clusters there are.
        if try await checkCluster(cluster, profileCluster: session.cluster, web: WebClient(transport: transport, address: session.address)),
            let cluster
        {
            return try await proxySSHToLeaf(options, target: target, parsed: parsed, cluster: cluster, context: context)
        }
        guard let client = transport as? ProxyHTTPSClient else {
            throw TeleportError.internalError("tsh proxy ssh needs an HTTPS connection to the proxy")
        }
        var host = parsed.host
        if host.hasSuffix(".\(session.cluster)") { host = String(host.dropLast(session.cluster.count + 1)) }
        let channel = try await client.openTunnel(to: "\(HostPort.join(host, parsed.port))@\(session.cluster)") { channel in
            try channel.pipeline.syncOperations.addHandler(ByteStdoutWriter())
        }
        StandardInputPump.start(
            into: channel, escape: false, wrap: { $0 },
            onEOF: {
                // TLS cannot half-close everywhere: then the whole connection ends with our input.
                channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) }
            })
        try await channel.closeFuture.get()
        return 0
    }

    /// `tsh proxy ssh --cluster=LEAF`: a leaf cluster's node through the root proxy's SSH port and
    /// its `proxy:HOST:PORT@LEAF` subsystem (the root proxy sends the user's SSH certificate, the one
    /// this connection authenticated with, to the leaf; the TLS path carries none).
    static func proxySSHToLeaf(
        _ options: ClientOptions, target: String, parsed: (host: String, port: Int), cluster: String, context: ClientContext
    ) async throws -> Int32 {
        var login = context.localUser ?? ""
        if let at = target.lastIndex(of: "@") { login = String(target[..<at]) }
        guard !login.isEmpty else { throw TeleportError.badParameter("no login: pass LOGIN@HOST") }
        let access = try await NodeAccess.open(options, cluster: cluster, context: context, needNodes: false)
        var credentials = try access.credentials(login: login)
        credentials.target = "node \(parsed.host)"
        let proxy = try await SSHConnection.connect(host: access.proxyHost, port: access.proxyPort, credentials: credentials, hostKey: access.proxyCheck)
        defer { proxy.close() }
        var host = parsed.host
        if host.hasSuffix(".\(cluster)") { host = String(host.dropLast(cluster.count + 1)) }
        let channel = try await proxy.proxyChannel(to: "\(HostPort.join(host, parsed.port))@\(cluster)") { channel in
            try channel.pipeline.syncOperations.addHandlers([SSHChannelDataCodec(), ByteStdoutWriter()])
        }
        StandardInputPump.start(
            into: channel, escape: false, wrap: { $0 },
            onEOF: { channel.close(mode: .output).whenFailure { _ in channel.close(promise: nil) } })
        try await channel.closeFuture.get()
        return 0
    }
}

/// Writes a byte stream of `ByteBuffer`s to standard output (blocking writes).
final class ByteStdoutWriter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        FileDescriptorWriter.writeAll(1, unwrapInboundIn(data))
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { close(1) }
        context.fireUserInboundEventTriggered(event)
    }
}

/// Writes a byte stream to standard output (blocking writes).
final class StdoutWriter: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = SSHChannelData

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let message = unwrapInboundIn(data)
        guard message.type == .channel, case .byteBuffer(let bytes) = message.data else { return }
        FileDescriptorWriter.writeAll(1, bytes)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { close(1) }
        context.fireUserInboundEventTriggered(event)
    }
}
