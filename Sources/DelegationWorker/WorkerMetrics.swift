import DelegationStore
import Metrics

/// What a worker counts, through swift-metrics (exported in the Prometheus text format at `/metrics` when
/// `--metrics-port` is set; a no-op otherwise). Created once per worker: the handles are cached, so a
/// count on the hot path is an atomic add, not a registry lookup.
struct WorkerMetrics: Sendable {
    /// `delegation_outcomes_total{status}`: outcomes this worker wrote (completed, failed), and rows it
    /// lost to an operator's cancel.
    private let outcomes: [DelegationStatus: Counter]
    /// `delegation_claims_total`: rows claimed (a send, or one poll of a followed task).
    let claims = Counter(label: "delegation_claims_total")
    /// `delegation_retries_total`: attempts rescheduled after a retryable failure.
    let retries = Counter(label: "delegation_retries_total")
    /// `delegation_lease_takeovers_total`: claims that took an expired lease over from another worker.
    let takeovers = Counter(label: "delegation_lease_takeovers_total")
    /// `delegation_outbox_backlog`: mirror calls waiting (refreshed at the poll interval).
    let outboxBacklog = Gauge(label: "delegation_outbox_backlog")
    /// `delegation_rows{status}`: rows per status (refreshed at the poll interval).
    private let rows: [DelegationStatus: Gauge]

    init() {
        outcomes = Dictionary(uniqueKeysWithValues: [DelegationStatus.completed, .failed, .cancelled].map {
            ($0, Counter(label: "delegation_outcomes_total", dimensions: [("status", $0.rawValue)]))
        })
        rows = Dictionary(uniqueKeysWithValues: DelegationStatus.allCases.map {
            ($0, Gauge(label: "delegation_rows", dimensions: [("status", $0.rawValue)]))
        })
    }

    func outcome(_ status: DelegationStatus, count: Int = 1) {
        outcomes[status]?.increment(by: count)
    }

    func rows(_ counts: [DelegationStatus: Int]) {
        for (status, gauge) in rows { gauge.record(counts[status] ?? 0) }
    }

    /// `delegation_a2a_request_duration_seconds{generation, outcome}`: one HTTP exchange with a peer.
    static func a2aRequest(generation: A2AVersion, outcome: String, duration: Duration) {
        Metrics.Timer(
            label: "delegation_a2a_request_duration_seconds",
            dimensions: [("generation", generation.rawValue), ("outcome", outcome)]
        ).record(duration: duration)
    }

    /// `delegation_platform_requests_total{call, outcome}`: `outcome` is ok (2xx), refused (4xx),
    /// failed (5xx and others) or unreachable (no answer).
    static func platformRequest(_ call: String, status: Int?) {
        let outcome =
            switch status {
            case nil: "unreachable"
            case (200..<300)?: "ok"
            case (400..<500)?: "refused"
            default: "failed"
            }
        Counter(label: "delegation_platform_requests_total", dimensions: [("call", call), ("outcome", outcome)]).increment()
    }
}
