import TeleportAPI

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Asks the person at the keyboard for a password or a code; tests substitute canned answers.
public protocol Prompter: Sendable {
    /// Shows `prompt` and reads one line; with `echo: false` the typed characters are not shown.
    func readLine(prompt: String, echo: Bool) throws -> String
}

/// Prompts on the terminal: `/dev/tty` with echo turned off for secrets when standard input is a
/// terminal; otherwise one line from standard input per question (scripts and tests pipe answers
/// in), the prompt then going to standard error.
public struct TerminalPrompt: Prompter {
    /// Creates a prompter.
    public init() {}

    public func readLine(prompt: String, echo: Bool) throws -> String {
        if isatty(STDIN_FILENO) == 1 {
            let tty = open("/dev/tty", O_RDWR | O_NOCTTY)
            if tty >= 0 {
                defer { close(tty) }
                return try Self.readFromTerminal(tty, prompt: prompt, echo: echo)
            }
        }
        Self.emit(STDERR_FILENO, prompt + " ")
        let line = Self.readLine(STDIN_FILENO)
        Self.emit(STDERR_FILENO, "\n")
        guard let line else {
            throw TeleportError.badParameter("no answer to \"\(prompt)\": standard input is closed")
        }
        return line
    }

    static func readFromTerminal(_ fd: Int32, prompt: String, echo: Bool) throws -> String {
        var original = termios()
        let haveAttributes = tcgetattr(fd, &original) == 0
        // Echo goes off before the prompt shows, so nothing typed after it can be echoed.
        if !echo && haveAttributes {
            var quiet = original
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL) | tcflag_t(ICANON)
            TerminalRestore.save(fd: fd, attributes: original)
            tcsetattr(fd, TCSANOW, &quiet)
        }
        emit(fd, prompt + " ")
        let line = readLine(fd)
        if !echo && haveAttributes {
            tcsetattr(fd, TCSANOW, &original)
            TerminalRestore.clear()
        }
        guard let line else {
            throw TeleportError.badParameter("no answer to \"\(prompt)\": the terminal was closed")
        }
        return line
    }

    /// Reads bytes up to a newline, one at a time so nothing after the line is consumed (the next
    /// question's answer may already be waiting on a pipe). nil at end of input with no byte read.
    static func readLine(_ fd: Int32) -> String? {
        var bytes: [UInt8] = []
        var byte: UInt8 = 0
        while true {
            let count = read(fd, &byte, 1)
            if count < 0, errno == EINTR { continue }
            if count <= 0 { return bytes.isEmpty ? nil : decode(bytes) }
            if byte == UInt8(ascii: "\n") { return decode(bytes) }
            bytes.append(byte)
            if bytes.count > 4096 { return decode(bytes) }
        }
    }

    static func decode(_ bytes: [UInt8]) -> String {
        var text = String(decoding: bytes, as: UTF8.self)
        while text.hasSuffix("\r") { text.removeLast() }
        return text
    }

    static func emit(_ fd: Int32, _ text: String) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0, errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// Restores the terminal's echo when `tsh` is interrupted (Ctrl-C) at a password prompt.
enum TerminalRestore {
    nonisolated(unsafe) static var fd: Int32 = -1
    nonisolated(unsafe) static var attributes = termios()

    static func save(fd: Int32, attributes: termios) {
        Self.attributes = attributes
        Self.fd = fd
        signal(SIGINT) { signalNumber in
            if TerminalRestore.fd >= 0 { tcsetattr(TerminalRestore.fd, TCSANOW, &TerminalRestore.attributes) }
            signal(signalNumber, SIG_DFL)
            raise(signalNumber)
        }
    }

    static func clear() {
        fd = -1
        signal(SIGINT, SIG_DFL)
    }
}
