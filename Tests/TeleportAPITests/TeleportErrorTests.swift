import TeleportAPI
import Testing

@Suite("TeleportError")
struct TeleportErrorTests {
    struct DriverError: Error, Sendable {}

    @Test func equalByCodeNotMessage() {
        #expect(TeleportError.badParameter("a") == TeleportError.badParameter("b"))
        #expect(TeleportError.notFound("x") != TeleportError.badParameter("x"))
        #expect(TeleportError.connectionProblem("x", cause: DriverError()) == TeleportError(.connectionProblem, "y"))
    }

    @Test func messageIsTheDescription() {
        let error = TeleportError.accessDenied("cannot read the key")
        #expect(error.description == "cannot read the key")
        #expect("\(error)" == "cannot read the key")
        #expect(error.cause == nil)
        #expect(TeleportError.internalError("x", cause: DriverError()).cause is DriverError)
    }

    @Test(arguments: [
        (TeleportError.Code.notFound, "not_found"), (.alreadyExists, "already_exists"), (.badParameter, "bad_parameter"),
        (.compareFailed, "compare_failed"), (.accessDenied, "access_denied"), (.connectionProblem, "connection_problem"),
        (.limitExceeded, "limit_exceeded"), (.internalError, "internal"), (.auditUnavailable, "audit_unavailable"),
    ])
    func wireForm(code: TeleportError.Code, wire: String) {
        #expect(code.rawValue == wire)
        #expect(code.description == wire)
        #expect(TeleportError.Code.fromWire(wire) == code)
    }

    @Test func everyCodeIsListedOnce() {
        #expect(TeleportError.Code.all.count == 9)
        #expect(Set(TeleportError.Code.all).count == TeleportError.Code.all.count)
        for code in TeleportError.Code.all { #expect(TeleportError.Code.fromWire(code.rawValue) == code) }
    }

    @Test(arguments: ["", "NOT_FOUND", "teapot", "notFound"])
    func unknownWireCodesAreInternal(wire: String) {
        #expect(TeleportError.Code.fromWire(wire) == .internalError)
    }

    @Test func constructorsSetTheirCode() {
        #expect(TeleportError.notFound("").code == .notFound)
        #expect(TeleportError.alreadyExists("").code == .alreadyExists)
        #expect(TeleportError.badParameter("").code == .badParameter)
        #expect(TeleportError.compareFailed("").code == .compareFailed)
        #expect(TeleportError.accessDenied("").code == .accessDenied)
        #expect(TeleportError.connectionProblem("").code == .connectionProblem)
        #expect(TeleportError.limitExceeded("").code == .limitExceeded)
        #expect(TeleportError.internalError("").code == .internalError)
    }

    @Test func matches() {
        #expect(TeleportError.matches(TeleportError.notFound("x"), .notFound))
        #expect(!TeleportError.matches(TeleportError.notFound("x"), .badParameter))
        #expect(!TeleportError.matches(DriverError(), .notFound))
    }
}
