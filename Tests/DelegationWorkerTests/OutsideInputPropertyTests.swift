@testable import DelegationWorker
@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import NIOHTTP1
import Testing

/// Nothing that arrives from the network can trap the worker: every parser of an outside answer — the
/// peer's (and the platform proxy's), discovery, the agent card, the platform's list, Retry-After — is fed
/// thousands of generated headers and bodies, and must answer with a typed error or a sane value.
/// A trap would end this test process, so reaching each assertion is itself part of the proof.
@Suite struct OutsideInputPropertyTests {
    static let cases = 3_000

    @Test func retryAfterIsIgnoredOrSaneForAnyHeader() {
        var random = SeededRandom(seed: 0x5EED_0001)
        let now = Date()
        for _ in 0..<Self.cases {
            let value = random.headerValue()
            if let delay = RetryAfter.parse(header: value, now: now) {
                #expect(delay >= .zero && delay <= RetryAfter.ceiling, "Retry-After: \(value.debugDescription) → \(delay)")
            }
            var configuration = WorkerConfiguration()
            configuration.maximumRetryDelay = .seconds(60)
            let wait = configuration.backoff(afterAttempt: random.int(in: -5...1_000), retryAfter: RetryAfter.parse(header: value, now: now))
            #expect(wait >= .zero && wait <= .seconds(60), "backoff for Retry-After \(value.debugDescription) → \(wait)")
        }
    }

    @Test func rfc9110RetryAfterForms() {
        let now = Date(timeIntervalSince1970: 784_111_777)  // Sun, 06 Nov 1994 08:49:37 GMT
        #expect(RetryAfter.parse(header: "120", now: now) == .seconds(120))
        #expect(RetryAfter.parse(header: " 7 ", now: now) == .seconds(7))
        #expect(RetryAfter.parse(header: "Sun, 06 Nov 1994 08:50:37 GMT", now: now) == .seconds(60))
        #expect(RetryAfter.parse(header: "Sunday, 06-Nov-94 08:50:37 GMT", now: now) == .seconds(60))
        #expect(RetryAfter.parse(header: "Sun Nov  6 08:50:37 1994", now: now) == .seconds(60))
        #expect(RetryAfter.parse(header: "Sun, 06 Nov 1994 08:00:00 GMT", now: now) == .zero, "a date in the past means now")
        #expect(RetryAfter.parse(header: "Fri, 31 Dec 9999 23:59:59 GMT", now: now) == RetryAfter.ceiling)
        #expect(RetryAfter.parse(header: "123456789012345678901234567890", now: now) == RetryAfter.ceiling)
        for ignored in ["inf", "-1", "1.5", "NaN", "+5", "1e3", "", "  ", "0x10", "５", "soon"] {
            #expect(RetryAfter.parse(header: ignored, now: now) == nil, "\(ignored.debugDescription) is not delay-seconds nor an HTTP-date")
        }
        #expect(RetryAfter.parse(json: .int(-3)) == nil)
        #expect(RetryAfter.parse(json: .double(2.5)) == .milliseconds(2500))
        #expect(RetryAfter.parse(json: .double(1e300)) == RetryAfter.ceiling)
        #expect(RetryAfter.parse(json: .int(.max)) == RetryAfter.ceiling)
        #expect(RetryAfter.parse(json: .string("30")) == .seconds(30))
        #expect(RetryAfter.parse(json: .bool(true)) == nil)
    }

    @Test func peerAndProxyAnswersAlwaysClassify() {
        var random = SeededRandom(seed: 0x5EED_0002)
        for _ in 0..<Self.cases {
            let answer = random.answer(templates: Self.peerTemplates)
            let outcome = A2AProtocol.classify(answer)
            switch outcome {
            case .retry(let text, let delay):
                #expect(delay.map { $0 >= .zero && $0 <= RetryAfter.ceiling } ?? true)
                #expect(text.utf8.count <= 2 * TextLimit.error)
            case .failed(let text, _), .queued(let text), .wrongGeneration(let text):
                #expect(text.utf8.count <= 2 * TextLimit.error, "error texts are capped")
            case .working(let id, _):
                #expect(!id.isEmpty && id.utf8.count <= 1024)
            case .completed:
                break
            }
        }
    }

