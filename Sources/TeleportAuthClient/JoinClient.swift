public import Crypto
public import Foundation
public import Logging
public import TeleportAPI
import NIOCore
import NIOHTTP1
import TeleportCrypto
import X509

/// Joins a new host to a cluster with a token, as the seed's "Adding Nodes" describes:
/// 1. fetch the host CA certificates (public) from the auth server;
/// 2. check them against the CA pin — before anything secret is sent; without a pin, warn;
/// 3. send the token over TLS verified against that CA and the auth service's name.
public enum JoinClient {
    /// The host CA certificates the auth service at `authServer` publishes for joiners (fetched
    /// without verifying the server: for diagnostics only, e.g. "is my certificate still trusted").
    public static func publishedHostCAs(authServer: String) async throws -> [String] {
        try await publishedHostCAList(authServer: authServer).hostCAPEMs
    }

    /// `GET /v1/join/ca` in full: the host CA certificates and, during a rotation, their
    /// cross-signatures (nothing here is trusted until checked against a CA the host trusts).
    public static func publishedHostCAList(authServer: String) async throws -> AuthAPI.JoinCAResponse {
        let (host, port) = try HostPort.parse(authServer, defaultPort: 3025, key: "--auth-server")
        let discovery = try HTTPSTransport(
            host: host, port: port, identity: nil, trustedCAPEMs: [], serverName: AuthAPI.serverName, timeout: .seconds(15),
            verifyServer: false)
        let reply = try await discovery.request(method: .GET, path: "/v1/join/ca", body: nil)
        guard reply.status == 200, let cas = try? ResourceCodec.jsonDecoder().decode(AuthAPI.JoinCAResponse.self, from: reply.body) else {
            throw TeleportError.connectionProblem("\(authServer) did not answer as a Teleport auth server")
        }
        return cas
    }

    /// Joins and returns the host's identity (its new key, certificate and the cluster's CAs).
    /// `presenting` is a current identity this host already holds (its other role): presented as
    /// the TLS client certificate, it proves the host owns `hostUUID`, which the auth service
    /// otherwise refuses to hand out again.
    public static func join(
        authServer: String, token: String, caPins: [String], role: SystemRole, hostUUID: String, nodeName: String,
        addresses: [String], sshHostPublicKey: String?, presenting: ClientIdentity? = nil, logger: Logger
    ) async throws -> (identity: ClientIdentity, clusterName: String) {
        let (host, port) = try HostPort.parse(authServer, defaultPort: 3025, key: "--auth-server")
        let discovery = try HTTPSTransport(
            host: host, port: port, identity: nil, trustedCAPEMs: [], serverName: AuthAPI.serverName, timeout: .seconds(15),
            verifyServer: false)
        let caReply = try await discovery.request(method: .GET, path: "/v1/join/ca", body: nil)
        guard caReply.status == 200,
            let cas = try? ResourceCodec.jsonDecoder().decode(AuthAPI.JoinCAResponse.self, from: caReply.body), !cas.hostCAPEMs.isEmpty
        else {
            throw TeleportError.connectionProblem("\(authServer) did not answer as a Teleport auth server (check --auth-server)")
        }
        let certificates = try cas.hostCAPEMs.map { try Certificate.fromPEM($0) }
        if caPins.isEmpty {
            let pins = try certificates.map { try CAPin.pin(of: $0) }.joined(separator: ",")
            logger.warning(
                "joining without a CA pin: trusting the auth server's CA on first use; pass --ca-pin=\(pins) (from `tctl status`) to verify it")
        } else {
            let matched = try certificates.contains { certificate in try caPins.contains { try CAPin.matches($0, certificate: certificate) } }
            guard matched else {
                throw TeleportError.accessDenied(
                    "the auth server at \(authServer) presented a CA that does not match --ca-pin; refusing to send the token "
                        + "(check the pin with `tctl status` on the auth server)")
            }
        }
        let key = P256.Signing.PrivateKey()
        let request = AuthAPI.JoinRequest(
            token: token, role: role, hostUUID: hostUUID, nodeName: nodeName, addresses: addresses,
            tlsPublicKeyPEM: key.publicKey.pemRepresentation, sshHostPublicKey: sshHostPublicKey)
        let verified = try HTTPSTransport(
            host: host, port: port, identity: presenting, trustedCAPEMs: cas.hostCAPEMs, serverName: AuthAPI.serverName, timeout: .seconds(30))
        let reply = try await verified.request(method: .POST, path: "/v1/join", body: try ResourceCodec.json(request))
        guard reply.status == 200 else {
            if let error = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: reply.body) {
                throw TeleportError(TeleportError.Code.fromWire(error.error.code), "cannot join the cluster: \(error.error.message)")
            }
            throw TeleportError.connectionProblem("cannot join the cluster: the auth server answered HTTP \(reply.status)")
        }
        let response = try ResourceCodec.jsonDecoder().decode(AuthAPI.JoinResponse.self, from: reply.body)
        let identity = ClientIdentity(
            keyPEM: key.pemRepresentation + "\n", certificatePEM: response.certificatePEM, trustedCAPEMs: response.caPEMs)
        return (identity, response.clusterName)
    }
}
