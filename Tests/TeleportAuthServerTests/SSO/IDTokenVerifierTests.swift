import Crypto
import Foundation
import TeleportAPI
import Testing
import _CryptoExtras

@testable import TeleportAuthServer

/// The ID token verifier, pure: every attack on the token is refused with its reason.
@Suite("OIDC ID token verifier")
struct IDTokenVerifierTests {
    typealias P = TestIdentityProvider
    static let now = Date(timeIntervalSince1970: 1_800_000_000)
    static let ecKey = P256.Signing.PrivateKey()
    static let verifier = IDTokenVerifier(issuer: "https://idp.example.com", clientID: "teleport")

    static var keys: JSONWebKeySet {
        let document: [String: Any] = [
            "keys": [P.jwk(P.rsaKey.publicKey, kid: "rsa-1"), P.jwk(ecKey.publicKey, kid: "ec-1"), ["kty": "oct", "k": "c2VjcmV0", "kid": "hmac"]]
        ]
        // swift-format-ignore
        return (try? JSONWebKeySet(json: (try? JSONSerialization.data(withJSONObject: document)) ?? Data())) ?? { fatalError("jwks") }()
    }

    static func claims(_ changes: [String: Any] = [:]) -> [String: Any] {
        var claims: [String: Any] = [
            "iss": "https://idp.example.com", "aud": "teleport", "sub": "sub-1", "nonce": "n-1",
            "iat": Int(now.timeIntervalSince1970) - 10, "exp": Int(now.timeIntervalSince1970) + 300,
        ]
        for (key, value) in changes { claims[key] = value }
        return claims.filter { !($0.value is NSNull) }
    }

    enum Case: String, CaseIterable, CustomTestStringConvertible {
        case goodRS256, goodES256, audienceList, algNone, hs256WithSecret, unknownKid, otherKeySameKid, wrongAudience, azpOther,
            expired, futureIat, wrongNonce, missingNonce, wrongIssuer, badSignature, oversized, twoParts, critHeader, noSub
        var testDescription: String { rawValue }
    }

    static func token(_ c: Case) -> String {
        let rsa = ["alg": "RS256", "kid": "rsa-1"]
        switch c {
        case .goodRS256: return P.token(header: rsa, claims: claims(), signer: .rsa(P.rsaKey))
        case .goodES256: return P.token(header: ["alg": "ES256", "kid": "ec-1"], claims: claims(), signer: .p256(ecKey))
        case .audienceList: return P.token(header: rsa, claims: claims(["aud": ["other", "teleport"], "azp": "teleport"]), signer: .rsa(P.rsaKey))
        case .algNone: return P.token(header: ["alg": "none"], claims: claims(), signer: .none)
        case .hs256WithSecret: return P.token(header: ["alg": "HS256", "kid": "hmac"], claims: claims(), signer: .hmac(Data("secret".utf8)))
        case .unknownKid: return P.token(header: ["alg": "RS256", "kid": "rsa-9"], claims: claims(), signer: .rsa(P.otherRSAKey))
        case .otherKeySameKid: return P.token(header: rsa, claims: claims(), signer: .rsa(P.otherRSAKey))
        case .wrongAudience: return P.token(header: rsa, claims: claims(["aud": "someone-else"]), signer: .rsa(P.rsaKey))
        case .azpOther: return P.token(header: rsa, claims: claims(["aud": ["other", "teleport"], "azp": "other"]), signer: .rsa(P.rsaKey))
        case .expired: return P.token(header: rsa, claims: claims(["exp": Int(now.timeIntervalSince1970) - 61]), signer: .rsa(P.rsaKey))
        case .futureIat: return P.token(header: rsa, claims: claims(["iat": Int(now.timeIntervalSince1970) + 120]), signer: .rsa(P.rsaKey))
        case .wrongNonce: return P.token(header: rsa, claims: claims(["nonce": "n-2"]), signer: .rsa(P.rsaKey))
        case .missingNonce: return P.token(header: rsa, claims: claims(["nonce": NSNull()]), signer: .rsa(P.rsaKey))
        case .wrongIssuer: return P.token(header: rsa, claims: claims(["iss": "https://idp.example.com/"]), signer: .rsa(P.rsaKey))
        case .badSignature:
            let good = P.token(header: rsa, claims: claims(), signer: .rsa(P.rsaKey))
            let forged = P.token(header: rsa, claims: claims(["sub": "admin"]), signer: .rsa(P.rsaKey))
            let parts = good.split(separator: ".")
            let forgedParts = forged.split(separator: ".")
            return "\(parts[0]).\(forgedParts[1]).\(parts[2])"
        case .oversized:
            return P.token(header: rsa, claims: claims(["groups": String(repeating: "g", count: 10 * 1024 * 1024)]), signer: .rsa(P.rsaKey))
        case .twoParts: return "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0"
        case .critHeader: return P.token(header: ["alg": "RS256", "kid": "rsa-1", "crit": ["exp"]], claims: claims(), signer: .rsa(P.rsaKey))
        case .noSub: return P.token(header: rsa, claims: claims(["sub": NSNull()]), signer: .rsa(P.rsaKey))
        }
    }

