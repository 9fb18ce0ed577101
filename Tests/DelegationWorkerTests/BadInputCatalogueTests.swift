import DelegationFakes
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import DelegationWorker
import Foundation
import TestSupport
import Testing

/// The README's bad-input catalogue, worker side: every malformed or hostile answer from a peer, from
/// discovery and from the platform's list. Each case runs next to a healthy delegation, which must
/// complete: one bad peer never stops the worker serving the others.
@Suite struct BadInputCatalogueTests {
    struct PeerCase: Sendable, CustomTestStringConvertible {
        var name: String
        var reply: FakePeer.Reply
        var status: DelegationStatus
        /// The stored error contains this (nil: no error expected).
        var error: String?
        var timeout: Duration = .seconds(1)
        var testDescription: String { name }
    }

    static func json(_ text: String) -> FakePeer.Reply {
        .raw(LoopbackResponse.text(200, text, contentType: "application/json"))
    }

    static let tenMegabytes = 10 * 1024 * 1024

    static let peerCases: [PeerCase] = [
        PeerCase(name: "P1 truncated JSON", reply: json(#"{"jsonrpc":"2.0","id":"1","result":{"kind":"mess"#), status: .failed, error: "invalid JSON response"),
        PeerCase(name: "P2 not JSON", reply: json("OK, will do!"), status: .failed, error: "invalid JSON response"),
        PeerCase(name: "P3 a JSON array", reply: json("[1, 2, 3]"), status: .failed, error: "not an object"),
        PeerCase(name: "P4 wrong jsonrpc version", reply: json(#"{"jsonrpc":"1.0","id":"1","result":{"kind":"message","parts":[]}}"#), status: .failed, error: #"jsonrpc is not "2.0""#),
        PeerCase(name: "P5 a message without parts", reply: json(#"{"jsonrpc":"2.0","id":"1","result":{"kind":"message","role":"agent","messageId":"m"}}"#), status: .failed, error: "a message without parts"),
        PeerCase(name: "P6 a result that is neither task nor message", reply: json(#"{"jsonrpc":"2.0","id":"1","result":{"hello":1}}"#), status: .failed, error: "neither a task nor a message"),
        PeerCase(name: "P7 neither result nor error", reply: json(#"{"jsonrpc":"2.0","id":"1"}"#), status: .failed, error: "no result"),
        PeerCase(name: "P8 a 10 MB answer is stored cut to 1 MiB", reply: .completed(String(repeating: "x", count: tenMegabytes)), status: .completed, error: nil, timeout: .seconds(60)),
        PeerCase(name: "P9 10 MB of garbage", reply: .raw(LoopbackResponse(status: 200, body: Array(repeating: UInt8(ascii: "#"), count: tenMegabytes))), status: .failed, error: "invalid JSON response", timeout: .seconds(60)),
        PeerCase(name: "P10 bytes that are not UTF-8", reply: .raw(LoopbackResponse(status: 200, body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])), status: .failed, error: "invalid JSON response"),
        PeerCase(name: "P11 an HTML 502 page (retried, then failed)", reply: .raw(LoopbackResponse.text(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", contentType: "text/html")), status: .failed, error: "HTTP 502: <html>"),
        PeerCase(name: "P12 a slow-loris body (cut by the request timeout)", reply: .raw(LoopbackResponse(status: 200, headers: [("Content-Length", "4000")], body: Array(repeating: UInt8(ascii: " "), count: 4000), delivery: .trickle(chunkSize: 1, interval: .milliseconds(100)))), status: .failed, error: "timed out"),
        PeerCase(name: "P13 connection reset mid-body", reply: .raw(LoopbackResponse(status: 200, headers: [("Content-Length", "500")], body: Array(repeating: UInt8(ascii: " "), count: 500), delivery: .resetAfter(bytes: 20))), status: .failed, error: "connection"),
        PeerCase(name: "P14 connection closed without an answer", reply: .raw(LoopbackResponse(status: 200, delivery: .closeWithoutResponse)), status: .failed, error: "connection"),
        PeerCase(name: "P15 a redirect (to itself: a loop) is not followed", reply: .raw(LoopbackResponse(status: 302, headers: [("Location", "/")])), status: .failed, error: "HTTP 302"),
        PeerCase(name: "P16 an empty 200", reply: .raw(LoopbackResponse(status: 200)), status: .failed, error: "invalid JSON response"),
        PeerCase(name: "P17 429 every time (retried, then failed)", reply: .http(429, "slow down", headers: [("Retry-After", "0")]), status: .failed, error: "HTTP 429"),
        PeerCase(name: "P18 401 fails at once", reply: .http(401, "who are you", headers: []), status: .failed, error: "HTTP 401"),
        PeerCase(name: "P19 input-required", reply: .task(state: "input-required", text: "which spreadsheet?", taskID: "t1"), status: .failed, error: "which spreadsheet?"),
        PeerCase(name: "P20 a JSON-RPC error", reply: .jsonRPCError(-32602, "invalid params"), status: .failed, error: "JSON-RPC error -32602: invalid params"),
        PeerCase(name: "P21 a working task without an id", reply: json(#"{"jsonrpc":"2.0","id":"1","result":{"kind":"task","status":{"state":"working"}}}"#), status: .failed, error: "without a usable id"),
        PeerCase(name: "P22 JSON nested 100,000 deep", reply: json(String(repeating: "[", count: 100_000)), status: .failed, error: "invalid JSON response"),
        PeerCase(name: "P23 an answer over 16 MiB is refused", reply: .raw(LoopbackResponse(status: 200, body: Array(repeating: UInt8(ascii: " "), count: 17 * 1024 * 1024))), status: .failed, error: "larger than", timeout: .seconds(60)),
        PeerCase(name: "P24 a 202 without the queued flag (retried, then failed)", reply: .raw(LoopbackResponse.text(202, #"{"accepted": true}"#, contentType: "application/json")), status: .failed, error: "HTTP 202 without a queued acceptance"),
    ]

    @Test(arguments: peerCases)
    func peerAnswers(_ input: PeerCase) async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-bad") { _ in input.reply }
        try await scenario.peer("ws-good") { _ in .completed("fine") }
        let bad = try await scenario.delegate("ws-bad")
        let good = try await scenario.delegate("ws-good")
        try await scenario.runUntilIdle(timeout: .seconds(90)) { $0.requestTimeout = input.timeout }
        let row = try await scenario.row(bad)
        #expect(row.status == input.status, "\(input.name): \(row.error ?? "")")
        if let error = input.error {
            #expect(row.error?.contains(error) == true, "\(input.name): \(row.error ?? "no error")")
        } else {
            #expect(row.error == nil)
        }
        if input.status == .completed {
            #expect((row.result?.utf8.count ?? 0) <= (1 << 20) + 200, "stored results are capped")
        }
        #expect(try await scenario.row(good).status == .completed, "the worker kept serving others")
        await scenario.close()
    }

    struct DiscoveryCase: Sendable, CustomTestStringConvertible {
        var name: String
        var discovery: @Sendable () -> (FakePlatform.Discovery, RefusingPort?)
        var error: String
        var testDescription: String { name }
    }

    static let discoveryCases: [DiscoveryCase] = [
        DiscoveryCase(name: "D1 no url", discovery: { (.noURL, nil) }, error: "No URL for workspace ws-bad"),
        DiscoveryCase(name: "D2 a file:// url", discovery: { (.url("file:///etc/passwd"), nil) }, error: "is not an http or https URL"),
        DiscoveryCase(name: "D3 an ftp:// url", discovery: { (.url("ftp://example.com/agent"), nil) }, error: "is not an http or https URL"),
        DiscoveryCase(name: "D4 a url that is not a url", discovery: { (.url("::: not a url :::"), nil) }, error: "is not an http or https URL"),
        DiscoveryCase(name: "D5 a url to a closed port (retried, then failed)", discovery: {
            let port = RefusingPort()
            return (.url(port.url), port)
        }, error: "connection refused"),
        DiscoveryCase(name: "D6 HTTP 500 (retried, then failed)", discovery: { (.status(500, "boom"), nil) }, error: "Discovery failed: HTTP 500"),
        DiscoveryCase(name: "D7 HTTP 404", discovery: { (.status(404, "{}"), nil) }, error: "Discovery failed: HTTP 404"),
        DiscoveryCase(name: "D8 the connection dropped (retried, then failed)", discovery: { (.dropConnection, nil) }, error: "Discovery failed"),
    ]

    @Test(arguments: discoveryCases)
    func discoveryAnswers(_ input: DiscoveryCase) async throws {
        let scenario = try await Scenario()
        let (discovery, port) = input.discovery()
        scenario.platform.register("ws-bad", discovery)
        try await scenario.peer("ws-good") { _ in .completed("fine") }
        let bad = try await scenario.delegate("ws-bad")
        let good = try await scenario.delegate("ws-good")
        try await scenario.runUntilIdle()
        let row = try await scenario.row(bad)
        #expect(row.status == .failed)
        #expect(row.error?.contains(input.error) == true, "\(input.name): \(row.error ?? "no error")")
        #expect(try await scenario.row(good).status == .completed)
        _ = port
        await scenario.close()
    }

    struct ListCase: Sendable, CustomTestStringConvertible {
        var name: String
        var response: LoopbackResponse
        var testDescription: String { name }
    }

    static let listCases: [ListCase] = [
        ListCase(name: "L1 null", response: .text(200, "null", contentType: "application/json")),
        ListCase(name: "L2 an object instead of an array", response: .text(200, #"{"delegations": []}"#, contentType: "application/json")),
        ListCase(name: "L3 rows missing their fields", response: .text(200, #"[{"status": "completed"}, {"delegation_id": null}, 42, "x"]"#, contentType: "application/json")),
        ListCase(name: "L4 not JSON", response: .text(200, "<html>maintenance</html>", contentType: "text/html")),
        ListCase(name: "L5 HTTP 500", response: .text(500, "down")),
    ]

    /// A queued delegation waits through any list answer it cannot use, then resolves once the list is sane.
    @Test(arguments: listCases)
    func platformListAnswers(_ input: ListCase) async throws {
        let scenario = try await Scenario()
        try await scenario.peer("ws-busy") { _ in .queued }
        try await scenario.peer("ws-good") { _ in .completed("fine") }
        let queued = try await scenario.delegate("ws-busy")
        scenario.platform.overrideList(input.response)
        let good = try await scenario.delegate("ws-good")
        try await scenario.run(until: {
            let list = scenario.platform.calls.filter { $0.method == "GET" && $0.path.hasSuffix("/delegations") }.count
            return try await scenario.row(good).status == .completed && list >= 3
        })
        #expect(try await scenario.row(queued).status == .queued, "\(input.name): still waiting, nothing raised")
        scenario.platform.overrideList(nil)
        scenario.platform.resolve(delegationID: queued, status: "completed", preview: "drained")
        try await scenario.run(until: { try await scenario.row(queued).status == .completed })
        #expect(try await scenario.row(queued).result == "drained")
        await scenario.close()
    }
}
