/// The proxy's side of a MySQL client's handshake, without I/O: the greeting (offering TLS),
/// then the client's `SSLRequest` (anything else first is refused: the proxy speaks MySQL over
/// TLS only), then, once the caller has run TLS, the `HandshakeResponse41` naming the user and
/// database. Packets are bounded by ``maxPacket`` before their payload is awaited; every refusal
/// is an `ERR` packet with the next sequence id and a one-line reason.
public struct MySQLServerHandshake: Sendable {
    /// The largest handshake packet accepted (real responses are a few hundred bytes).
    public static let maxPacket = 16 * 1024

    /// What the caller does next.
    public enum Action: Sendable, Equatable {
        /// Run TLS as the server; `rest` are bytes that followed the `SSLRequest` (the start of
        /// the client's TLS handshake), to be fed to TLS.
        case startTLS(rest: [UInt8])
        /// The client's response, its sequence id, and bytes that followed it.
        case authenticate(MySQLHandshakeResponse, sequence: UInt8, rest: [UInt8])
        /// Send `reply` (an `ERR` packet), then close; `reason` is its message.
        case refuse(reply: [UInt8], reason: String)
    }

    private enum State {
        case beforeTLS
        case afterTLS
        case done
    }

    private var state = State.beforeTLS
    private var buffer: [UInt8] = []
    /// The greeting sent to the client.
    public let greeting: MySQLGreeting

    /// A handshake that greets with `greeting` (its capabilities must include `ssl`).
    public init(greeting: MySQLGreeting) { self.greeting = greeting }

    /// A greeting offering ``MySQLCapabilities/proxyOffered``, with `scramble` (20 bytes,
    /// none of them NUL) as its auth data.
    public static func greeting(connectionID: UInt32, scramble: [UInt8]) -> MySQLGreeting {
        MySQLGreeting(
            serverVersion: "8.0.0-Teleport", connectionID: connectionID, authData: scramble, capabilities: MySQLCapabilities.proxyOffered)
    }

    /// The greeting packet (sequence 0), sent when the connection opens.
    public var greetingPacket: [UInt8] { MySQLPacket(sequence: 0, payload: greeting.payload).bytes }

    /// Call once TLS is up.
    public mutating func tlsEstablished() { if state == .beforeTLS { state = .afterTLS } }

    /// Feeds the client's next bytes (plaintext before TLS, decrypted after); nil while the
    /// packet is incomplete.
    public mutating func receive<Bytes: Sequence>(_ bytes: Bytes) -> Action? where Bytes.Element == UInt8 {
        guard state != .done else { return nil }
        buffer += bytes
        switch MySQLPacket.parse(buffer, limit: Self.maxPacket) {
        case .needMoreData:
            return nil
        case .tooLong(let reason):
            return refuse(sequence: buffer.count > 3 ? buffer[3] &+ 1 : 2, reason)
        case .packet(let packet, let consumed):
            let rest = Array(buffer[consumed...])
            buffer = []
            let next = packet.sequence &+ 1
            switch MySQLHandshakeResponse.parse(packet.payload) {
            case .failure(let error):
                return refuse(sequence: next, error.message)
            case .success(.sslRequest):
                guard state == .beforeTLS else { return refuse(sequence: next, "a second SSLRequest inside TLS") }
                state = .afterTLS
                return .startTLS(rest: rest)
            case .success(.response(let response)):
                guard state == .afterTLS else {
                    return refuse(
                        sequence: next,
                        "this proxy accepts MySQL connections over TLS only: use tsh db connect, or the --ssl-ca, --ssl-cert and --ssl-key options tsh db config prints")
                }
                state = .done
                return .authenticate(response, sequence: packet.sequence, rest: rest)
            }
        }
    }

    private mutating func refuse(sequence: UInt8, _ reason: String) -> Action {
        state = .done
        buffer = []
        return .refuse(reply: MySQLPacket(sequence: sequence, payload: MySQLReply.handshakeError(reason)).bytes, reason: reason)
    }
}