    /// nil: accepted; else a word the refusal must contain.
    static func expected(_ c: Case) -> IDTokenVerifier.Failure? {
        switch c {
        case .goodRS256, .goodES256, .audienceList: nil
        case .algNone: .invalid("algorithm \"none\" is refused")
        case .hs256WithSecret: .invalid("algorithm \"HS256\" is refused")
        case .unknownKid: .unknownKey("rsa-9")
        case .otherKeySameKid, .badSignature: .invalid("signature does not verify")
        case .wrongAudience: .invalid("not this connector's client_id")
        case .azpOther: .invalid("authorized party")
        case .expired: .invalid("expired")
        case .futureIat: .invalid("issued in the future")
        case .wrongNonce, .missingNonce: .invalid("nonce does not match")
        case .wrongIssuer: .invalid("issuer")
        case .oversized: .invalid("larger than")
        case .twoParts: .invalid("three dot-separated parts")
        case .critHeader: .invalid("critical")
        case .noSub: .invalid("no sub")
        }
    }

    @Test("tokens and attacks", arguments: Case.allCases)
    func table(_ c: Case) throws {
        let token = Self.token(c)
        let keys = Self.keys
        let result: Result<[String: JSONValue], IDTokenVerifier.Failure>
        do {
            result = .success(try Self.verifier.verify(token, keys: keys, nonce: "n-1", now: Self.now))
        } catch let failure as IDTokenVerifier.Failure {
            result = .failure(failure)
        }
        switch (result, Self.expected(c)) {
        case (.success(let claims), nil):
            #expect(claims["sub"]?.stringValue == "sub-1")
        case (.failure(.unknownKey(let kid)), .unknownKey(let want)?):
            #expect(kid == want)
        case (.failure(.invalid(let reason)), .invalid(let want)?):
            #expect(reason.contains(want), "\(reason)")
        case (let got, let want):
            Issue.record("\(c): got \(got), expected \(String(describing: want))")
        }
    }

    @Test("the JWKS parser keeps RSA and P-256 signing keys only, by kid")
    func jwks() throws {
        let keys = Self.keys
        #expect(keys.keys.count == 2)
        #expect(keys.candidates(kid: "rsa-1", algorithm: "RS256").count == 1)
        #expect(keys.candidates(kid: "rsa-1", algorithm: "ES256").isEmpty, "a key verifies only its own algorithm")
        #expect(keys.candidates(kid: nil, algorithm: "ES256").count == 1)
        #expect(throws: TeleportError.self) { try JSONWebKeySet(json: Data("[]".utf8)) }
    }

    @Test("PKCE S256 matches an independent computation; verifiers are fresh and 43 characters")
    func pkce() {
        // base64url(sha256(...)) computed with Python's hashlib.
        #expect(PKCE.challenge(for: "dBjftJeZ4CVP-mJ92K9qpXAQnNZVZcd5Cd6AvEwXJ4s") == "Yd_SWUNwg_p2kkBzncBtts59RzD2GRsuLT2H_4tNziY")
        let a = PKCE.makeVerifier()
        #expect(a.count == 43 && a != PKCE.makeVerifier())
    }
}
