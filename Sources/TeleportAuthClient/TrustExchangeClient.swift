public import Foundation
public import NIOCore
import NIOHTTP1
public import TeleportAPI

/// The leaf's side of a trust exchange: `POST /webapi/trustedclusters/validate` on the root
/// proxy's web port. The proxy's web certificate is not verified (it is often self-signed); the
/// answer is trusted only when its seal, keyed by the token, verifies (`TrustExchangeSeal`).
public enum TrustExchangeClient {
    /// The name sent as SNI: the host, or (SNI cannot carry an IP address) the cluster's fixed name.
    static func serverName(for host: String) -> String {
        host.contains(":") || host.split(separator: ".").allSatisfy({ Int($0) != nil }) ? AuthAPI.serverName : host
    }

    /// Sends `request` to the root proxy at `webProxyAddr` (`host:port`, default port 3080).
    public static func validate(webProxyAddr: String, request: AuthAPI.ValidateTrustRequest, timeout: TimeAmount = .seconds(15))
        async throws -> AuthAPI.ValidateTrustResponse
    {
        let parsed = try HostPort.parse(webProxyAddr, defaultPort: 3080, key: "spec.web_proxy_addr")
        let transport = try HTTPSTransport(
            host: parsed.host, port: parsed.port, identity: nil, trustedCAPEMs: [], serverName: Self.serverName(for: parsed.host), timeout: timeout,
            verifyServer: false, alpnProtocols: ["http/1.1"])
        let reply: HTTPSTransport.Reply
        do {
            reply = try await transport.request(method: .POST, path: "/webapi/trustedclusters/validate", body: try ResourceCodec.json(request))
        } catch let error as TeleportError {
            throw TeleportError(
                error.code,
                "cannot reach the root cluster's proxy at \(webProxyAddr) (spec.web_proxy_addr): \(error.message)")
        }
        guard (200..<300).contains(reply.status) else {
            if let error = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: reply.body) {
                throw TeleportError(TeleportError.Code.fromWire(error.error.code), "the root cluster refused the trust: \(error.error.message)")
            }
            throw TeleportError.connectionProblem(
                "\(webProxyAddr) (spec.web_proxy_addr) answered HTTP \(reply.status): is it the root cluster's proxy web address?")
        }
        do {
            return try ResourceCodec.jsonDecoder().decode(AuthAPI.ValidateTrustResponse.self, from: reply.body)
        } catch {
            throw TeleportError.connectionProblem("\(webProxyAddr) (spec.web_proxy_addr) sent an answer that is not a trust exchange")
        }
    }
}
