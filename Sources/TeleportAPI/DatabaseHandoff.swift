public import Foundation

/// What the proxy tells a database service before the client's bytes: the user's certificate
/// (PEM, as the client presented it), the client's address, the protocol the client speaks and
/// its start-up parameters (PostgreSQL's start-up message; for MySQL `user`, `database`,
/// `capabilities`, `charset`, `max_packet` and `sequence`, the handshake response's sequence id). Sent once, inside the proxy-to-service mutual TLS, as a 4-byte big-endian length
/// and JSON; at most ``maxBytes``.
public struct DatabaseHandoff: Codable, Sendable, Equatable {
    /// The largest frame accepted.
    public static let maxBytes = 64 * 1024

    /// The user's route-carrying certificate, PEM.
    public var userCertificatePEM: String
    /// The client's address as the proxy saw it.
    public var clientAddress: String
    /// The client's start-up parameters, in order (`[name, value]`).
    public var parameters: [[String]]
    /// `postgres` or `mysql` (absent: `postgres`): how refusals are worded to the client.
    public var `protocol`: String?

    enum CodingKeys: String, CodingKey {
        case parameters
        case `protocol`
        case userCertificatePEM = "user_certificate"
        case clientAddress = "client_addr"
    }

    /// Creates a hand-off.
    public init(userCertificatePEM: String, clientAddress: String, parameters: [[String]], protocol: String? = nil) {
        self.userCertificatePEM = userCertificatePEM
        self.clientAddress = clientAddress
        self.parameters = parameters
        self.protocol = `protocol`
    }

    /// The value of the first parameter named `name`.
    public func parameter(_ name: String) -> String? {
        parameters.first { $0.count == 2 && $0[0] == name }?[1]
    }

    /// The frame's bytes.
    public func frame() throws -> [UInt8] {
        let json = try JSONEncoder().encode(self)
        guard json.count <= Self.maxBytes else {
            throw TeleportError.limitExceeded("the database hand-off is \(json.count) bytes, more than \(Self.maxBytes)")
        }
        let length = UInt32(json.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)] + Array(json)
    }

    /// A hand-off from the start of `bytes`: nil while incomplete; `consumed` bytes were its frame.
    ///
    /// - Throws: ``TeleportError`` `limitExceeded` for a frame over ``maxBytes``, `badParameter`
    ///   for one that is not a hand-off.
    public static func parse(_ bytes: [UInt8]) throws -> (handoff: DatabaseHandoff, consumed: Int)? {
        guard bytes.count >= 4 else { return nil }
        let length = Int(bytes[0]) << 24 | Int(bytes[1]) << 16 | Int(bytes[2]) << 8 | Int(bytes[3])
        guard length <= maxBytes else {
            throw TeleportError.limitExceeded("a database hand-off of \(length) bytes is over the limit of \(maxBytes)")
        }
        guard bytes.count >= 4 + length else { return nil }
        do {
            return (try JSONDecoder().decode(DatabaseHandoff.self, from: Data(bytes[4..<(4 + length)])), 4 + length)
        } catch {
            throw TeleportError.badParameter("the database hand-off is not valid JSON")
        }
    }
}