    @Test func discoveryAgentCardAndListAnswersNeverTrap() {
        var random = SeededRandom(seed: 0x5EED_0003)
        for _ in 0..<Self.cases {
            let discovery = PlatformClient.discovery(from: random.answer(templates: Self.discoveryTemplates), target: random.text(maximum: 40))
            if case .retry(_, let delay?) = discovery { #expect(delay >= .zero && delay <= RetryAfter.ceiling) }
            if case .found(let url) = discovery { #expect(url.hasPrefix("http")) }
            _ = AgentCard.version(from: random.answer(templates: Self.cardTemplates).body)
            do {
                let rows = try PlatformClient.listed(from: random.answer(templates: Self.listTemplates))
                #expect(rows.allSatisfy { ($0.error?.utf8.count ?? 0) <= 2 * TextLimit.error })
            } catch {
                #expect(!error.description.isEmpty, "a typed error that says what was wrong")
            }
        }
    }

    @Test func anyDurationBecomesAStrftimeModifier() {
        var random = SeededRandom(seed: 0x5EED_0004)
        let extremes: [Duration] = [
            .zero, .seconds(Int64.max), .seconds(Int64.min), .milliseconds(Int64.max), .nanoseconds(-1),
            Duration(secondsComponent: Int64.max, attosecondsComponent: 999_999_999_999_999_999),
        ]
        // Every modifier is one SQLite understands (a date, not NULL), and moves time the right way.
        let database = try! Database(path: ":memory:")
        for duration in extremes + (0..<Self.cases).map({ _ in .seconds(random.int64() % 10_000_000_000) }) {
            let modifier = Transitions.offset(duration)
            let row = try? database.queryFirst(
                "SELECT strftime('%s', '2026-01-01T00:00:00Z', ?1) - strftime('%s', '2026-01-01T00:00:00Z')", modifier)
            let moved = row?[0].int
            #expect(moved != nil, "\(duration) → \(modifier) is not a modifier SQLite accepts")
            let seconds = duration.components.seconds
            #expect(seconds == 0 || (moved ?? 0).signum() == Int(seconds.signum()), "\(duration) → \(modifier) moved \(moved ?? 0) s")
        }
        #expect(Transitions.offset(.seconds(-5)) == "-5.0 seconds")
    }

    @Test func theJSONParserNeverTrapsOnAnyBytes() {
        var random = SeededRandom(seed: 0x5EED_0005)
        for _ in 0..<Self.cases {
            let bytes = random.bytes(maximum: 512)
            _ = try? JSONValue.parse(bytes)
        }
        let deep = Array(repeating: UInt8(ascii: "["), count: 100_000)
        #expect(throws: JSONValue.ParseError.self) { try JSONValue.parse(deep) }
        #expect((try? JSONValue.parse(Array("123456789012345678901234567890".utf8)))?.intValue == nil)
        #expect((try? JSONValue.parse(Array("1e999".utf8)))?.intValue == nil)
    }

    // MARK: Templates: valid answers whose parts the generator replaces with anything

    static let peerTemplates: [String] = [
        #"{"jsonrpc":"2.0","id":"1","result":{"kind":"task","id":"t-1","status":{"state":"working"}}}"#,
        #"{"jsonrpc":"2.0","id":"1","result":{"task":{"id":"t-1","status":{"state":"TASK_STATE_COMPLETED"},"artifacts":[{"parts":[{"text":"ok"}]}]}}}"#,
        #"{"jsonrpc":"2.0","id":"1","result":{"kind":"message","parts":[{"kind":"text","text":"hi"}]}}"#,
        #"{"jsonrpc":"2.0","id":"1","error":{"code":-32601,"message":"Method not found"}}"#,
        #"{"jsonrpc":"2.0","id":"1","result":{"kind":"task","id":"t","status":{"state":"failed","message":{"parts":[{"text":"no"}]}}}}"#,
        #"{"queued":true,"queue_id":"q-1","queue_depth":3,"message":"busy"}"#,
        #"{"error":"busy","busy":true,"retry_after":30}"#,
        #"{"restarting":true}"#,
    ]
    static let discoveryTemplates: [String] = [
        #"{"id":"ws","url":"http://peer:8000","name":"peer"}"#, #"{"error":"workspace not found"}"#,
        #"{"error":"workspace not available","status":"degraded"}"#,
    ]
    static let cardTemplates: [String] = [
        #"{"name":"p","supportedInterfaces":[{"url":"http://p/","protocolBinding":"JSONRPC","protocolVersion":"1.0"}]}"#,
        #"{"name":"p","url":"http://p/","protocolVersion":"0.3.0","preferredTransport":"JSONRPC"}"#,
    ]
    static let listTemplates: [String] = [
        #"[{"id":"a","type":"delegation","delegation_id":"d","status":"completed","response_preview":"ok","created_at":"x"}]"#,
        #"[{"delegation_id":"d","status":"failed","error":"boom"},{"status":"queued"}]"#,
    ]
}

/// A small deterministic generator (SplitMix64), so a failure names a case that can be replayed.
struct SeededRandom: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func int(in range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &self) }
    mutating func int64() -> Int64 { Int64(bitPattern: next()) }
    mutating func chance(_ percent: Int) -> Bool { int(in: 0...99) < percent }

