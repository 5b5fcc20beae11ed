import Foundation
import TeleportAPI

/// An IPv4 or IPv6 address block in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or a bare address
/// meaning a single host), as used by the `source-address` certificate critical option.
///
/// Parsing is strict, like OpenSSH's `addr_pton_cidr`: numeric addresses only, no zone IDs, no
/// brackets, no leading zeros in IPv4 octets, and no host bits set below the prefix
/// (`10.0.0.1/8` is refused).
public struct SSHCIDRBlock: Sendable, Hashable, CustomStringConvertible {
    /// The network address: 4 bytes for IPv4, 16 for IPv6.
    public let address: [UInt8]
    /// The prefix length: 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int

    /// Parses `address` or `address/prefix`.
    ///
    /// - Throws: ``TeleportError`` `badParameter` when the text is not a valid block.
    public init(_ text: String) throws {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = Self.parseAddress(String(parts[0])) else {
            throw TeleportError.badParameter("invalid address in CIDR block \"\(text)\"")
        }
        let maximum = address.count * 8
        var prefix = maximum
        if parts.count == 2 {
            let digits = parts[1]
            guard !digits.isEmpty, digits.count <= 3, digits.allSatisfy(\.isASCIIDigit),
                digits == "0" || digits.first != "0", let value = Int(digits), value <= maximum
            else {
                throw TeleportError.badParameter("invalid prefix length in CIDR block \"\(text)\"")
            }
            prefix = value
        }
        guard Self.masked(address, prefixLength: prefix) == address else {
            throw TeleportError.badParameter("CIDR block \"\(text)\" has host bits set below its prefix")
        }
        self.address = address
        self.prefixLength = prefix
    }

    /// True when `address` (IPv4 or IPv6 text) lies inside this block. An IPv4-mapped IPv6 address
    /// (`::ffff:192.0.2.1`) is matched as the IPv4 address, as sshd does; an address of the other
    /// family, or one that does not parse, never matches.
    public func contains(_ address: String) -> Bool {
        guard let parsed = Self.parseAddress(address) else { return false }
        return contains(bytes: Self.unmappingIPv4(parsed))
    }

    /// True when the raw address bytes (4 or 16) lie inside this block.
    public func contains(bytes: [UInt8]) -> Bool {
        bytes.count == address.count && Self.masked(bytes, prefixLength: prefixLength) == address
    }

    /// The block as `address/prefix` (IPv6 written without `::` compression).
    public var description: String {
        let text: String
        if address.count == 4 {
            text = address.map(String.init).joined(separator: ".")
        } else {
            text = stride(from: 0, to: 16, by: 2).map {
                String(UInt16(address[$0]) << 8 | UInt16(address[$0 + 1]), radix: 16)
            }.joined(separator: ":")
        }
        return "\(text)/\(prefixLength)"
    }

    /// Parses a numeric IPv4 or IPv6 address into 4 or 16 bytes; nil when it is neither.
    public static func parseAddress(_ text: String) -> [UInt8]? {
        text.contains(":") ? parseIPv6(text) : parseIPv4(Substring(text))
    }

    /// Maps `::ffff:a.b.c.d` to the 4 IPv4 bytes; returns any other address unchanged.
    static func unmappingIPv4(_ bytes: [UInt8]) -> [UInt8] {
        let mappedPrefix: [UInt8] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]
        if bytes.count == 16, Array(bytes.prefix(12)) == mappedPrefix {
            return Array(bytes.suffix(4))
        }
        return bytes
    }

    static func masked(_ bytes: [UInt8], prefixLength: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bitsKept = min(max(prefixLength - index * 8, 0), 8)
            let mask: UInt8 = bitsKept == 0 ? 0 : UInt8(truncatingIfNeeded: 0xff << (8 - bitsKept))
            return byte & mask
        }
    }

    static func parseIPv4(_ text: Substring) -> [UInt8]? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for octet in octets {
            guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCIIDigit),
                octet == "0" || octet.first != "0", let value = UInt8(octet)
            else { return nil }
            bytes.append(value)
        }
        return bytes
    }

    static func parseIPv6(_ text: String) -> [UInt8]? {
        let halves = text.components(separatedBy: "::")
        guard halves.count <= 2 else { return nil }
        guard var head = parseIPv6Groups(halves[0], allowIPv4Tail: halves.count == 1) else { return nil }
        if halves.count == 1 {
            return head.count == 16 ? head : nil
        }
        guard let tail = parseIPv6Groups(halves[1], allowIPv4Tail: true) else { return nil }
        // "::" stands for at least one group of zeros.
        guard head.count + tail.count <= 14 else { return nil }
        head += [UInt8](repeating: 0, count: 16 - head.count - tail.count)
        return head + tail
    }

    /// Parses colon-separated hex groups (possibly none), the last of which may be dotted IPv4.
    private static func parseIPv6Groups(_ text: String, allowIPv4Tail: Bool) -> [UInt8]? {
        if text.isEmpty { return [] }
        let groups = text.split(separator: ":", omittingEmptySubsequences: false)
        var bytes: [UInt8] = []
        for (index, group) in groups.enumerated() {
            if index == groups.count - 1, allowIPv4Tail, group.contains(".") {
                guard let ipv4 = parseIPv4(group) else { return nil }
                bytes += ipv4
                continue
            }
            guard !group.isEmpty, group.count <= 4, group.allSatisfy(\.isHexDigit),
                let value = UInt16(group, radix: 16)
            else { return nil }
            bytes += [UInt8(value >> 8), UInt8(value & 0xff)]
        }
        return bytes.count <= 16 ? bytes : nil
    }
}

extension Character {
    fileprivate var isASCIIDigit: Bool { isASCII && isNumber }
}
