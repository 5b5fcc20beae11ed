/// Why MySQL bytes were refused, one line.
public struct MySQLWireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The reason.
    public var message: String
    /// Creates the error.
    public init(_ message: String) { self.message = message }
    /// The reason.
    public var description: String { message }
}
