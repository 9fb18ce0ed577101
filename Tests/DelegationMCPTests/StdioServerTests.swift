import DelegationStore
import DelegationTool
import Foundation
import MCP
import TestSupport
import Testing

/// The built `delegation-mcp` binary as an MCP client starts it: raw newline-delimited JSON-RPC over
/// pipes, nothing but protocol on stdout, JSON logs on stderr, exit 0 when stdin closes.
@Suite struct StdioServerTests {
    @Test func aClientSessionOverPipes() async throws {
        let directory = TemporaryDirectory()
        let database = directory.file("delegations.db")
        let child = try StdioChild(
            productPath("delegation-mcp"), ["--db", database, "--log-format", "json", "--log-level", "debug"],
            environment: ["WORKSPACE_ID": "ws-self", "WORKSPACE_ROLES": "operator", "LOG_FORMAT": "", "LOG_LEVEL": ""])

        /// Sends a request and waits for the response with its id.
        func exchange(_ id: Int, _ method: String, _ params: JSONValue) async throws -> (request: String, response: JSONValue, line: String) {
            let request: JSONValue = ["jsonrpc": "2.0", "id": .int(id), "method": .string(method), "params": params]
            try child.send(request.serialized)
            let line = try #require(
                await child.waitForLine { (try? JSONValue.parse($0))?["id"] == .int(id) },
                "a response to \(method) (id \(id)); stderr:\n\(child.stderr)")
            return (request.serialized, try JSONValue.parse(line), line)
        }

        let initialize = try await exchange(
            1, "initialize",
            [
                "protocolVersion": .string(Version.latest), "capabilities": [:],
                "clientInfo": ["name": "raw-pipe-test", "version": "1.0"],
            ])
        #expect(initialize.response["result"]?["protocolVersion"]?.stringValue == Version.latest)
        #expect(initialize.response["result"]?["serverInfo"]?["name"] == "delegation-mcp")
        #expect(initialize.response["result"]?["capabilities"]?["tools"]?.isObject == true)
        try child.send((["jsonrpc": "2.0", "method": "notifications/initialized"] as JSONValue).serialized)

