import ArgumentParser
import DelegationStore
import DelegationTool
import Foundation

/// What `vacuum` and `checkpoint` share: run one maintenance operation, report the file's sizes before and after.
enum Maintenance {
    static func run(
        _ options: CommonOptions, _ operation: String, _ body: @escaping @Sendable (DelegationStore) async throws -> Checkpoint
    ) async throws {
        try await Admin.run(options) { store in
            let before = store.sizes
            let details = try await body(store)
            let after = store.sizes
            return Report(
                json: ["operation": .string(operation), "before": before.json, "after": after.json, "details": details.json],
                text: "\(operation)\nbefore  \(before.text)\nafter   \(after.text)")
        }
    }
}
