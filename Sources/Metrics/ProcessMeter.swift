import Glibc
import Prometheus
import Synchronization

/// The standard process metrics (prometheus/docs writing_clientlibs.md), read from /proc when the
/// metrics are rendered. swift-prometheus has no collector for them.
final class ProcessMeter: Sendable {
    private let resident: Gauge
    private let virtual: Gauge
    private let cpu: Counter
    private let openFDs: Gauge
    private let maxFDs: Gauge
    private let startTime: Gauge
    private let cpuReported = Mutex(0.0)

    init(registry: PrometheusCollectorRegistry) {
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: .init(namespace: "process", metricName: name, unitName: unit, helpText: help)
            )
        }
        resident = gauge("resident_memory", "bytes", "Resident memory size in bytes.")
        virtual = gauge("virtual_memory", "bytes", "Virtual memory size in bytes.")
        openFDs = gauge("open", "fds", "Number of open file descriptors.")
        maxFDs = gauge("max", "fds", "Maximum number of open file descriptors.")
        startTime = gauge("start_time", "seconds", "Start time of the process since unix epoch in seconds.")
        cpu = registry.makeCounter(
            descriptor: .init(
                namespace: "process",
                metricName: "cpu",
                unitName: "seconds_total",
                helpText: "Total user and system CPU time spent in seconds."
            )
        )
        update()
    }

    func update() {
        let pageSize = Double(sysconf(Int32(_SC_PAGESIZE)))
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let statm = read("/proc/self/statm")?.split(separator: " "), statm.count >= 2 {
            virtual.set(to: (Double(statm[0]) ?? 0) * pageSize)
            resident.set(to: (Double(statm[1]) ?? 0) * pageSize)
        }
        // Fields after the command name, which may hold spaces: state is field 3, utime 14, stime
        // 15, starttime 22 (proc(5)).
        if let stat = read("/proc/self/stat"), let close = stat.lastIndex(of: ")") {
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 19 {
                let used = ((Double(fields[11]) ?? 0) + (Double(fields[12]) ?? 0)) / ticks
                let delta = cpuReported.withLock { reported -> Double in
                    defer { reported = max(reported, used) }
                    return used - reported
                }
                if delta > 0 { cpu.increment(by: delta) }
                if let boot = bootTime() { startTime.set(to: boot + (Double(fields[19]) ?? 0) / ticks) }
            }
        }
        if let directory = opendir("/proc/self/fd") {
            var count = -1  // the descriptor reading the directory
            while readdir(directory) != nil { count += 1 }
            closedir(directory)
            openFDs.set(to: Double(max(0, count - 2)))  // "." and ".."
        }
        var limit = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            maxFDs.set(to: Double(limit.rlim_cur))
        }
    }

    private func bootTime() -> Double? {
        read("/proc/stat")?.split(separator: "\n").first { $0.hasPrefix("btime ") }
            .flatMap { Double($0.dropFirst("btime ".count)) }
    }

    private func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
