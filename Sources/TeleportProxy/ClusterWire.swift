import Foundation
import NIOCore
import TeleportAPI

/// What the root's proxy and a leaf's proxy say on a `cluster-proxy` channel of the leaf's
/// reverse tunnel (trusted clusters, issue 20). The root sends one line, a JSON
/// ``ClusterWire/Request``: the root user's SSH certificate and `nodes` (list what the user may
/// see), `sessions` (the live sessions the user may see), `recording` with a session ID as
/// `target`, or `dial` with a `HOST:PORT` of a leaf node. The leaf answers one line: `ERR reason`,
/// or `OK` (for `dial`, the channel then carries the node's SSH bytes), or `OK PAYLOAD` (then the
/// channel closes): a ``ClusterWire/Listing`` for `nodes`, the sessions' JSON array for
/// `sessions`, the recordings' JSON array for `recordings`, the recording's JSON lines in base64
/// for `recording`.
enum ClusterWire {
    /// The longest request line (a certificate is a few KiB).
    static let maxRequest = 64 * 1024
    /// The longest answer line (a listing of many nodes).
    static let maxAnswer = 32 * 1024 * 1024
    /// How long either side waits for the other's line.
    static let lineTimeout: TimeAmount = .seconds(30)

    /// The root proxy's request.
    struct Request: Codable, Sendable, Equatable {
        /// `dial` or `nodes`.
        var op: String
        /// The root user's OpenSSH certificate line.
        var certificate: String
        /// For `dial`: the node, `HOST[:PORT]` as the user gave it.
        var target: String?
        /// For `authorities` (no certificate): the root's current user and host CAs, which the
        /// leaf then holds instead of the ones it had (the root rotated one).
        var authorities: [CertAuthority]? = nil
        /// With `authorities`: the root's proxies (their host UUIDs), so that the leaf keeps a
        /// tunnel to each of them (``RootProxyDirectory``); absent from an older root.
        var proxies: [String]? = nil

        static let dial = "dial"
        static let authorities = "authorities"
        static let nodes = "nodes"
        static let sessions = "sessions"
        static let recording = "recording"
        static let recordings = "recordings"
    }

    /// The leaf's answer to `nodes`.
    struct Listing: Codable, Sendable {
        /// The leaf nodes the user's mapped roles let them reach.
        var nodes: [ServerNode]
        /// The host keys of those nodes.
        var hostKeys: [AuthAPI.HostKey]
        /// For each node (by its ID), the user's logins there that the mapped roles allow on it
        /// (the web UI's login picker); absent from a leaf that does not send it.
        var logins: [String: [String]]? = nil

        enum CodingKeys: String, CodingKey {
            case nodes
            case hostKeys = "host_keys"
            case logins
        }
    }

    /// Splits off the first line of `buffer` (without its newline); nil when there is none yet.
    static func takeLine(_ buffer: inout ByteBuffer) -> String? {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let length = newline - buffer.readerIndex
        let line = buffer.readString(length: length) ?? ""
        buffer.moveReaderIndex(forwardBy: 1)
        return line
    }

    /// `ERR reason` with the reason on one line.
    static func error(_ reason: String) -> String {
        "ERR " + reason.replacingOccurrences(of: "\r", with: " ").replacingOccurrences(of: "\n", with: " ") + "\n"
    }

    /// Reads an answer line: the text after `OK` (maybe empty), or the leaf's refusal thrown.
    static func parseAnswer(_ line: String, cluster: String) throws -> String {
        if line == "OK" { return "" }
        if line.hasPrefix("OK ") { return String(line.dropFirst(3)) }
        if line.hasPrefix("ERR ") {
            throw TeleportError.accessDenied("leaf cluster \(cluster): \(line.dropFirst(4))")
        }
        throw TeleportError.connectionProblem("leaf cluster \(cluster) answered something unexpected on its tunnel")
    }
}
