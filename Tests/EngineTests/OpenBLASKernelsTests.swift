import Engine
import Testing

/// Debian 12's OpenBLAS falls back to generic SSE3 kernels on CPUs newer than itself (6x
/// slower SGEMM on Sapphire Rapids); synthd then runs itself again with better ones named.
struct OpenBLASKernelsTests {
    let avx512: Set<String> = ["sse3", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd", "avx512_bf16"]

    @Test func aGenericFallbackOnAModernCPUGetsBetterKernels() {
        #expect(OpenBLASKernels.better(than: "Prescott", cpuFlags: avx512, environment: [:]) == "SkylakeX")
        #expect(OpenBLASKernels.better(than: "Nehalem", cpuFlags: ["sse3", "avx", "avx2", "fma"], environment: [:]) == "Haswell")
    }

    @Test func aRecognisedCPUTheUsersChoiceOrAnOldCPUIsLeftAlone() {
        #expect(OpenBLASKernels.better(than: "SkylakeX", cpuFlags: avx512, environment: [:]) == nil)
        #expect(OpenBLASKernels.better(than: "Zen", cpuFlags: ["avx2", "fma"], environment: [:]) == nil)
        #expect(OpenBLASKernels.better(than: "Prescott", cpuFlags: avx512, environment: ["OPENBLAS_CORETYPE": "Prescott"]) == nil,
                "the user's choice stands (and the program, run again, does not loop)")
        #expect(OpenBLASKernels.better(than: "Prescott", cpuFlags: ["sse3", "avx"], environment: [:]) == nil)
    }

    @Test func readsTheFlagsLineOfCPUInfo() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu sse3 avx2 fma\nbugs\t\t: none\n"
        #expect(OpenBLASKernels.cpuFlags(cpuinfo: cpuinfo) == ["fpu", "sse3", "avx2", "fma"])
        #expect(OpenBLASKernels.cpuFlags(cpuinfo: nil).isEmpty)
        #expect(!OpenBLASKernels.current.isEmpty)
    }
}