    mutating func bytes(maximum: Int) -> [UInt8] {
        (0..<int(in: 0...maximum)).map { _ in UInt8.random(in: 0...255, using: &self) }
    }

    mutating func text(maximum: Int) -> String {
        String(decoding: bytes(maximum: maximum), as: UTF8.self)
    }

    /// Numbers as servers have been seen to write them, and as they should never be written.
    mutating func numberToken() -> String {
        [
            "0", "-1", "30", "1.5", "-0", "1e999", "-1e999", "1e308", "NaN", "Infinity", "-Infinity", "inf",
            "123456789012345678901234567890", "-123456789012345678901234567890", "9223372036854775807",
            "9223372036854775808", "-9223372036854775809", "0.0000001", "1E+400", "\(int64())",
        ].randomElement(using: &self)!
    }

    mutating func headerValue() -> String {
        switch int(in: 0...7) {
        case 0: return numberToken()
        case 1: return String((0..<int(in: 1...40)).map { _ in Character(String(int(in: 0...9))) })
        case 2: return text(maximum: 80)
        case 3: return ["Sun, 06 Nov 1994 08:49:37 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "Mon, 32 Foo 2026 99:99:99 GMT",
                        "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "Thu, 01 Jan 1970 00:00:00 GMT"]
            .randomElement(using: &self)!
        case 4: return " \t" + numberToken() + " "
        case 5: return String(repeating: "9", count: int(in: 18...400))
        case 6: return "-" + String(int(in: 0...1_000_000))
        default: return String(repeating: "A", count: int(in: 0...5000))
        }
    }

    /// Any JSON value, nested up to `depth`, numbers from `numberToken`, strings up to 64 KiB.
    mutating func json(depth: Int) -> String {
        switch int(in: depth > 0 ? 0...7 : 0...4) {
        case 0: return numberToken()
        case 1: return ["true", "false", "null"].randomElement(using: &self)!
        case 2: return JSONValue.string(text(maximum: 40)).serialized
        case 3: return JSONValue.string(String(repeating: "x", count: chance(5) ? 70_000 : int(in: 0...300))).serialized
        case 4: return chance(50) ? "\"working\"" : "\"TASK_STATE_\(["SUBMITTED", "COMPLETED", "FAILED", "WEIRD"].randomElement(using: &self)!)\""
        case 5: return "[" + (0..<int(in: 0...4)).map { _ in json(depth: depth - 1) }.joined(separator: ",") + "]"
        case 6:
            let keys = ["id", "kind", "status", "state", "result", "error", "code", "message", "parts", "text", "url",
                        "queued", "retry_after", "task", "artifacts", "delegation_id", "response_preview", "supportedInterfaces",
                        "protocolVersion", "protocolBinding", "jsonrpc"]
            return "{" + (0..<int(in: 0...5)).map { _ in
                "\"\(keys.randomElement(using: &self)!)\":\(json(depth: depth - 1))"
            }.joined(separator: ",") + "}"
        default: return String(repeating: "[", count: int(in: 200...20_000))
        }
    }

    /// A template with one of its values replaced by anything, or raw garbage; any status; odd headers.
    mutating func answer(templates: [String]) -> HTTPAnswer {
        var body: String
        switch int(in: 0...9) {
        case 0: body = text(maximum: 200)
        case 1: body = json(depth: 4)
        default:
            body = templates.randomElement(using: &self)!
            // Replace one scalar value (a number, a string, true/false/null) with a generated value.
            let pattern = #"(:\s*)("[^"]*"|-?[0-9][0-9.eE+-]*|true|false|null)"#
            if let regex = try? NSRegularExpression(pattern: pattern) {
                let matches = regex.matches(in: body, range: NSRange(body.startIndex..., in: body))
                if let match = matches.randomElement(using: &self), let range = Range(match.range(at: 2), in: body) {
                    body.replaceSubrange(range, with: json(depth: 3))
                }
            }
        }
        var headers = HTTPHeaders()
        if chance(40) { headers.add(name: "Retry-After", value: headerValue()) }
        let status = chance(60) ? [200, 202, 429, 500, 502, 503, 404, 401].randomElement(using: &self)! : int(in: 0...999)
        return HTTPAnswer(status: status, headers: headers, body: Array(body.utf8))
    }
}
