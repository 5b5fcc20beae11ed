import Foundation
public import TeleportAPI

/// The proxy's public JSON API as `tsh` uses it (`/webapi/...`), over any ``ProxyTransport``.
public struct WebClient: Sendable {
    /// The transport.
    public let transport: any ProxyTransport
    /// The proxy's address, for messages.
    public let address: ProxyAddress

    /// Creates a client.
    public init(transport: any ProxyTransport, address: ProxyAddress) {
        self.transport = transport
        self.address = address
    }

    /// `GET /webapi/ping`: the cluster name and authentication settings.
    public func ping() async throws -> WebAPI.PingResponse {
        try decode(WebAPI.PingResponse.self, try await transport.get("/webapi/ping"), what: "ping")
    }

    /// `POST /webapi/ssh/certs`: checks the password (and OTP) and certifies the public keys.
    public func login(_ request: AuthAPI.LoginRequest) async throws -> AuthAPI.LoginResponse {
        let body = try ResourceCodec.json(request)
        return try decode(AuthAPI.LoginResponse.self, try await transport.post(WebAPI.loginPath, body: body), what: "login")
    }

    /// Decodes a 2xx reply as `T`, or turns an error reply into the server's ``TeleportError``.
    func decode<T: Decodable>(_ type: T.Type, _ reply: HTTPReply, what: String) throws -> T {
        guard (200..<300).contains(reply.status) else {
            if let error = try? ResourceCodec.jsonDecoder().decode(AuthAPI.ErrorResponse.self, from: reply.body) {
                throw TeleportError(TeleportError.Code.fromWire(error.error.code), error.error.message)
            }
            if reply.status == 404 {
                throw TeleportError.notFound(
                    "the proxy at \(address) has no \(what) API (HTTP 404); is it a Teleport proxy's web address (port 3080)?")
            }
            let snippet = String(decoding: reply.body.prefix(200), as: UTF8.self)
            throw TeleportError.connectionProblem("the proxy at \(address) answered HTTP \(reply.status) to \(what): \(snippet)")
        }
        do {
            return try ResourceCodec.jsonDecoder().decode(type, from: reply.body)
        } catch {
            throw TeleportError.connectionProblem(
                "the proxy at \(address) sent a \(what) reply that is not understood: \(error); is it a Teleport proxy?")
        }
    }
}
