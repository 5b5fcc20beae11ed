import Foundation
public import NIOCore
import NIOHTTP1
public import TeleportAPI

/// Proxy discovery for agents: `GET /webapi/ping` on an address that may be a proxy's web port.
/// The certificate is not verified (it may be self-signed): the answer only says where to dial;
/// the reverse tunnel itself is verified by mutual TLS against the cluster's host CA.
public enum ProxyPing {
    /// What a proxy's ping tells an agent.
    public struct Answer: Sendable, Equatable {
        /// The cluster name.
        public var clusterName: String
        /// `proxy.tunnel_public_addr`, when the proxy reports it.
        public var tunnelPublicAddr: String?
    }

    /// Pings `address` (`host:port`); throws when it does not answer as a proxy.
    public static func fetch(address: String, timeout: TimeAmount = .seconds(3)) async throws -> Answer {
        let parsed = try HostPort.parse(address, defaultPort: 3080, key: "proxy_server")
        let transport = try HTTPSTransport(
            host: parsed.host, port: parsed.port, identity: nil, trustedCAPEMs: [], serverName: AuthAPI.serverName, timeout: timeout,
            verifyServer: false, alpnProtocols: ["http/1.1"])
        let reply = try await transport.request(method: .GET, path: "/webapi/ping", body: nil)
        guard reply.status == 200,
            let object = try? JSONSerialization.jsonObject(with: reply.body) as? [String: Any],
            let cluster = object["cluster_name"] as? String
        else {
            throw TeleportError.notFound("\(address) does not answer /webapi/ping as a Teleport proxy (status \(reply.status))")
        }
        let proxy = object["proxy"] as? [String: Any]
        return Answer(clusterName: cluster, tunnelPublicAddr: proxy?["tunnel_public_addr"] as? String)
    }
}
