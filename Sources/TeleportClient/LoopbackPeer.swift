import Foundation

/// Who is on the other end of a loopback TCP connection, from the kernel's socket table
/// (`/proc/net/tcp`): `tsh proxy db` serves only the user who started it, since its port adds that
/// user's certificate to whatever connects.
enum LoopbackPeer {
    /// The uid owning the socket whose local port is `clientPort` and whose remote port is
    /// `serverPort` (the client's end of a connection accepted on `serverPort`), read from the text of
    /// `/proc/net/tcp` or `/proc/net/tcp6`; nil when no such line exists.
    static func uid(table: String, clientPort: Int, serverPort: Int) -> UInt32? {
        for line in table.split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid ...
            guard fields.count > 7, let local = port(of: fields[1]), let remote = port(of: fields[2]) else { continue }
            if local == clientPort, remote == serverPort, let uid = UInt32(fields[7]) { return uid }
        }
        return nil
    }

    /// The port of `ADDRESS:PORT` as the table writes it (the port in hexadecimal).
    static func port(of field: Substring) -> Int? {
        guard let colon = field.lastIndex(of: ":") else { return nil }
        return Int(field[field.index(after: colon)...], radix: 16)
    }

    /// The uid of the local process connected from `clientPort` to `serverPort`, from the live tables.
    static func uid(clientPort: Int, serverPort: Int) -> UInt32? {
        for path in ["/proc/net/tcp", "/proc/net/tcp6"] {
            // procfs reports a size of 0: read to the end rather than trusting the size.
            guard let handle = FileHandle(forReadingAtPath: path) else { continue }
            defer { try? handle.close() }
            guard let data = try? handle.readToEnd() else { continue }
            let table = String(decoding: data, as: UTF8.self)
            if let uid = uid(table: table, clientPort: clientPort, serverPort: serverPort) { return uid }
        }
        return nil
    }
}
