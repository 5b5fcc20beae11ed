/// MySQL capability flags (the `CLIENT_*` bits of the handshake).
public struct MySQLCapabilities: OptionSet, Sendable, Hashable {
    /// The flags as sent (4 bytes, little-endian).
    public let rawValue: UInt32
    /// Flags from their bits.
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `CLIENT_LONG_PASSWORD` (also "a MySQL, not a MariaDB, client").
    public static let longPassword = MySQLCapabilities(rawValue: 1)
    /// `CLIENT_FOUND_ROWS`: affected rows are found rows.
    public static let foundRows = MySQLCapabilities(rawValue: 1 << 1)
    /// `CLIENT_LONG_FLAG`: all column flags.
    public static let longFlag = MySQLCapabilities(rawValue: 1 << 2)
    /// `CLIENT_CONNECT_WITH_DB`: the response names a database.
    public static let connectWithDB = MySQLCapabilities(rawValue: 1 << 3)
    /// `CLIENT_NO_SCHEMA`.
    public static let noSchema = MySQLCapabilities(rawValue: 1 << 4)
    /// `CLIENT_COMPRESS` (never offered by the proxy).
    public static let compress = MySQLCapabilities(rawValue: 1 << 5)
    /// `CLIENT_ODBC`.
    public static let odbc = MySQLCapabilities(rawValue: 1 << 6)
    /// `CLIENT_LOCAL_FILES`: `LOAD DATA LOCAL` (never offered by the proxy).
    public static let localFiles = MySQLCapabilities(rawValue: 1 << 7)
    /// `CLIENT_IGNORE_SPACE`.
    public static let ignoreSpace = MySQLCapabilities(rawValue: 1 << 8)
    /// `CLIENT_PROTOCOL_41`.
    public static let protocol41 = MySQLCapabilities(rawValue: 1 << 9)
    /// `CLIENT_INTERACTIVE`.
    public static let interactive = MySQLCapabilities(rawValue: 1 << 10)
    /// `CLIENT_SSL`: TLS after an `SSLRequest`.
    public static let ssl = MySQLCapabilities(rawValue: 1 << 11)
    /// `CLIENT_IGNORE_SIGPIPE`.
    public static let ignoreSigpipe = MySQLCapabilities(rawValue: 1 << 12)
    /// `CLIENT_TRANSACTIONS`.
    public static let transactions = MySQLCapabilities(rawValue: 1 << 13)
    /// `CLIENT_SECURE_CONNECTION`: a 1-byte length before the auth response.
    public static let secureConnection = MySQLCapabilities(rawValue: 1 << 15)
    /// `CLIENT_MULTI_STATEMENTS`.
    public static let multiStatements = MySQLCapabilities(rawValue: 1 << 16)
    /// `CLIENT_MULTI_RESULTS`.
    public static let multiResults = MySQLCapabilities(rawValue: 1 << 17)
    /// `CLIENT_PS_MULTI_RESULTS`.
    public static let psMultiResults = MySQLCapabilities(rawValue: 1 << 18)
    /// `CLIENT_PLUGIN_AUTH`: auth plugin names in the handshake.
    public static let pluginAuth = MySQLCapabilities(rawValue: 1 << 19)
    /// `CLIENT_CONNECT_ATTRS`: attributes at the end of the response.
    public static let connectAttributes = MySQLCapabilities(rawValue: 1 << 20)
    /// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`: a length-encoded auth response.
    public static let pluginAuthLengthEncodedData = MySQLCapabilities(rawValue: 1 << 21)
    /// `CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS`.
    public static let canHandleExpiredPasswords = MySQLCapabilities(rawValue: 1 << 22)
    /// `CLIENT_SESSION_TRACK`: session state in `OK` packets.
    public static let sessionTrack = MySQLCapabilities(rawValue: 1 << 23)
    /// `CLIENT_DEPRECATE_EOF`: `OK` instead of `EOF` after result sets.
    public static let deprecateEOF = MySQLCapabilities(rawValue: 1 << 24)

    /// What the proxy offers clients: what every MySQL ≥ 5.5 and MariaDB server also has, so
    /// the session the client negotiated with the proxy and the one the database service
    /// negotiates upstream format their results alike and the bytes can be relayed unchanged.
    /// Not offered: compression, `LOAD DATA LOCAL` (`localFiles`), session tracking and
    /// `deprecateEOF` (result formats not every server has), query attributes.
    public static let proxyOffered: MySQLCapabilities = [
        .longPassword, .foundRows, .longFlag, .connectWithDB, .noSchema, .odbc, .ignoreSpace, .protocol41, .interactive, .ssl,
        .ignoreSigpipe, .transactions, .secureConnection, .multiStatements, .multiResults, .psMultiResults, .pluginAuth,
        .connectAttributes, .pluginAuthLengthEncodedData,
    ]

    /// Flags that change how later packets look: the database must have every one the client
    /// negotiated, or relayed results would be misread.
    public static let formatAffecting: MySQLCapabilities = [.protocol41, .multiResults, .psMultiResults, .sessionTrack, .deprecateEOF]
}
