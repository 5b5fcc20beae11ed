import TeleportAPI
import Testing

@Suite("global arguments before the subcommand")
struct GlobalArgumentsTests {
    static let withValue: Set<String> = ["-c", "--config", "--proxy"]
    static let flags: Set<String> = ["--insecure"]

    @Test(arguments: [
        (["--config", "fresh.yaml", "get", "all"], ["get", "all", "--config", "fresh.yaml"]),
        (["-c=x.yaml", "status"], ["status", "-c=x.yaml"]),
        (["--proxy=p:3080", "--insecure", "login", "--user=joe"], ["login", "--user=joe", "--proxy=p:3080", "--insecure"]),
        (["ls", "--proxy", "p"], ["ls", "--proxy", "p"]),
        (["--insecure", "ssh", "host", "--", "ls", "-l"], ["ssh", "host", "--insecure", "--", "ls", "-l"]),
        ([], []),
    ])
    func reorder(input: [String], expected: [String]) {
        #expect(GlobalArguments.reorder(input, withValue: Self.withValue, flags: Self.flags) == expected)
    }
}
