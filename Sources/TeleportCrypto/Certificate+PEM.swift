public import TeleportAPI
public import X509
import SwiftASN1

extension Certificate {
    /// Parses one PEM certificate; a malformed one is a `badParameter` error.
    public static func fromPEM(_ pem: String) throws -> Certificate {
        do {
            return try Certificate(pemEncoded: pem)
        } catch {
            throw TeleportError.badParameter("not a valid PEM certificate: \(error)")
        }
    }

    /// Parses every certificate of a PEM bundle.
    public static func bundleFromPEM(_ pem: String) throws -> [Certificate] {
        do {
            return try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) }
        } catch {
            throw TeleportError.badParameter("not a valid PEM certificate bundle: \(error)")
        }
    }

    /// The certificate as PEM text, ending with a newline so that PEM texts concatenate.
    public func pemText() throws -> String {
        try serializeAsPEM().pemString + "\n"
    }

    /// The DER bytes.
    public func derBytes() throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(self)
        return serializer.serializedBytes
    }
}

extension Certificate {
    /// Parses a DER certificate; a malformed one is a `badParameter` error.
    public static func fromDER(_ bytes: [UInt8]) throws -> Certificate {
        do {
            return try Certificate(derEncoded: bytes)
        } catch {
            throw TeleportError.badParameter("not a valid DER certificate: \(error)")
        }
    }
}
