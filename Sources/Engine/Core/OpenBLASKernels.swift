import CBLAS
import Foundation

/// OpenBLAS picks its kernels for the CPU when the library loads, from the CPU's model number.
/// Debian 12's OpenBLAS (0.3.21) does not know CPUs newer than itself (Sapphire Rapids, for
/// one) and falls back to its oldest x86-64 kernels ("Prescott", SSE3): measured on a 2-core
/// Sapphire Rapids VM, SGEMM ran at 33 GFLOP/s instead of 207 with SkylakeX's kernels, and the
/// reference training step at 65 images/s instead of 280. The choice is made before `main`
/// runs, so the fix is to run again with `OPENBLAS_CORETYPE` naming kernels the CPU can run.
public enum OpenBLASKernels {
    /// The kernel family OpenBLAS chose for this process ("Prescott", "SkylakeX", "Zen", ...).
    public static var current: String { String(cString: openblas_get_corename()) }

    /// The kernels to ask for instead of `chosen`, or nil to keep it: only when OpenBLAS fell
    /// back to a generic family although the CPU has AVX-512 (SkylakeX's kernels) or AVX2 with
    /// FMA (Haswell's), and the user has not chosen (`OPENBLAS_CORETYPE` set).
    public static func better(than chosen: String, cpuFlags: Set<String>, environment: [String: String]) -> String? {
        guard environment["OPENBLAS_CORETYPE"] == nil, isGeneric(chosen) else { return nil }
        if ["avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"].allSatisfy(cpuFlags.contains) { return "SkylakeX" }
        if ["avx2", "fma"].allSatisfy(cpuFlags.contains) { return "Haswell" }
        return nil
    }

    /// Whether `family` is one of the generic kernel families OpenBLAS falls back to.
    static func isGeneric(_ family: String) -> Bool {
        ["prescott", "core2", "penryn", "dunnington", "nehalem", "katmai", "coppermine", "northwood", "banias", "atom",
         "unknown"].contains(family.lowercased())
    }

    /// The CPU's feature flags (`/proc/cpuinfo`'s first "flags" line); empty where unreadable.
    public static func cpuFlags(cpuinfo: String? = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) -> Set<String> {
        guard let line = cpuinfo?.split(separator: "\n").first(where: { $0.hasPrefix("flags") }),
              let colon = line.firstIndex(of: ":") else { return [] }
        return Set(line[line.index(after: colon)...].split(separator: " ").map(String.init))
    }

    /// Call first thing in `main`: where OpenBLAS fell back to generic kernels on a CPU that
    /// runs better ones, runs this program again (same process, same arguments) with
    /// `OPENBLAS_CORETYPE` set, so that the new image loads OpenBLAS with them. Returns only
    /// when there is nothing to do or the exec failed (then the program goes on as it is).
    public static func selectForThisCPU() {
        // /proc/cpuinfo is read only where OpenBLAS fell back (every start-up reads the name).
        let chosen = current
        guard isGeneric(chosen),
              let better = better(than: chosen, cpuFlags: cpuFlags(), environment: ProcessInfo.processInfo.environment) else { return }
        setenv("OPENBLAS_CORETYPE", better, 1)   // the new image sees it and does not exec again
        // The kernel's copy of the arguments where the runtime has none (under a preload),
        // so that the new image runs the same command, not the program without arguments.
        let arguments = ProcessArguments.all
        guard !arguments.isEmpty else { return }
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        execv("/proc/self/exe", &argv)
        for pointer in argv { free(pointer) }   // only reached when the exec failed
    }
}
