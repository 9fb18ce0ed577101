import DelegationMCP
import DelegationStore
import DelegationTool
import Foundation
import MCP
import TestSupport
import Testing

/// The four tools through an SDK client, in process (`InMemoryTransport`): schemas, answers (the JSON the
/// admin CLI prints with --json), errors as `isError` results, and a server that no input can crash.
@Suite struct DelegationMCPTests {
    @Test func toolsListShowsTheFourToolsWithObjectSchemas() async throws {
        let session = try await MCPSession()
        let (tools, _) = try await session.client.listTools()
        #expect(tools.map(\.name) == ["delegate_to_workspace", "check_delegation_status", "list_delegations", "cancel_delegation"])
        let required: [String: [String]] = [
            "delegate_to_workspace": ["workspace_id", "task"], "check_delegation_status": [],
            "list_delegations": [], "cancel_delegation": ["task_id"],
        ]
        let properties: [String: Set<String>] = [
            "delegate_to_workspace": ["workspace_id", "task"], "check_delegation_status": ["task_id"],
            "list_delegations": ["status", "workspace_id", "limit"], "cancel_delegation": ["task_id", "reason"],
        ]
        for tool in tools {
            let schema = try #require(tool.inputSchema.objectValue, "\(tool.name): schema is an object")
            #expect(schema["type"] == "object", "\(tool.name)")
            let declared = try #require(schema["properties"]?.objectValue, "\(tool.name): properties")
            #expect(Set(declared.keys) == properties[tool.name], "\(tool.name)")
            for (name, property) in declared {
                #expect(property.objectValue?["type"]?.stringValue != nil, "\(tool.name).\(name) has a type")
                #expect(property.objectValue?["description"]?.stringValue?.isEmpty == false, "\(tool.name).\(name) is described")
            }
            #expect(schema["required"]?.arrayValue?.compactMap(\.stringValue) == required[tool.name], "\(tool.name)")
            #expect(tool.description?.isEmpty == false)
        }
        let byName = Dictionary(uniqueKeysWithValues: tools.map { ($0.name, $0) })
        let list = try #require(byName["list_delegations"]?.inputSchema.objectValue?["properties"]?.objectValue)
        #expect(list["status"]?.objectValue?["enum"] == .array(DelegationStatus.allCases.map { .string($0.rawValue) }))
        #expect(list["limit"]?.objectValue?["type"] == "integer")
        #expect(list["limit"]?.objectValue?["minimum"] == 1)
        #expect(list["limit"]?.objectValue?["maximum"] == 1000)
        // The original tool's guidance, where a model reads it.
        #expect(byName["delegate_to_workspace"]?.description?.contains("check_delegation_status") == true)
        #expect(byName["delegate_to_workspace"]?.description?.contains("task_id") == true)
        #expect(byName["check_delegation_status"]?.description?.contains("do not resend it") == true)
        #expect(byName["check_delegation_status"]?.description?.contains("check again later") == true)
        #expect(await session.close())
    }

    @Test func delegateThenCheckAnswersPendingAndTheListCountsIt() async throws {
        let session = try await MCPSession()
        let delegated = try await session.answer(
            "delegate_to_workspace", ["workspace_id": "ws-research", "task": "Summarise the Q3 report"])
        let id = try #require(delegated["task_id"]?.stringValue)
        #expect(delegated == ToolAnswer.delegated(id: id, workspaceID: "ws-research"))
        #expect(delegated["success"] == true && delegated["status"] == "delegated")

        let stored = try #require(try await session.store.delegation(id: id))
        #expect(stored.sourceWorkspaceID == "ws-self")

        let (text, isError) = try await session.call("check_delegation_status", ["task_id": .string(id)])
        #expect(!isError)
        #expect(text == ToolAnswer.status(of: stored).serialized, "the CLI's `status ID --json` document")
        let status = try JSONValue.parse(text)
        #expect(status["status"] == "pending")
        #expect(status["task"] == "Summarise the Q3 report")
        #expect(status["workspace_id"] == "ws-research")

        let all = try await session.answer("check_delegation_status")
        #expect(all["count"] == 1)
        #expect(all["delegations"]?[0]?["task_id"]?.stringValue == id)
        #expect(all == (try await DelegationTool(store: session.store, logger: quietLogger).listAll()))
        // An empty task_id is the list form too, as in the original tool.
        #expect(try await session.answer("check_delegation_status", ["task_id": ""])["count"] == 1)

        let unknown = try await session.call("check_delegation_status", ["task_id": "no-such-id"])
        #expect(unknown.isError)
        #expect(unknown.text == "No delegation found with task_id no-such-id")
        #expect(await session.close())
    }

