import Crypto
import Foundation
import TeleportAPI
import TeleportBackend

/// A single sign-on login in progress, kept in the backend under the SHA-256 of its state for at
/// most ``lifetime`` and used once: the callback consumes it (compare-and-swap to a tombstone)
/// before talking to the provider, so a replayed state or code finds nothing.
struct SSOAuthRequest: Codable, Sendable, Equatable {
    /// How long a login may take in the browser.
    static let lifetime: TimeInterval = 10 * 60

    /// `oidc` or `github`.
    var kind: AuthAPI.SSOKind
    /// The connector's name.
    var connectorID: String
    /// `console` or `web`.
    var mode: AuthAPI.SSOMode
    /// The OIDC nonce the ID token must carry.
    var nonce: String
    /// The PKCE verifier (OIDC).
    var pkceVerifier: String
    /// console: the keys to certify (proved at creation).
    var sshPublicKey: String?
    var tlsPublicKeyPEM: String?
    /// console: the lifetime asked for.
    var ttlSeconds: Double?
    /// console: tsh's callback (with its secret).
    var clientRedirectURL: String?
    /// web: the path to return to.
    var redirectURL: String?
    /// When the request stops being usable.
    var expires: Date
    /// Set on the tombstone that replaces a consumed request.
    var consumed: Bool?

    enum CodingKeys: String, CodingKey {
        case kind, mode, nonce, expires, consumed
        case connectorID = "connector_id"
        case pkceVerifier = "pkce_verifier"
        case sshPublicKey = "ssh_public_key"
        case tlsPublicKeyPEM = "tls_public_key"
        case ttlSeconds = "ttl_seconds"
        case clientRedirectURL = "client_redirect_url"
        case redirectURL = "redirect_url"
    }

    /// The backend key of a state: only its hash is stored.
    static func key(state: String) -> String {
        "/sso/requests/" + SHA256.hash(data: Data(state.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// What a callback may do with a stored record at `now` (pure, for the table tests).
    enum Decision: Equatable {
        /// Use it (after consuming it).
        case use
        /// Refuse with this reason.
        case refuse(String)
    }

    /// Whether a callback of `kind` may use this record at `now`.
    func decide(kind: AuthAPI.SSOKind, now: Date) -> Decision {
        if consumed == true { return .refuse("this login request was already used (a replayed state or code)") }
        if expires <= now { return .refuse("this login request expired; start the login again") }
        if kind != self.kind { return .refuse("this login request belongs to a \(self.kind.rawValue) connector, not \(kind.rawValue)") }
        return .use
    }
}

/// The backend side of ``SSOAuthRequest``: create, and consume once.
struct SSORequestStore: Sendable {
    let backend: any Backend

    /// Stores `request` under `state`.
    func create(state: String, _ request: SSOAuthRequest) async throws {
        try await backend.create(
            Item(key: SSOAuthRequest.key(state: state), value: try ResourceCodec.json(request), expires: request.expires))
    }

    /// The request of `state`, consumed: replaced by a tombstone with compare-and-swap, so of two
    /// concurrent callbacks one wins. Throws `accessDenied` with the reason otherwise.
    func consume(state: String, kind: AuthAPI.SSOKind, now: Date) async throws -> SSOAuthRequest {
        let unknown = TeleportError.accessDenied("unknown or expired login state; start the login again")
        guard state.utf8.count <= 256, let item = try? await backend.get(SSOAuthRequest.key(state: state)) else { throw unknown }
        guard let request = try? ResourceCodec.jsonDecoder().decode(SSOAuthRequest.self, from: item.value) else { throw unknown }
        if case .refuse(let reason) = request.decide(kind: kind, now: now) { throw TeleportError.accessDenied(reason) }
        var tombstone = request
        tombstone.consumed = true
        tombstone.nonce = ""
        tombstone.pkceVerifier = ""
        do {
            try await backend.compareAndSwap(
                expected: item, replacement: Item(key: item.key, value: try ResourceCodec.json(tombstone), expires: item.expires))
        } catch let error as TeleportError where error.code == .compareFailed || error.code == .notFound {
            throw TeleportError.accessDenied("this login request was already used (a replayed state or code)")
        }
        return request
    }
}
