import Crypto
import Foundation
import TeleportAPI
import _CryptoExtras

/// Verifies an OpenID Connect ID token (a JWS in compact form), with no I/O: the signature against
/// the provider's keys (RS256 or ES256 only: `alg: none` and HMAC are refused, so a token cannot
/// choose to be unsigned or signed with the public client secret), then `iss` (exactly the
/// configured issuer), `aud` (contains the client id; `azp` when there are several audiences),
/// `exp`, `iat` and `nonce` (the login request's own) against the injected time.
struct IDTokenVerifier: Sendable {
    /// Why a token is refused; `unknownKey` tells the caller to fetch the JWKS again (once).
    enum Failure: Error, Equatable {
        /// No key in the JWKS matches the token's `kid` and algorithm.
        case unknownKey(String?)
        /// Anything else: the reason, a sentence.
        case invalid(String)
    }

    /// The largest token accepted, in bytes.
    static let maxTokenBytes = 64 * 1024
    /// Clock skew allowed on `exp` and `iat`.
    static let leeway: TimeInterval = 60

    /// The issuer the token must name exactly.
    let issuer: String
    /// The client id its audience must contain.
    let clientID: String

    /// A token's parts after parsing, before any check of the signature.
    struct Parsed {
        /// The JOSE header.
        let header: [String: Any]
        /// The claims.
        let claims: [String: JSONValue]
        /// `header.payload`, the signed bytes.
        let signingInput: Data
        /// The signature.
        let signature: Data
    }

    /// Splits and decodes a token; refuses oversize input, a bad shape and any algorithm but RS256/ES256.
    static func parse(_ token: String) throws -> Parsed {
        guard token.utf8.count <= maxTokenBytes else {
            throw Failure.invalid("the ID token is larger than \(maxTokenBytes) bytes")
        }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3 else { throw Failure.invalid("the ID token is not a signed JWT (three dot-separated parts)") }
        guard let headerData = Base64URL.decode(parts[0]),
            let header = (try? JSONSerialization.jsonObject(with: headerData)) as? [String: Any]
        else { throw Failure.invalid("the ID token's header is not base64url JSON") }
        guard let alg = header["alg"] as? String else { throw Failure.invalid("the ID token's header names no algorithm") }
        guard alg == "RS256" || alg == "ES256" else {
            throw Failure.invalid("the ID token's algorithm \"\(alg)\" is refused (only RS256 and ES256 are accepted)")
        }
        if let crit = header["crit"], !(crit is NSNull) { throw Failure.invalid("the ID token's header has critical extensions") }
        guard let payloadData = Base64URL.decode(parts[1]),
            let claims = try? ResourceCodec.jsonDecoder().decode([String: JSONValue].self, from: payloadData)
        else { throw Failure.invalid("the ID token's claims are not base64url JSON") }
        guard let signature = Base64URL.decode(parts[2]), !signature.isEmpty else { throw Failure.invalid("the ID token's signature is missing") }
        return Parsed(header: header, claims: claims, signingInput: Data("\(parts[0]).\(parts[1])".utf8), signature: signature)
    }

    /// Verifies `token` with `keys` at `now`; the claims when every check passed.
    func verify(_ token: String, keys: JSONWebKeySet, nonce: String, now: Date) throws -> [String: JSONValue] {
        let parsed = try Self.parse(token)
        let alg = parsed.header["alg"] as? String ?? ""
        let kid = parsed.header["kid"] as? String
        let candidates = keys.candidates(kid: kid, algorithm: alg)
        guard !candidates.isEmpty else { throw Failure.unknownKey(kid) }
        guard candidates.contains(where: { Self.isValid(parsed.signature, over: parsed.signingInput, key: $0) }) else {
            throw Failure.invalid("the ID token's signature does not verify with the provider's key \(kid.map { "\"\($0)\"" } ?? "")")
        }
        try checkClaims(parsed.claims, nonce: nonce, now: now)
        return parsed.claims
    }

    static func isValid(_ signature: Data, over input: Data, key: JSONWebKeySet.Key) -> Bool {
        switch key {
        case .rsa(let key):
            return key.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: input, padding: .insecurePKCS1v1_5)
        case .p256(let key):
            guard signature.count == 64, let raw = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return key.isValidSignature(raw, for: SHA256.hash(data: input))
        }
    }

    /// The claim checks, after the signature.
    func checkClaims(_ claims: [String: JSONValue], nonce: String, now: Date) throws {
        guard case .string(let iss)? = claims["iss"], iss == issuer else {
            throw Failure.invalid("the ID token's issuer \(Self.show(claims["iss"])) is not \"\(issuer)\"")
        }
        let audiences: [String]
        switch claims["aud"] {
        case .string(let one)?: audiences = [one]
        case .array(let list)?: audiences = list.compactMap(\.stringValue)
        default: audiences = []
        }
        guard audiences.contains(clientID) else {
            throw Failure.invalid("the ID token is for audience \(audiences.map { "\"\($0)\"" }.joined(separator: ", ")), not this connector's client_id \"\(clientID)\"")
        }
        if audiences.count > 1, let azp = claims["azp"], azp.stringValue != clientID {
            throw Failure.invalid("the ID token's authorized party \(Self.show(azp)) is not \"\(clientID)\"")
        }
        guard let exp = Self.seconds(claims["exp"]) else { throw Failure.invalid("the ID token has no exp") }
        guard Date(timeIntervalSince1970: exp).addingTimeInterval(Self.leeway) > now else {
            throw Failure.invalid("the ID token expired at \(RFC3339.format(Date(timeIntervalSince1970: exp)))")
        }
        guard let iat = Self.seconds(claims["iat"]) else { throw Failure.invalid("the ID token has no iat") }
        guard Date(timeIntervalSince1970: iat) <= now.addingTimeInterval(Self.leeway) else {
            throw Failure.invalid("the ID token was issued in the future (\(RFC3339.format(Date(timeIntervalSince1970: iat))))")
        }
        guard case .string(let got)? = claims["nonce"], Self.constantTimeEqual(got, nonce) else {
            throw Failure.invalid("the ID token's nonce does not match this login request")
        }
        guard case .string(let sub)? = claims["sub"], !sub.isEmpty else { throw Failure.invalid("the ID token has no sub") }
    }

    static func seconds(_ value: JSONValue?) -> Double? {
        switch value {
        case .int(let n)?: Double(n)
        case .double(let d)?: d
        default: nil
        }
    }

    static func show(_ value: JSONValue?) -> String {
        guard let value else { return "(none)" }
        return value.stringValue.map { "\"\($0.prefix(200))\"" } ?? "(not a string)"
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for index in x.indices { diff |= x[index] ^ y[index] }
        return diff == 0
    }
}