    @Test func checkShowsTheResultOfACompletedDelegation() async throws {
        let session = try await MCPSession()
        let id = try await session.delegate("ws-peer", "Add 2 and 2")
        let claimed = try await session.store.claim(worker: "w-test", limit: 10, lease: .seconds(60))
        #expect(claimed.map(\.id) == [id])
        try await session.store.complete(id: id, worker: "w-test", result: "4")
        let status = try await session.answer("check_delegation_status", ["task_id": .string(id)])
        #expect(status["status"] == "completed")
        #expect(status["result"] == "4")

        let refused = try await session.call("cancel_delegation", ["task_id": .string(id)])
        #expect(refused.isError)
        #expect(refused.text.contains(id) && refused.text.contains("final"), "the database's own words: \(refused.text)")
        #expect(try await session.store.delegation(id: id)?.status == .completed)
        #expect(await session.close())
    }

    @Test func listDelegationsFiltersNewestFirstWithTheCLIsJSON() async throws {
        let session = try await MCPSession()
        let first = try await session.delegate("ws-a", "one")
        let second = try await session.delegate("ws-b", "two")
        let third = try await session.delegate("ws-a", "three")
        try await session.store.cancel(id: second, reason: "not needed")

        let pending = try await session.call("list_delegations", ["status": "pending"])
        #expect(!pending.isError)
        let rows = try await session.store.list(DelegationQuery(statuses: [.pending], newestFirst: true, limit: 50))
        let cli: JSONValue = ["delegations": .array(rows.map(\.summaryJSON)), "count": .int(rows.count)]
        #expect(pending.text == cli.serialized, "the CLI's `list --status pending --json` document")
        #expect(rows.map(\.id) == [third, first])

        let cancelled = try await session.answer("list_delegations", ["status": "cancelled"])
        #expect(cancelled["count"] == 1)
        #expect(cancelled["delegations"]?[0]?["id"]?.stringValue == second)

        let toA = try await session.answer("list_delegations", ["workspace_id": "ws-a"])
        #expect(toA["delegations"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == [third, first])

        let newest = try await session.answer("list_delegations", ["limit": 1])
        #expect(newest["count"] == 1)
        #expect(newest["delegations"]?[0]?["id"]?.stringValue == third)

        let everything = try await session.answer("list_delegations", ["status": nil, "limit": 1000.0])
        #expect(everything["count"] == 3)
        // Empty filters (what some models send for "any") filter nothing.
        #expect(try await session.answer("list_delegations", ["status": "", "workspace_id": ""])["count"] == 3)
        #expect(await session.close())
    }

    @Test func cancelCancelsOnceAndASecondCancelIsAnError() async throws {
        let session = try await MCPSession()
        let id = try await session.delegate("ws-peer", "Something no longer needed")
        let (text, isError) = try await session.call("cancel_delegation", ["task_id": .string(id), "reason": "duplicate"])
        #expect(!isError)
        #expect(text == (["cancelled": [.string(id)], "count": 1] as JSONValue).serialized, "the CLI's `cancel --json` document")
        let row = try #require(try await session.store.delegation(id: id))
        #expect(row.status == .cancelled)
        #expect(row.error == "cancelled by delegation-mcp (workspace ws-self, client delegation-mcp-tests): duplicate")

        let again = try await session.call("cancel_delegation", ["task_id": .string(id)])
        #expect(again.isError)
        #expect(again.text == "delegation \(id): already cancelled: cancelled is final", "the store's message: \(again.text)")

        let unknown = try await session.call("cancel_delegation", ["task_id": "no-such-id"])
        #expect(unknown.isError)
        #expect(unknown.text == "No delegation found with task_id no-such-id")

        let status = try await session.answer("check_delegation_status", ["task_id": .string(id)])
        #expect(status["status"] == "cancelled")
        #expect(status["error"] == "cancelled by delegation-mcp (workspace ws-self, client delegation-mcp-tests): duplicate")
        #expect(await session.close())
    }

