import ArgumentParser
import DelegationLogging
import DelegationStore
import DelegationWorker
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle

@main
struct DelegationWorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "delegation-worker",
        abstract: "Delivers delegations stored in SQLite to peer agents over A2A, durably.",
        discussion: """
            Claims pending delegations under a lease, discovers each peer through the platform, sends \
            A2A (0.3 or 1.0) with backoff, mirrors outcomes to the platform through a durable outbox, \
            and follows queued and working tasks until they end. Several workers may share one database.
            Each option falls back to the environment variable named in its help, then to its default.
            SIGTERM/SIGINT: stop claiming, let in-flight requests finish within --shutdown-grace, release \
            the rest, spend what is left of the grace on the platform mirror, exit 0.
            A demo against loopback fakes is its own program: swift run delegation-demo.
            """)

    @Option(help: "SQLite database file (env DELEGATION_DB; default ./delegations.db).")
    var db: String?

    @Option(name: .customLong("platform-url"), help: "Platform base URL (env PLATFORM_URL; default http://host.docker.internal:8080).")
    var platformURL: String?

    @Option(name: .customLong("workspace-id"), help: "This agent's workspace id (env WORKSPACE_ID; required).")
    var workspaceID: String?

    @Option(help: "Platform token, sent as Authorization: Bearer (env PLATFORM_TOKEN). Never logged.")
    var token: String?

    @Option(name: .customLong("retry-attempts"), help: "Delivery attempts per delegation (env DELEGATION_RETRY_ATTEMPTS; default 3).")
    var retryAttempts: Int?

    @Option(name: .customLong("retry-delay"), help: "Seconds before the first retry; doubles each time, with jitter (env DELEGATION_RETRY_DELAY; default 5).")
    var retryDelay: Double?

    @Option(help: "Seconds per A2A request (env DELEGATION_TIMEOUT; default 300).")
    var timeout: Double?

    @Option(help: "Delegations in flight at once (default 64).")
    var concurrency: Int?

    @Option(help: "Seconds a claim holds a row; renewed while the worker lives (default 30).")
    var lease: Double?

    @Option(name: .customLong("poll-interval"), help: "Seconds between checks of queued delegations and working peer tasks (default 5).")
    var pollInterval: Double?

    @Option(name: .customLong("task-deadline"), help: "Seconds a peer's task is followed, from its acceptance, before the delegation fails and the peer is asked to cancel it (default 86400).")
    var taskDeadline: Double?

    @Option(name: .customLong("queued-timeout"), help: "Seconds a delegation may stay queued at the platform without an outcome on its list before it fails (env DELEGATION_QUEUED_TIMEOUT; default 3600).")
    var queuedTimeout: Double?

    @Option(name: .customLong("max-takeovers"), help: "Lease take-overs in a row with no outcome after which a delegation fails as a poison row (default 3).")
    var maxTakeovers: Int?

    @Option(name: .customLong("worker-id"), help: "This worker's name in leases and history (default host:pid:random).")
    var workerID: String?

    @Option(name: .customLong("history-limit"), help: "Keep at most N finished delegations, evicting the oldest (env MAX_DELEGATION_HISTORY; default: keep all).")
    var historyLimit: Int?

    @Flag(name: .customLong("exit-when-idle"), help: "Exit 0 once nothing is pending, in progress, queued or waiting to be mirrored.")
    var exitWhenIdle = false

    @Option(name: .customLong("shutdown-grace"), help: "Seconds in-flight requests may finish after SIGTERM (default 10).")
    var shutdownGrace: Double?

    @Option(help: "FULL (survives power loss) or NORMAL (survives a crash) (env DELEGATION_SYNCHRONOUS; default FULL).")
    var synchronous: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical (env LOG_LEVEL; default info).")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text, or json: one object per line on stderr (env LOG_FORMAT; default text).")
    var logFormat: String?

    @Option(name: .customLong("metrics-port"), help: "Serve GET /metrics (Prometheus text format) on this port; 0 picks a free one, logged at start (default: off).")
    var metricsPort: Int?

    @Option(name: .customLong("metrics-host"), help: "The address /metrics listens on (default 127.0.0.1).")
    var metricsHost: String = "127.0.0.1"

    func run() async throws {
        // A log shipper that goes away from the other end of stderr must not kill the worker: its writes
        // then fail with EPIPE, and the lines are dropped (NIO ignores SIGPIPE too, but only once it has
        // opened a socket).
        signal(SIGPIPE, SIG_IGN)
        let environment = ProcessInfo.processInfo.environment
        let levelName = logLevel ?? environment["LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
        }
        do {
            try LogFormat.resolve(flag: logFormat, environment: environment).bootstrap(level: level)
        } catch {
            throw ValidationError(error.description)
        }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be between 0 and 65535, not \(metricsPort)")
        }
        var configuration = try workerConfiguration(environment)
        // Before the store and the worker create their metric handles: they bind to the bootstrapped backend.
        let registry: PrometheusCollectorRegistry? = metricsPort.map { _ in
            let registry = PrometheusCollectorRegistry()
            var factory = PrometheusMetricsFactory(registry: registry)
            factory.valueHistogramBuckets["delegation_store_operations_per_commit"] = WriterStatistics.operationsPerCommitBuckets
            MetricsSystem.bootstrap(factory)
            return registry
        }
        configuration.refreshesGauges = registry != nil
        let logger = Logger(label: "delegation.worker")
        let problems = configuration.problems()
        guard problems.isEmpty else {
            FileDescriptorOutput.write("delegation-worker: \(WorkerConfigurationError(problems: problems))\n", to: STDERR_FILENO)
            throw ExitCode(2)
        }
        let store: DelegationStore
        do {
            store = try DelegationStore(try storeConfiguration(configuration), logger: logger)
        } catch {
            FileDescriptorOutput.write("delegation-worker: \(error)\n", to: STDERR_FILENO)
            throw ExitCode(1)
        }
        // One owner for every lifecycle: the group starts them and, on SIGTERM or when one throws, stops them
        // in reverse order — the worker first, then the HTTP client, then the store.
        let http = DelegationWorker.makeHTTPClient(concurrency: configuration.concurrency)
        var services: [ServiceGroupConfiguration.ServiceConfiguration]
        do {
            let worker = try DelegationWorker(configuration: configuration, store: store, httpClient: http, logger: logger)
            services = [
                .init(service: StoreService(store)),
                .init(service: HTTPClientService(http)),
            ]
            if let registry, let metricsPort {
                services.append(
                    .init(
                        service: try await MetricsServer(registry: registry, host: metricsHost, port: metricsPort, logger: logger),
                        successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
            }
            services.append(
                .init(service: worker, successTerminationBehavior: .gracefullyShutdownGroup, failureTerminationBehavior: .gracefullyShutdownGroup))
        } catch {
            try? await http.shutdown()
            await store.close()
            throw error
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }

    /// The store's own environment (`DELEGATION_BUSY_TIMEOUT_MS`, …) under the worker's flags.
    func storeConfiguration(_ configuration: WorkerConfiguration) throws -> StoreConfiguration {
        var store = try StoreConfiguration.fromEnvironment()
        store.path = configuration.databasePath
        store.durability = configuration.durability
        store.sourceWorkspaceID = configuration.workspaceID.isEmpty ? nil : configuration.workspaceID
        return store
    }

    /// Flags first, then the seed's environment variables, then defaults.
    func workerConfiguration(_ environment: [String: String]) throws -> WorkerConfiguration {
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func number<T: LosslessStringConvertible>(_ name: String, _ flag: T?) throws -> T? {
            if let flag { return flag }
            guard let text = env(name) else { return nil }
            guard let value = T(text) else { throw ValidationError("\(name) must be a number, not '\(text)'") }
            return value
        }
        // Saturates at a thousand years: anything over ten is then refused by name (problems()), never trapped on.
        func seconds(_ value: Double?) -> Duration? { value.map { .milliseconds(Int64((min($0, 3e10) * 1000).rounded())) } }
        func checked(_ value: Double?, _ option: String) throws -> Double? {
            if let value, !value.isFinite || value < 0 { throw ValidationError("\(option) must not be negative") }
            return value
        }

        var configuration = WorkerConfiguration()
        configuration.databasePath = db ?? env("DELEGATION_DB") ?? configuration.databasePath
        configuration.platformURL = platformURL ?? env("PLATFORM_URL") ?? configuration.platformURL
        configuration.workspaceID = workspaceID ?? env("WORKSPACE_ID") ?? ""
        configuration.token = token ?? env("PLATFORM_TOKEN")
        if let value = try number("DELEGATION_RETRY_ATTEMPTS", retryAttempts) { configuration.retryAttempts = value }
        if let value = seconds(try checked(try number("DELEGATION_RETRY_DELAY", retryDelay), "--retry-delay")) {
            configuration.retryDelay = value
        }
        if let value = seconds(try checked(try number("DELEGATION_TIMEOUT", timeout), "--timeout")) { configuration.requestTimeout = value }
        if let concurrency { configuration.concurrency = concurrency }
        if let value = seconds(try checked(lease, "--lease")) { configuration.lease = value }
        if let value = seconds(try checked(pollInterval, "--poll-interval")) { configuration.pollInterval = value }
        if let value = seconds(try checked(shutdownGrace, "--shutdown-grace")) { configuration.shutdownGrace = value }
        if let value = seconds(try checked(taskDeadline, "--task-deadline")) { configuration.taskDeadline = value }
        if let value = seconds(try checked(try number("DELEGATION_QUEUED_TIMEOUT", queuedTimeout), "--queued-timeout")) {
            configuration.queuedTimeout = value
        }
        if let maxTakeovers { configuration.maxTakeovers = maxTakeovers }
        if let workerID { configuration.workerID = workerID }
        configuration.historyLimit = try number("MAX_DELEGATION_HISTORY", historyLimit)
        configuration.exitWhenIdle = exitWhenIdle
        if let text = synchronous ?? env("DELEGATION_SYNCHRONOUS") {
            guard let durability = StoreConfiguration.Durability(rawValue: text.uppercased()) else {
                throw ValidationError("--synchronous must be FULL or NORMAL, not '\(text)'")
            }
            configuration.durability = durability
        }
        return configuration
    }
}
