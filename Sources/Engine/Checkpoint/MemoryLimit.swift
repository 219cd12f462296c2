import Foundation

/// The most memory this process may use, and what sets it: the smallest of its control
/// group's limits up the hierarchy (systemd's `MemoryMax=` and a container's limit: cgroup v2
/// `memory.max`, v1 `memory.limit_in_bytes`) and the machine's physical memory.
///
/// For refusing work that cannot fit before it starts: a dataset whose images alone need more
/// than this would be killed by the OOM killer part-way through loading, taking the daemon's
/// other jobs with it, three times before the crash-loop rule gave up on it.
public struct MemoryLimit: Sendable, Equatable, CustomStringConvertible {
    public let bytes: Int
    /// What sets it, in words: `physical memory`, `cgroup memory.max of /system.slice/synthd.service`.
    public let source: String

    public init(bytes: Int, source: String) {
        self.bytes = bytes
        self.source = source
    }

    public var description: String { "\(Self.gibibytes(bytes)) (\(source))" }

    /// `1.5 GiB`, `640 MiB`.
    public static func gibibytes(_ bytes: Int) -> String {
        bytes >= 1 << 30 ? String(format: "%.1f GiB", Double(bytes) / Double(1 << 30)) : "\(max(1, bytes >> 20)) MiB"
    }

    /// This process's limit; nil when neither the control groups nor /proc say (not Linux).
    /// `proc` and `cgroups`: where those file systems are mounted (other roots for tests).
    public static func current(proc: String = "/proc", cgroups: String = "/sys/fs/cgroup") -> MemoryLimit? {
        var limits: [MemoryLimit] = []
        if let meminfo = try? String(contentsOfFile: proc + "/meminfo", encoding: .utf8),
           let line = meminfo.split(separator: "\n").first(where: { $0.hasPrefix("MemTotal:") }),
           let kibibytes = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) {
            limits.append(MemoryLimit(bytes: kibibytes * 1024, source: "physical memory"))
        }
        if let groups = try? String(contentsOfFile: proc + "/self/cgroup", encoding: .utf8) {
            limits += controlGroupLimits(groups, root: cgroups)
        }
        return limits.min { $0.bytes < $1.bytes }
    }

    /// The limits of the groups `/proc/self/cgroup` names, each group and its parents: v2's
    /// `0::/path` (under the root, or under `unified/` on a hybrid system) and v1's memory
    /// controller. A group whose folder is not there (a container shows its own group as the
    /// root) is looked for from its nearest parent that is.
    static func controlGroupLimits(_ groups: String, root: String) -> [MemoryLimit] {
        var limits: [MemoryLimit] = []
        for line in groups.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let path = String(fields[2])
            if fields[0] == "0" && fields[1].isEmpty {
                for mount in [root, root + "/unified"] {
                    limits += limitsUp(path, mount: mount, file: "memory.max", version: "memory.max")
                }
            } else if fields[1].split(separator: ",").contains("memory") {
                limits += limitsUp(path, mount: root + "/memory", file: "memory.limit_in_bytes", version: "memory.limit_in_bytes")
            }
        }
        return limits
    }

    /// The limits in `file` of `path`'s group and of each group above it, where set ("max" and
    /// v1's page-rounded 2^63 mean none).
    static func limitsUp(_ path: String, mount: String, file: String, version: String) -> [MemoryLimit] {
        var limits: [MemoryLimit] = []
        var group = path.hasPrefix("/") ? path : "/" + path
        while true {
            let folder = mount + (group == "/" ? "" : group)
            if let text = try? String(contentsOfFile: folder + "/" + file, encoding: .utf8),
               let bytes = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes < 1 << 62 {
                limits.append(MemoryLimit(bytes: bytes, source: "cgroup \(version) of \(group)"))
            }
            if group == "/" { break }
            group = (group as NSString).deletingLastPathComponent
            if group.isEmpty { group = "/" }
        }
        return limits
    }
}
