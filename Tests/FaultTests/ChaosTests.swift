import DelegationStore
import Foundation
import TestSupport
import Testing

/// The short form of scripts/chaos.sh: 4 real workers, 500 delegations, 10 SIGKILLs.
@Suite struct ChaosTests {
    @Test func killingWorkersAtRandomLosesNothing() async throws {
        let directory = TemporaryDirectory()
        let chaos = try Child(productPath("delegation-chaos"), [
            "--delegations", "500", "--kills", "10", "--workers", "4", "--concurrency", "1",
            "--timeout", "150", "--dir", directory.path,
        ])
        let result = await chaos.finish(within: .seconds(170))
        #expect(!result.timedOut)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("CHAOS_SUMMARY ") })
        let summary = try JSONValue.parse(String(line.dropFirst("CHAOS_SUMMARY ".count)))
        #expect(summary["delegations"] == .int(500), "none lost, none duplicated")
        #expect(summary["kills"] == .int(10))
        #expect(summary["not_terminal"] == .int(0))
        #expect(summary["wrong_outcome"] == .int(0))
        #expect(summary["integrity_check"] == .string("ok"))
        #expect(summary["admin_check_ok"] == .bool(true))
        #expect(summary["message_ids_seen"] == .int(500), "every messageId reached the peer")
        let duplicates = summary["duplicate_sends"]?.intValue ?? .max
        #expect(duplicates <= 10, "with one request in flight per worker, each kill repeats at most one send (\(duplicates))")
        #expect(summary["problems"] == .array([]))
    }
}