    @Test func readOnlyRolesAreRefusedAndNothingIsStored() async throws {
        let session = try await MCPSession(roles: ["read-only"])
        let (text, isError) = try await session.call("delegate_to_workspace", ["workspace_id": "ws-peer", "task": "Do it"])
        #expect(isError)
        #expect(text == #"{"success": false, "error": "RBAC: no 'delegate' permission. Roles: ['read-only']"}"#)
        #expect(try await session.store.list(DelegationQuery()).isEmpty)
        // Reading is still allowed.
        #expect(try await session.answer("check_delegation_status")["count"] == 0)
        #expect(try await session.answer("list_delegations")["count"] == 0)
        // Cancelling someone's delegation is not.
        let id = try #require(try await session.store.enqueue(workspaceID: "ws-peer", task: "someone else's").id as String?)
        let (refusal, refused) = try await session.call("cancel_delegation", ["task_id": .string(id)])
        #expect(refused && refusal.contains("RBAC: no 'delegate' permission"))
        #expect(try await session.store.delegation(id: id)?.status == .pending)
        #expect(await session.close())
    }

    @Test func badArgumentsAreErrorsNamingTheArgumentNotCrashes() async throws {
        let session = try await MCPSession()
        let cases: [(tool: String, arguments: [String: Value]?, says: String)] = [
            ("delegate_to_workspace", nil, "workspace_id is required"),
            ("delegate_to_workspace", ["workspace_id": "ws-peer"], "task is required"),
            ("delegate_to_workspace", ["workspace_id": 5, "task": "x"], "workspace_id must be a string, not the number 5"),
            ("delegate_to_workspace", ["workspace_id": "ws-peer", "task": ["a", "b"]], "task must be a string, not an array"),
            ("delegate_to_workspace", ["workspace_id": "ws-peer", "task": "   "], "task must not be empty"),
            ("delegate_to_workspace", ["workspace_id": "", "task": "x"], "workspace_id must not be empty"),
            ("delegate_to_workspace", ["workspace_id": "ws-peer", "task": "x", "priority": "high"], "priority is not an argument of delegate_to_workspace"),
            ("check_delegation_status", ["task_id": true], "task_id must be a string, not a boolean"),
            ("check_delegation_status", ["taskId": "abc"], "taskId is not an argument of check_delegation_status"),
            ("list_delegations", ["limit": 0], "limit must be from 1 to 1000, not 0"),
            ("list_delegations", ["limit": 1001], "limit must be from 1 to 1000, not 1001"),
            ("list_delegations", ["limit": -5], "limit must be from 1 to 1000, not -5"),
            ("list_delegations", ["limit": 2.5], "limit must be a whole number from 1 to 1000, not the number 2.5"),
            ("list_delegations", ["limit": "50"], "limit must be a whole number from 1 to 1000, not the string '50'"),
            ("list_delegations", ["limit": 1e300], "limit must be a whole number"),
            ("list_delegations", ["status": "done"], "status must be one of pending, in_progress, queued, completed, failed, cancelled, not 'done'"),
            ("list_delegations", ["status": 3], "status must be a string"),
            ("list_delegations", ["workspace_id": ["x": 1]], "workspace_id must be a string, not an object"),
            ("cancel_delegation", nil, "task_id is required"),
            ("cancel_delegation", ["task_id": nil], "task_id is required"),
            ("cancel_delegation", ["task_id": "abc", "reason": 7], "reason must be a string"),
        ]
        for (tool, arguments, says) in cases {
            let (text, isError) = try await session.call(tool, arguments)
            #expect(isError, "\(tool) \(String(describing: arguments)) is an error")
            #expect(text.contains(says), "\(tool) \(String(describing: arguments)): \(text)")
        }
        #expect(try await session.store.list(DelegationQuery()).isEmpty, "no bad call stored anything")

        // An unknown tool is a protocol error (MCP: -32602), answered, not a crash.
        await #expect(throws: MCPError.self) { try await session.client.callTool(name: "delegate", arguments: [:]) }
        // The server still answers.
        #expect(try await session.client.listTools().tools.count == 4)
        _ = try await session.delegate("ws-peer", "still works")
        #expect(await session.close())
    }

    @Test func stringsThatLookLikeDataURLsArriveUnchanged() async throws {
        let session = try await MCPSession()
        for task in ["data: revenue 5M, costs 3M - compute the margin", "data:,hello", "data:text/plain;base64,aGVsbG8=", "\u{E000}data:,x", "\u{E000}plain"] {
            let id = try await session.delegate("ws-peer", task)
            #expect(try await session.store.delegation(id: id)?.task == task)
        }
        #expect(await session.close())
    }

    @Test func concurrentCallsAreEachAnswered() async throws {
        let session = try await MCPSession()
        let ids = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<20 { group.addTask { try await session.delegate("ws-\(index % 3)", "task \(index)") } }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 20)
        #expect(try await session.answer("list_delegations", ["limit": 100])["count"] == 20)
        #expect(await session.close())
    }
}
