import TeleportAPI

extension AuthServer {
    /// Issues a certificate with `issue` and audits the outcome: `cert.create` with `success: true`, or
    /// the failure event with `success: false` and the refusal's message (then the refusal is rethrown).
    /// `fields` starts the event (who asks, for whom, `cert_type`); `issue` may add to it (the user a
    /// route certificate turned out to be for, the lifetime granted).
    func auditingCertificate<T>(
        _ fields: [String: JSONValue], _ issue: (inout [String: JSONValue]) async throws -> T
    ) async throws -> T {
        var fields = fields
        let issued: T
        do {
            issued = try await issue(&fields)
        } catch let error as TeleportError {
            fields["success"] = false
            fields["error"] = .string(error.message)
            try await emit(AuditEventType.certCreateFailure, fields: fields)
            throw error
        }
        fields["success"] = true
        try await emit(AuditEventType.certCreate, fields: fields)
        return issued
    }
}
