@testable import DelegationStore
import DelegationTool
import SQLiteDatabase
import Foundation
import TestSupport
import Testing

/// The short form of scripts/chaos.sh: 4 real workers, 500 delegations, 10 SIGKILLs, a platform outage,
/// the write lock held by another process past the workers' busy timeout, a peer that hangs past the timeout.
@Suite struct ChaosTests {
    @Test func killingWorkersAtRandomLosesNothing() async throws {
        let directory = TemporaryDirectory()
        let chaos = try Child(productPath("delegation-chaos"), [
            "--delegations", "500", "--kills", "10", "--outages", "1", "--outage-seconds", "3", "--locks", "1",
            "--workers", "4", "--concurrency", "1", "--timeout", "150", "--dir", directory.path,
        ])
        let result = await chaos.finish(within: .seconds(170))
        #expect(!result.timedOut)
        #expect(result.status == 0, "\(result.stdout)\n\(result.stderr)")
        let line = try #require(result.stdout.split(separator: "\n").first { $0.hasPrefix("CHAOS_SUMMARY ") })
        let summary = try JSONValue.parse(String(line.dropFirst("CHAOS_SUMMARY ".count)))
        #expect(summary["delegations"] == .int(500), "none lost, none duplicated")
        #expect(summary["kills"] == .int(10))
        #expect(summary["outages"] == .int(1) && summary["held_locks"] == .int(1))
        #expect((summary["peer_hangs"]?.intValue ?? 0) > 0 && (summary["long_tasks"]?.intValue ?? 0) > 0)
        #expect(summary["not_terminal"] == .int(0))
        #expect(summary["wrong_outcome"] == .int(0))
        #expect(summary["integrity_check"] == .string("ok"))
        #expect(summary["admin_check_ok"] == .bool(true))
        #expect(summary["message_ids_seen"] == .int(500), "every messageId reached the peer")
        let duplicates = summary["duplicate_sends"]?.intValue ?? .max
        #expect(duplicates <= 10, "with one request in flight per worker, each kill repeats at most one send (\(duplicates))")
        // A long task runs again only when a kill falls between the peer's accepting it and the hand-over's
        // commit (the tool also checks that each such row shows a take-over): at most one per kill here.
        let reruns = summary["long_task_reruns"]?.intValue ?? .max
        #expect(reruns <= 10, "long task reruns (\(reruns)) at most one per kill")
        #expect(summary["problems"] == .array([]))
    }
}