        let list = try await exchange(2, "tools/list", [:])
        let tools = try #require(list.response["result"]?["tools"]?.arrayValue)
        #expect(tools.compactMap { $0["name"]?.stringValue }.sorted()
            == ["cancel_delegation", "check_delegation_status", "delegate_to_workspace", "list_delegations"])
        for tool in tools { #expect(tool["inputSchema"]?["type"] == "object") }

        let delegate = try await exchange(
            3, "tools/call",
            ["name": "delegate_to_workspace", "arguments": ["workspace_id": "ws-research", "task": "Summarise the Q3 report"]])
        #expect(delegate.response["result"]?["isError"] == false)
        let delegatedText = try #require(delegate.response["result"]?["content"]?[0]?["text"]?.stringValue)
        let delegated = try JSONValue.parse(delegatedText)
        let id = try #require(delegated["task_id"]?.stringValue)
        #expect(delegated == ToolAnswer.delegated(id: id, workspaceID: "ws-research"))

        let check = try await exchange(
            4, "tools/call", ["name": "check_delegation_status", "arguments": ["task_id": .string(id)]])
        #expect(check.response["result"]?["isError"] == false)
        let statusText = try #require(check.response["result"]?["content"]?[0]?["text"]?.stringValue)
        let status = try JSONValue.parse(statusText)
        #expect(status["task_id"]?.stringValue == id)
        #expect(status["status"] == "pending")
        #expect(status["task"] == "Summarise the Q3 report")

        // The exchange, verbatim, for the README and the report.
        print("MCP-EXCHANGE >>> \(delegate.request)\nMCP-EXCHANGE <<< \(delegate.line)")
        print("MCP-EXCHANGE >>> \(check.request)\nMCP-EXCHANGE <<< \(check.line)")

        // Closing stdin ends the session: exit 0, promptly.
        try child.closeStdin()
        let (exitStatus, timedOut) = await child.finish(within: .seconds(5))
        #expect(!timedOut, "exits within 5 s of stdin closing; stderr:\n\(child.stderr)")
        #expect(exitStatus == 0, "stderr:\n\(child.stderr)")

        // Nothing but protocol on stdout: every line is one JSON-RPC 2.0 message.
        let lines = child.stdoutLines
        #expect(lines.count == 4, "one response per request, no notification expected: \(lines)")
        #expect(child.stdout.hasSuffix("\n"))
        for line in lines {
            let message = try? JSONValue.parse(line)
            #expect(message?["jsonrpc"] == "2.0", "a JSON-RPC line: \(line)")
        }

        // The log: one JSON object per line, on stderr, ending with the shutdown.
        let logLines = child.stderr.split(separator: "\n").map(String.init)
        #expect(!logLines.isEmpty)
        for line in logLines {
            let record = try? JSONValue.parse(line)
            #expect(record?.isObject == true && record?["level"]?.stringValue != nil && record?["message"]?.stringValue != nil, "a JSON log line: \(line)")
        }
        #expect(logLines.contains { $0.contains(#""message":"client connected""#) && $0.contains(#""client":"raw-pipe-test""#) })
        #expect(logLines.last?.contains("store closed") == true, "the last line says it shut down: \(logLines.last ?? "")")

        // Durable: the delegation is in the file for the worker.
        let store = try DelegationStore(StoreConfiguration(path: database, access: .readOnly), logger: quietLogger)
        #expect(try await store.delegation(id: id)?.sourceWorkspaceID == "ws-self")
        await store.close()
    }

    @Test func requestsWrittenJustBeforeStdinClosesAreStillAnswered() async throws {
        let directory = TemporaryDirectory()
        let child = try StdioChild(productPath("delegation-mcp"), ["--db", directory.file("delegations.db")])
        var requests = [
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"\#(Version.latest)","capabilities":{},"clientInfo":{"name":"burst","version":"1"}}}"#,
            #"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        ]
        for index in 2..<12 {
            requests.append(
                #"{"jsonrpc":"2.0","id":\#(index),"method":"tools/call","params":{"name":"delegate_to_workspace","arguments":{"workspace_id":"ws-peer","task":"task \#(index)"}}}"#)
        }
        try child.send(requests.joined(separator: "\n"))
        try child.closeStdin()
        let (exitStatus, timedOut) = await child.finish(within: .seconds(10))
        #expect(!timedOut && exitStatus == 0, "stderr:\n\(child.stderr)")
        let ids = Set(child.stdoutLines.compactMap { (try? JSONValue.parse($0))?["id"]?.intValue })
        #expect(ids == Set(1..<12), "every request answered before the exit: \(child.stdout)")
        let store = try DelegationStore(StoreConfiguration(path: directory.file("delegations.db"), access: .readOnly), logger: quietLogger)
        #expect(try await store.list(DelegationQuery()).count == 10)
        await store.close()
    }

    /// A client that stops reading its answers and then ends the session: the server stops at its drain
    /// deadline (10 s). The SDK answers a batch in its message loop and its stdio `send` retried the full
    /// pipe for ever, so the loop — and the process, with the store open — never ended.
    @Test func aClientThatStopsReadingCannotHoldTheServerPastItsDrain() async throws {
        let directory = TemporaryDirectory()
        let child = try StdioChild(productPath("delegation-mcp"), ["--db", directory.file("delegations.db")], readsStdout: false)
        try child.send(
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"\#(Version.latest)","capabilities":{},"clientInfo":{"name":"deaf","version":"1"}}}"#)
        try child.send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        // One batch whose one answer (~4 KB a tools/list) is far more than the pipe holds (64 KiB).
        try child.send("[" + (2..<80).map { #"{"jsonrpc":"2.0","id":\#($0),"method":"tools/list"}"# }.joined(separator: ",") + "]")
        try await Task.sleep(for: .milliseconds(500))
        try child.closeStdin()
        let begun = ContinuousClock.now
        let (exitStatus, timedOut) = await child.finish(within: .seconds(40))
        #expect(!timedOut, "it stopped at its drain deadline; stderr:\n\(child.stderr)")
        #expect(ContinuousClock.now - begun < .seconds(30))
        #expect(!child.wasSignalled && exitStatus == 0, "exit \(exitStatus); stderr:\n\(child.stderr)")
        #expect(child.stderr.contains("not reading its answers"), "\(child.stderr)")
        #expect(child.stderr.contains("store closed"), "\(child.stderr)")
    }

    /// A client or supervisor stopping the server with SIGTERM (stdin still open): it used to die of the
    /// signal with the store open; now the signal ends the input as EOF does.
    @Test(arguments: [SIGTERM, SIGINT])
    func aSignalEndsTheSessionLikeEOF(_ number: Int32) async throws {
        let directory = TemporaryDirectory()
        let database = directory.file("delegations.db")
        let child = try StdioChild(productPath("delegation-mcp"), ["--db", database])
        try child.send(
            #"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"\#(Version.latest)","capabilities":{},"clientInfo":{"name":"sig","version":"1"}}}"#)
        try child.send(#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#)
        try child.send(
            #"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"delegate_to_workspace","arguments":{"workspace_id":"ws-peer","task":"before the signal"}}}"#)
        let answered = await child.waitForLine { (try? JSONValue.parse($0))?["id"] == .int(2) }
        #expect(answered != nil, "stderr:\n\(child.stderr)")
        child.send(signal: number)
        let (exitStatus, timedOut) = await child.finish(within: .seconds(10))
        #expect(!timedOut, "stderr:\n\(child.stderr)")
        #expect(!child.wasSignalled && exitStatus == 0, "exit \(exitStatus), signalled \(child.wasSignalled); stderr:\n\(child.stderr)")
        #expect(child.stderr.contains("store closed"), "\(child.stderr)")
        // The store was closed: the last connection folded the WAL back and removed it.
        #expect(!FileManager.default.fileExists(atPath: database + "-wal"))
        let store = try DelegationStore(StoreConfiguration(path: database, access: .readOnly), logger: quietLogger)
        #expect(try await store.list(DelegationQuery()).map(\.task) == ["before the signal"])
        await store.close()
    }

    /// A signal during start-up (before the SDK asks for its input) used to be logged and then ignored:
    /// the session ran on until the client wrote or closed stdin. Now it ends the session as it begins
    /// (or, before the handlers exist, the default action ends the process): never a hang.
    @Test func aSignalDuringStartUpNeverHangs() async throws {
        for attempt in 0..<5 {
            let directory = TemporaryDirectory()
            let child = try StdioChild(productPath("delegation-mcp"), ["--db", directory.file("delegations.db")])
            // Just before the server starts: the window in which the signal used to be lost.
            let deadline = ContinuousClock.now + .seconds(10)
            while !child.stderr.contains("serving MCP on stdio") && ContinuousClock.now < deadline {
                try await Task.sleep(for: .microseconds(200))
            }
            try #require(child.stderr.contains("serving MCP on stdio"), "attempt \(attempt): never started; stderr:\n\(child.stderr)")
            child.send(signal: SIGTERM)
            let (exitStatus, timedOut) = await child.finish(within: .seconds(5))
            #expect(!timedOut, "attempt \(attempt): still running 5 s after the signal; stderr:\n\(child.stderr)")
            #expect(exitStatus == 0, "attempt \(attempt): exit \(exitStatus); stderr:\n\(child.stderr)")
        }
    }

    @Test func anUnusableDatabaseIsReportedOnStderrWithExit1() async throws {
        let directory = TemporaryDirectory()
        let child = try StdioChild(productPath("delegation-mcp"), ["--db", directory.file("missing-dir/delegations.db")])
        try? child.closeStdin()
        let (exitStatus, timedOut) = await child.finish(within: .seconds(10))
        #expect(!timedOut && exitStatus == 1)
        #expect(child.stdout.isEmpty, "nothing on stdout: \(child.stdout)")
        #expect(child.stderr.contains("does not exist"), "\(child.stderr)")
    }
}
