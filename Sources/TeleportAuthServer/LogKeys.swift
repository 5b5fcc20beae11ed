/// Metadata keys of the auth service's log lines.
enum LogKeys {
    static let cluster = "tp.cluster"
    static let caType = "tp.ca.type"
    static let identity = "tp.identity"
    static let path = "tp.http.path"
}
