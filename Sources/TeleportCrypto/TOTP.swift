public import Foundation
import Crypto

/// Time-based one-time passwords (RFC 6238): HMAC-SHA1, 30-second steps, 6 digits, as
/// authenticator apps expect.
public enum TOTP {
    /// The step length in seconds.
    public static let period: Int64 = 30
    /// Digits in a code.
    public static let digits = 6

    /// A new random secret (20 bytes), base32 without padding.
    public static func generateSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        return Base32.encode((0..<20).map { _ in UInt8.random(in: 0...255, using: &generator) })
    }

    /// The time step that contains `date`.
    public static func step(at date: Date) -> Int64 {
        Int64(date.timeIntervalSince1970.rounded(.down)) / period
    }

    /// The code for `step`.
    public static func code(secret: [UInt8], step: Int64) -> String {
        var counter = UInt64(bitPattern: step).bigEndian
        let message = withUnsafeBytes(of: &counter) { Data($0) }
        let mac = Array(HMAC<Insecure.SHA1>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
        let offset = Int(mac[mac.count - 1] & 0x0F)
        let binary = (UInt32(mac[offset] & 0x7F) << 24) | (UInt32(mac[offset + 1]) << 16) | (UInt32(mac[offset + 2]) << 8)
            | UInt32(mac[offset + 3])
        let value = binary % 1_000_000
        let text = String(value)
        return String(repeating: "0", count: digits - text.count) + text
    }

    /// The step whose code equals `code`, looking one step either side of `date` (clock skew), and
    /// only at steps after `after` (a code is good once: replay of a used step is refused).
    public static func matchingStep(code: String, secretBase32: String, at date: Date, after: Int64?) -> Int64? {
        guard code.count == digits, code.allSatisfy(\.isASCII), code.allSatisfy(\.isNumber), let secret = Base32.decode(secretBase32) else {
            return nil
        }
        let now = step(at: date)
        var matched: Int64?
        for candidate in (now - 1)...(now + 1) {
            // Compare every candidate, in constant time, so timing does not tell which step matched.
            if ConstantTime.equal(self.code(secret: secret, step: candidate), code), candidate > (after ?? Int64.min) {
                matched = candidate
            }
        }
        return matched
    }
}

/// RFC 4648 base32 (upper case, no padding on output; padding and case ignored on input).
public enum Base32 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")

    /// Encodes bytes.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out = ""
        var buffer: UInt32 = 0
        var bits = 0
        for byte in bytes {
            buffer = (buffer << 8) | UInt32(byte)
            bits += 8
            while bits >= 5 {
                out.append(alphabet[Int((buffer >> UInt32(bits - 5)) & 0x1F)])
                bits -= 5
            }
        }
        if bits > 0 { out.append(alphabet[Int((buffer << UInt32(5 - bits)) & 0x1F)]) }
        return out
    }

    /// Decodes text; `nil` when a character is not base32.
    public static func decode(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        var buffer: UInt32 = 0
        var bits = 0
        for character in text.uppercased() where character != "=" && character != " " {
            guard let index = alphabet.firstIndex(of: character) else { return nil }
            buffer = (buffer << 5) | UInt32(index)
            bits += 5
            if bits >= 8 {
                out.append(UInt8((buffer >> UInt32(bits - 8)) & 0xFF))
                bits -= 8
            }
        }
        return out
    }
}
